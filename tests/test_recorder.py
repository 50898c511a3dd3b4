"""The Recorder: a user's loop writes the same run directory and scores as `curriculum score`."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from curriculum.data.datasets import load_dataset
from curriculum.training.engine import outputs_to_record
from scoring import Recorder, Scores, UserError
from scoring.recorder import record_fields, softmax


def _arrays(run_dir):
    return {p.relative_to(run_dir).as_posix(): np.load(p) for p in sorted((run_dir / "records").glob("*/*.npy"))}


def test_recorder_fed_a_score_runs_predictions_writes_identical_scores(probs_run, tmp_path):
    """Feed the record of a real run, member 1 first and the train split in shuffled batches of
    100 by id, and compare every record file and the whole scores table."""
    info = json.loads((probs_run / "run.json").read_text())
    dataset = load_dataset("digits")
    parts = {split: dataset.split(split) for split in ("train", "test")}
    recorder = Recorder(
        tmp_path / "mine",
        labels={s: p.labels for s, p in parts.items()},
        ids={s: p.ids for s, p in parts.items()},
        images={s: p.images for s, p in parts.items()},
        record_probs=True,
        dataset=dataset.name,
        fingerprint=dataset.fingerprint,
        arch=info["arch"],
    )
    arrays = _arrays(probs_run)
    rng = np.random.default_rng(0)
    for member in (1, 0):
        for k, checkpoint in enumerate(info["checkpoints"]):
            for split, part in parts.items():
                order = rng.permutation(len(part.labels)) if split == "train" else np.arange(len(part.labels))
                for batch in np.array_split(order, max(1, len(order) // 100)):
                    fields = {
                        f: arrays[f"records/member_{member:03d}/{split}.{f}.npy"][k][batch]
                        for f in ("pred", "p_true", "el2n", "probs")
                    }
                    recorder.update_record(member, split, **fields, index=batch)
            recorder.checkpoint(member, epoch=checkpoint["epoch"], step=checkpoint["step"])
    scores = recorder.finish()
    mine = _arrays(tmp_path / "mine")
    assert mine.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(mine[name], array, err_msg=name)
    expected = Scores.load(probs_run)
    pd.testing.assert_frame_equal(scores.table, expected.table)
    pd.testing.assert_frame_equal(Scores.load(tmp_path / "mine").table, expected.table)
    assert scores.meta == expected.meta
    assert json.loads((tmp_path / "mine" / "run.json").read_text())["status"] == "complete"


def test_logits_give_the_engines_record_fields():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 3
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))
    ours = record_fields(softmax(logits.numpy()), y.numpy())
    engine = outputs_to_record(logits, y)
    np.testing.assert_array_equal(ours["pred"], engine["pred"].numpy())
    for field in ("p_true", "el2n"):
        np.testing.assert_allclose(ours[field], engine[field].numpy(), rtol=1e-5, atol=1e-6)


def test_online_rows_carry_over_and_checkpoints_grow_past_the_first_allocation(tmp_path):
    """Hand-made: 2 members, 3 train examples given online (one batch at a time), 2 test examples
    at every checkpoint, 10 checkpoints (the files start with room for 8)."""
    labels = {"train": np.array([0, 1, 1]), "test": np.array([1, 0])}
    recorder = Recorder(tmp_path / "run", labels=labels, ids={"train": ["a", "b", "c"], "test": [10, 11]})
    right = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8]], requires_grad=True)  # every train example right
    for member in (0, 1):
        recorder.update(
            member, "train", probs=1 - right, ids=["a", "b", "c"], labels=[0, 1, 1], online=True
        )  # all wrong at init
        for k in range(10):
            if k == 2 + member:  # from here on example "c" is right: it stays right without being given again
                recorder.update(member, "train", probs=right[2:], ids=["c"], online=True)
            if k == 4:
                recorder.update(member, "train", probs=right[:2], index=[0, 1], online=True)
            recorder.update(member, "test", logits=np.array([[0.0, 5.0], [5.0, 0.0]]))
            recorder.checkpoint(member)
    scores = recorder.finish()
    train = scores.split("train")
    assert train["id"].tolist() == ["a", "b", "c"] and scores.split("test")["id"].tolist() == ["10", "11"]
    # learned at checkpoint 4 (a, b) and at 2 or 3 (c); accessibility over checkpoints 1..9
    assert train["learned_checkpoint"].tolist() == [4.0, 4.0, 2.5]
    assert train["accessibility"].tolist() == pytest.approx([6 / 9, 6 / 9, (8 + 7) / 18])
    assert np.load(tmp_path / "run" / "records" / "member_000" / "train.pred.npy").shape == (10, 3)
    assert scores.split("test")["accessibility"].tolist() == [1.0, 1.0]


def test_bad_use_is_one_sentence(tmp_path):
    recorder = Recorder(tmp_path / "run", labels={"train": np.array([0, 1, 1])})
    with pytest.raises(UserError, match="1 of 3 labels differ"):
        recorder.update(0, "train", logits=np.zeros((3, 2)), labels=[0, 1, 0])
    recorder.update(0, "train", logits=np.zeros((2, 2)), index=[0, 1])
    with pytest.raises(UserError, match="no outputs for 1 of train examples"):
        recorder.checkpoint(0)
    with pytest.raises(UserError, match="not among the train ids"):
        recorder.update(0, "train", logits=np.zeros((1, 2)), ids=["x"])
    with pytest.raises(UserError, match="at least 2 members, got 1"):
        recorder.finish()
    recorder.update(0, "train", logits=np.zeros((1, 2)), index=[2])
    recorder.checkpoint(0)
    recorder.update(1, "train", logits=np.zeros((3, 2)))
    recorder.checkpoint(1)
    with pytest.raises(UserError, match="same number of checkpoints, at least 2"):
        recorder.finish()
    with pytest.raises(UserError, match="already holds a run; give the Recorder a new directory, or resume"):
        Recorder(tmp_path / "run", labels={"train": np.array([0])})
    with pytest.raises(UserError, match="holds a recorded run of other data"):
        Recorder(tmp_path / "run", labels={"train": np.array([0])}, resume=True)


def test_a_resumed_recorder_rewinds_to_the_training_step_and_ends_as_an_uninterrupted_one(tmp_path):
    """Two members, a checkpoint every 2 steps; member 1's process dies after step 6 with its
    training checkpoint saved at step 4: a new Recorder (resume=True) drops the row of step 6,
    records it again, and the record equals an uninterrupted run's."""
    labels = {"train": np.array([0, 1, 1, 0]), "test": np.array([1, 0])}
    rng = np.random.default_rng(0)
    outputs = {
        (m, s, split): rng.normal(size=(len(y), 2))
        for m in (0, 1)
        for s in range(0, 9, 2)
        for split, y in labels.items()
    }

    def record(recorder, member, steps):
        for step in steps:
            for split in labels:
                recorder.update(member, split, logits=outputs[member, step, split])
            recorder.checkpoint(member, epoch=step / 4, step=step)

    whole = Recorder(tmp_path / "whole", labels=labels)
    for member in (0, 1):
        record(whole, member, range(0, 9, 2))
    expected = whole.finish()

    first = Recorder(tmp_path / "run", labels=labels)
    record(first, 0, range(0, 9, 2))
    record(first, 1, range(0, 7, 2))
    del first  # the process dies
    again = Recorder(tmp_path / "run", labels=labels, resume=True)
    assert again.checkpoints(1) == 4 and again.rewind(1, step=4) == 3
    record(again, 1, (6, 8))
    scores = again.finish()
    pd.testing.assert_frame_equal(scores.table, expected.table)
    assert _arrays(tmp_path / "run").keys() == _arrays(tmp_path / "whole").keys()
    for name, array in _arrays(tmp_path / "whole").items():
        np.testing.assert_array_equal(_arrays(tmp_path / "run")[name], array, err_msg=name)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["checkpoints"][-1] == {
        "index": 4,
        "step": 8,
        "epoch": 2.0,
    }


