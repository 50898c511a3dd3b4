"""experiments/bench_score.py's grouped way: the grouped-convolution module computes and trains
exactly the members it is built from, so its timings compare like with like."""

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from curriculum.models.builders import build_model
from curriculum.stages.score import ScoreConfig


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_score", ROOT / "experiments" / "bench_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def members(dropout: bool) -> list[torch.nn.Module]:
    """Two members in float64 (see test_grouped_module_computes_and_trains_the_members)."""
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(
            build_model("small-st-vgg", in_channels=3, num_classes=10, image_size=(16, 16), dropout=dropout).double()
        )
    return models


def member_weights(bench, grouped, k: int) -> list[torch.Tensor]:
    """Member k's slice of every grouped parameter, in the order of the member's own parameters."""
    weights = []
    for layer in grouped.layers:
        if isinstance(layer, torch.nn.Conv2d):
            weights += [layer.weight.chunk(grouped.members)[k], layer.bias.chunk(grouped.members)[k]]
        elif isinstance(layer, bench.BatchedLinear):
            weights += [layer.weight[k].T, layer.bias[k, 0]]
    return weights


def test_grouped_module_computes_and_trains_the_members(bench):
    """Compared in float64. The grouped module sums the same products as the members in another
    order (a grouped convolution, a batched matmul, one backward pass over the summed losses), so
    the two differ by rounding only, amplified by three SGD steps: in float32 that reached 6e-5 on
    one CPU and not another (unit roundoff 6e-8, amplified about 1000x), in float64 the same
    amplification of its unit roundoff 1.1e-16 gives about 1e-13 on any CPU. A tolerance of 1e-9
    leaves four orders of magnitude for that, while a wiring error (a member's slice in the
    wrong place, a missing weight decay or momentum term) changes weights by 1e-3 or more."""
    torch.manual_seed(2)
    x, y = torch.randn(300, 3, 16, 16, dtype=torch.float64), torch.randint(0, 10, (300,))
    models = members(dropout=True)
    grouped = bench.GroupedMembers(models).eval()
    batches = [x[:32], x[32:64]]  # each member its own images
    with torch.no_grad():
        expected = torch.stack([model.eval()(batch) for model, batch in zip(models, batches)])
        torch.testing.assert_close(grouped(torch.cat(batches, dim=1)), expected, rtol=1e-9, atol=1e-12)

    models = members(dropout=False)
    grouped = bench.GroupedMembers(models)
    config = ScoreConfig(dataset="synthetic-cifar", lr=0.05, momentum=0.9, weight_decay=5e-4)
    optimizers = [bench.optimizer_for(config, model) for model in models]
    optimizer = bench.optimizer_for(config, grouped)
    for step in range(3):
        indices = [torch.randperm(300)[:50] for _ in models]
        for model, member_optimizer, index in zip(models, optimizers, indices):
            bench.sgd_step(member_optimizer, 0.05, F.cross_entropy(model(x[index]), y[index]))
        logits = grouped(torch.cat([x[index] for index in indices], dim=1))
        bench.sgd_step(optimizer, 0.05, sum(F.cross_entropy(logits[k], y[index]) for k, index in enumerate(indices)))
    for k, model in enumerate(models):
        for own, sliced in zip(model.parameters(), member_weights(bench, grouped, k), strict=True):
            assert sliced.dtype == torch.float64
            torch.testing.assert_close(sliced, own, rtol=1e-9, atol=1e-9)


def test_grouped_way_records_what_the_plain_loop_records(bench, monkeypatch):
    """Without dropout (the only draw the two ways make differently) one epoch gives the same predictions."""
    monkeypatch.setattr(bench, "build_model", lambda *args, **kwargs: build_model(*args, **kwargs, dropout=False))
    dataset = bench.synthetic_cifar(100, 50)
    config = ScoreConfig(
        dataset="synthetic-cifar", members=2, epochs=1, batch_size=50, lr=0.01, momentum=0.9, weight_decay=5e-4
    )
    plain, grouped = (
        run(config, dataset, "small-st-vgg", "no", torch.device("cpu")) for run in (bench.run_plain, bench.run_grouped)
    )
    assert plain.keys() == grouped.keys() and len(plain) == 4
    assert np.mean([np.mean(plain[key] == grouped[key]) for key in plain]) > 0.98


def test_grouped_module_refuses_other_layers(bench):
    with pytest.raises(ValueError, match="cannot take ResNet"):
        bench.GroupedMembers([build_model("resnet18", in_channels=3, num_classes=10, image_size=(32, 32))])
