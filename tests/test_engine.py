"""Training primitives: schedules, checkpoints, per-example outputs, on-device augmentation."""

import math

import pytest
import torch

from curriculum.config import TrainingConfig
from curriculum.engine import augment, learning_rate, outputs_to_record
from curriculum.stages.score import checkpoint_steps


def test_step_schedule_divides_every_n_steps_with_a_floor():
    config = TrainingConfig(lr=0.05, lr_schedule="step", lr_decay=2.0, min_lr=0.01)
    assert [learning_rate(config, s, 100, 10) for s in (0, 9, 10, 25, 99)] == [0.05, 0.05, 0.025, 0.0125, 0.01]


def test_cosine_schedule_ends_at_min_lr():
    config = TrainingConfig(lr=0.1, lr_schedule="cosine", min_lr=0.0)
    assert learning_rate(config, 50, 100, 1) == pytest.approx(0.05)
    assert learning_rate(config, 100, 100, 1) == pytest.approx(0.0)


def test_checkpoints_include_init_fractions_and_end():
    # 14 steps an epoch, every half epoch: round(7), 14, round(21), 28, and the end at 2.5 epochs = 35
    assert checkpoint_steps(2.5, 0.5, 14) == [0, 7, 14, 21, 28, 35]
    assert checkpoint_steps(1, 3, 10) == [0, 10]


def test_outputs_to_record_matches_hand_computation():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # softmax: [0.75, 0.25] and [0.5, 0.5]
    out = outputs_to_record(logits, torch.tensor([1, 0]))
    assert out["pred"].tolist() == [0, 0]
    assert out["p_true"].tolist() == pytest.approx([0.25, 0.5])
    # EL2N = ||p - onehot||: sqrt(0.75^2 + 0.75^2) and sqrt(0.5^2 + 0.5^2)
    assert out["el2n"].tolist() == pytest.approx([0.75 * math.sqrt(2), 0.5 * math.sqrt(2)], rel=1e-5)


def test_augment_flips_and_shifts_within_padding_and_is_seeded():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    a = augment(x, [torch.Generator().manual_seed(3)])
    b = augment(x, [torch.Generator().manual_seed(3)])
    assert torch.equal(a, b) and a.shape == x.shape
    # every output pixel comes from the same image (reflect padding of 1 pixel keeps values in-image)
    for i in range(2):
        assert set(a[i].flatten().tolist()) <= set(x[i].flatten().tolist())
    many = augment(x.repeat(64, 1, 1, 1), [torch.Generator().manual_seed(0)])
    assert not torch.equal(many[0::2], x[0].expand_as(many[0::2]))  # something moved


def test_an_epoch_never_ends_with_a_batch_of_one():
    from curriculum.stages.score import batches_per_epoch

    assert batches_per_epoch(1347, 100) == 14  # 13 full batches and one of 47
    assert batches_per_epoch(1301, 100) == 13  # the single leftover example joins the 13th batch
    assert batches_per_epoch(50, 100) == 1