def test_members_trained_on_folds_give_cleanlab_out_of_sample_probabilities(tmp_path):
    """4 members, 2 folds: members 0 and 1 never train on fold 0 (examples 0-2), members 2 and 3
    on fold 1 (3-5); each example's cleanlab probabilities are the mean of its two held-out members'."""
    from scoring.formats import export

    labels = {"train": np.array([0, 1, 0, 1, 0, 1]), "test": np.array([0, 1])}
    recorder = Recorder(tmp_path / "run", labels=labels, record_probs=True)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(2), size=(4, 6)).astype(np.float16).astype(np.float32)
    for member in range(4):
        recorder.hold_out(member, "train", ids=["0", "1", "2"] if member < 2 else ["3", "4", "5"])
        for k in range(2):
            recorder.update(member, "train", probs=probs[member])
            recorder.update(member, "test", probs=probs[member, :2])
            recorder.checkpoint(member)
    recorder.finish()
    _, notes = export(tmp_path / "run", tmp_path / "cl.npz", "cleanlab", split="train")
    with np.load(tmp_path / "cl.npz") as npz:
        pred_probs, sample = npz["pred_probs"], str(npz["sample"])
    expected = np.concatenate([probs[:2, :3].mean(0), probs[2:, 3:].mean(0)])
    np.testing.assert_allclose(pred_probs, expected / expected.sum(1, keepdims=True), rtol=1e-6)
    assert sample == "out-of-sample (folds)" and "each from the members that held it out" in notes[0]
    with pytest.raises(UserError, match="Name the held-out examples"):
        recorder.hold_out(0, "train")
