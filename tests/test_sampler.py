import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch.utils.data import DataLoader, TensorDataset

from curriculum.pacing import make_pacing
from curriculum.sampler import CurriculumBatchSampler
from scoring.errors import UserError
from scoring.ordering import order_examples

M, B = 400, 16


def _order(seed=0):
    return np.random.default_rng(seed).permutation(M)


def test_every_batch_is_distinct_examples_from_the_open_prefix():
    order = _order()
    pacing = make_pacing("exp", num_examples=M, batch_size=B, start=0.05, inc=2, stage_length=10)
    sampler = CurriculumBatchSampler(order, pacing, batch_size=B, num_steps=80, seed=0)
    batches = list(sampler)
    assert len(sampler) == len(batches) == 80
    seen_sizes = set()
    for t, batch in enumerate(batches):
        assert len(batch) == B == len(set(batch))
        assert all(isinstance(i, int) for i in batch)
        prefix = set(order[: pacing(t)].tolist())
        assert set(batch) <= prefix
        seen_sizes.add(pacing(t))
    assert seen_sizes == {20, 40, 80, 160, 320, 400}
    # the prefix grows and the batches follow it: late batches reach past the first 20
    assert not set(batches[-1]) <= set(order[:20].tolist())


def test_same_seed_same_batches_other_seed_other_batches():
    pacing = make_pacing("linear", num_examples=M, batch_size=B, total_steps=50)
    make = lambda seed: CurriculumBatchSampler(_order(), pacing, B, 50, seed=seed)  # noqa: E731
    sampler = make(7)
    first = list(sampler)
    assert list(sampler) == first  # iterating again replays the same batches
    assert list(make(7)) == first
    assert list(make(8)) != first
    assert [sampler.batch(t) for t in (49, 0, 23)] == [first[49], first[0], first[23]]


def test_batches_are_uniform_over_the_prefix():
    # prefix fixed at 50 of 400: each of the 50 should be drawn 5000 * 10 / 50 = 1000 times
    order = _order(1)
    sampler = CurriculumBatchSampler(order, lambda t: 50, batch_size=10, num_steps=5000, seed=0)
    counts = np.zeros(M, dtype=int)
    for batch in sampler:
        counts[batch] += 1
    inside = counts[order[:50]]
    assert counts.sum() == inside.sum() == 50_000
    assert chisquare(inside).pvalue > 1e-3
    assert np.abs(inside - 1000).max() < 150  # ~5 standard deviations
    # and the first slot of a batch is not biased towards the prefix's start
    firsts = np.bincount([np.flatnonzero(order == b[0])[0] for b in sampler], minlength=50)
    assert chisquare(firsts).pvalue > 1e-3


def test_pacing_none_and_out_of_range_callables_are_clamped():
    order = _order()
    full = CurriculumBatchSampler(order, None, B, 5)
    assert [full.prefix_size(t) for t in range(5)] == [M] * 5
    wild = CurriculumBatchSampler(order, lambda t: (0, 10**9)[t % 2], B, 4)
    assert [wild.prefix_size(t) for t in range(4)] == [B, M, B, M]
    assert set(wild.batch(0)) == set(order[:B].tolist())


def test_works_inside_a_dataloader_in_a_training_loop():
    torch.manual_seed(0)
    x = torch.randn(M, 5)
    y = (x[:, 0] > 0).long()
    scores = x[:, 0].abs().numpy()  # far from the boundary = easy
    order = order_examples(scores, y.numpy(), "curriculum", easier="higher")
    pacing = make_pacing("exp", num_examples=M, batch_size=B, start=0.1, stage_length=20)
    sampler = CurriculumBatchSampler(order, pacing, batch_size=B, num_steps=60, seed=0)

    model = torch.nn.Linear(5, 2)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(x, y, torch.arange(M)), batch_sampler=sampler)
    steps = 0
    for t, (xb, yb, ib) in enumerate(loader):
        assert ib.tolist() == sampler.batch(t)
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
    assert steps == len(sampler) == 60
    assert (model(x).argmax(1) == y).float().mean() > 0.9


@pytest.mark.parametrize(
    "kwargs,text",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"batch_size": M + 1}, "at most 400"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"order": [0, 1, 1, 2]}, "more than once"),
        ({"order": []}, "non-empty"),
        ({"order": [0.5, 1.5]}, "indices"),
        ({"pacing": 5}, "function of the step"),
        ({"pacing": make_pacing("exp", num_examples=M + 1, batch_size=B, stage_length=10)}, "401 examples"),
    ],
)
def test_mistakes_raise_user_errors(kwargs, text):
    args = {"order": _order(), "pacing": None, "batch_size": B, "num_steps": 10, **kwargs}
    if "order" in kwargs and "batch_size" not in kwargs:
        args["batch_size"] = 1
    with pytest.raises(UserError, match=text):
        CurriculumBatchSampler(**args)
