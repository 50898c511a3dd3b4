"""Per-step cost of each small architecture on 28x28 grey images: what a CPU recipe can afford.

A score run's cost is (training steps x the cost of a step) + (checkpoints x examples evaluated /
evaluation speed), per member. This measures both for each architecture, one thread, on random
28x28x1 batches (the cost does not depend on the pixels): a training step of ``--batch`` images (SGD
with momentum, cross-entropy) and a forward pass over 1,000 images under ``torch.no_grad``. Each
is the median of ``--rounds`` timings, printed with its ratio to LeNet-5's, measured in the same run
(above 1: slower than LeNet-5), so a loaded machine shifts the seconds more than the ratios.

    python experiments/bench_steps.py              # about half a minute on one core
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from curriculum.models.builders import build_model

ARCHS = ("lenet5", "fc", "mnist-net", "small-st-vgg")


def seconds(work, rounds: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(arch: str, batch: int, rounds: int) -> tuple[float, float]:
    """(seconds per training step, seconds per 1,000 evaluated images)."""
    torch.manual_seed(0)
    model = build_model(arch, in_channels=1, num_classes=10, image_size=(28, 28))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y, xe = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,)), torch.randn(1000, 1, 28, 28)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    def evaluate():
        with torch.no_grad():
            model.eval()
            model(xe)
            model.train()

    return seconds(step, rounds), seconds(evaluate, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="training batch size (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="timings per measure, median reported (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {arch: measure(arch, args.batch, args.rounds) for arch in ARCHS}
    step0, eval0 = results["lenet5"]
    print(f"{'arch':13} {'train step':>11} {'x lenet5':>9} {'ex/s':>7} {'eval ex/s':>10} {'x lenet5':>9}")
    for arch, (step, evaluate) in results.items():
        print(
            f"{arch:13} {step:10.3f}s {step / step0:9.1f} {args.batch / step:7.0f} {1000 / evaluate:10.0f} "
            f"{evaluate / eval0:9.1f}"
        )


if __name__ == "__main__":
    main()
