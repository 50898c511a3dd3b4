"""Benchmark the score stage's training: a plain PyTorch loop vs the engine, one by one and stacked
(grouped convolutions, or ``vmap``).

All four train the same members (same architecture, seeds, batch size, SGD schedule, epochs)
and, at every checkpoint (initialisation and every epoch), predict every train and test example,
moving the predictions to the host, as the score stage records them:

  plain       the sequential loop a careful user writes: data normalised once as a float tensor
              on the device, one member after another, ``model(x)``, cross-entropy, ``opt.step()``,
              evaluation in batches of 1024 under ``torch.no_grad`` (label, P(true), EL2N)
  one by one  the engine (``curriculum.stages.score.GroupTrainer``) with ``stack="off"``
  stacked     the engine with ``stack="on"``: the members as one stacked model, in the way the
              engine picks (``grouped_forward`` for a plain stack of layers such as st-VGG: each
              convolution one ``groups=N`` convolution over the members' channel groups, each
              linear layer one batched matmul; else ``vmap``)
  vmap        the engine stacked with ``vmap`` of ``functional_call`` (``torch.func``), the way it
              takes for any other architecture
Beside them, ``stage`` runs the score stage as ``curriculum score`` runs it (the same members,
``--stack auto`` and ``--precision`` as the command resolves them on this device, a checkpoint
every ``--eval-every`` epochs as the command's default quarter epoch), writing its records,
training states and report into a temporary folder, and prints the share of its time each part
takes: training, predictions (evaluation passes and their read-back), records, training states,
the report, the data on the device, and the rest (dataset hashes, the stacking probe, the lock).
The four training ways write nothing. Runs alternate (``--rounds``) after a short warm-up of each, and the
median is reported: wall seconds, the ratio of the plain loop's time to each (above 1 = faster than
plain), examples per second (training plus evaluated examples) and, on a GPU, the achieved FLOP/s
against the device's peak (FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode``), and
this process's CPU seconds with their ratio (steadier than wall time on cores other jobs share). It
also prints how many predicted labels the stacked and one-by-one records share, and the stacked and
vmap ones.

Default data: synthetic CIFAR-shaped images (32x32x3, 10 classes: a smooth random template per
class plus noise), 50,000 train and 10,000 test, 10 members, 10 epochs, the default CIFAR
architecture (``--arch auto``: st-VGG). On a 2-core CPU use small sizes, e.g.

    python experiments/bench_score.py --train 2000 --test 500 --members 4 --epochs 2 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import curriculum.stages.score as score_stage
from curriculum.data.datasets import Dataset, Split
from curriculum.models.builders import build_model
from curriculum.stages.score import GroupTrainer, ScoreConfig, checkpoint_steps, member_seed
from curriculum.training.engine import DeviceData, MemberSetup, batches_per_epoch, resolve_arch, resolve_precision
from curriculum.training.members import autocast
from curriculum.training.policy import device_policy
from scoring.records import MemberRecord, read_run_info

# Dense bf16 tensor-core peak in TFLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = {
    "H200": 989.4,
    "H100": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10": 125.0,
    "4090": 165.2,
}


def synthetic_cifar(train: int, test: int, seed: int = 0) -> Dataset:
    """CIFAR-shaped uint8 images: class template (smooth random pattern) plus pixel noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(10, 4, 4, 3))
    templates = np.kron(coarse, np.ones((1, 8, 8, 1)))  # 32x32 blocks of 8x8

    def split(n: int) -> Split:
        labels = rng.integers(0, 10, n).astype(np.int64)
        images = templates[labels] + rng.normal(scale=1.5, size=(n, 32, 32, 3))
        return Split(np.clip(128 + 40 * images, 0, 255).astype(np.uint8), labels)

    return Dataset.build("synthetic-cifar", split(train), split(test), [f"class{i}" for i in range(10)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_steps(config: ScoreConfig, m: int, generators: list[torch.Generator], epoch: int):
    """One epoch of the score stage's SGD schedule: per step, the learning rate (step decay, floored)
    and each member's batch indices, from that member's own generator; the last batch takes the rest."""
    b, steps = config.batch_size, batches_per_epoch(m, config.batch_size)
    decay_every = max(1, round(config.lr_decay_epochs * steps))
    perms = [torch.randperm(m, generator=g, device=g.device) for g in generators]
    for position in range(steps):
        lr = max(config.lr / config.lr_decay ** ((epoch * steps + position) // decay_every), config.min_lr)
        end = None if position == steps - 1 else (position + 1) * b
        yield lr, [perm[position * b : end] for perm in perms]


def sgd_step(optimizer: torch.optim.Optimizer, lr: float, loss: torch.Tensor) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def evaluate(forward, x: torch.Tensor, y: torch.Tensor, precision: str) -> np.ndarray:
    """Predicted labels of every example in batches of 1024, computing P(true class) and EL2N as
    the score stage records them and moving all three to the host once. ``forward`` returns
    logits ``(..., batch, classes)``: one model's, or every member's at once."""
    outs = {"pred": [], "p_true": [], "el2n": []}
    with torch.no_grad():
        for start in range(0, len(y), 1024):
            with autocast(x.device, precision):
                probs = torch.softmax(forward(x[start : start + 1024]).float(), dim=-1)
            target = y[start : start + 1024].expand(probs.shape[:-1])
            p_true = probs.gather(-1, target[..., None]).squeeze(-1)
            outs["pred"].append(probs.argmax(-1))
            outs["p_true"].append(p_true)
            outs["el2n"].append(torch.sqrt((probs.square().sum(-1) - 2 * p_true + 1).clamp_min(0)))
    host = {key: torch.cat(value, dim=-1).cpu().numpy() for key, value in outs.items()}
    return host["pred"]  # P(true) and EL2N travel for their cost; the agreement lines compare labels


def device_splits(dataset: Dataset, device: torch.device) -> tuple[dict, dict]:
    """Each split's images, normalised once (channels_last float), and labels on the device."""
    data = DeviceData(dataset, device)
    return {s: data.batch(s, slice(None))[0] for s in ("train", "test")}, data.labels


def member_model(config: ScoreConfig, dataset: Dataset, arch: str, member: int) -> nn.Module:
    """A member's initial model: torch seeded with its member seed, then ``build_model``."""
    h, w, c = dataset.image_shape
    torch.manual_seed(member_seed(config.seed, member))
    return build_model(arch, in_channels=c, num_classes=dataset.num_classes, image_size=(h, w))


def optimizer_for(config: ScoreConfig, model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def run_plain(config: ScoreConfig, dataset: Dataset, arch: str, precision: str, device: torch.device) -> dict:
    """The plain sequential loop; at each checkpoint it moves predicted label, P(true class) and
    EL2N to the host, as the engine does; returns the last checkpoint's predicted labels."""
    x_all, y_all = device_splits(dataset, device)
    preds = {}
    for member in range(config.members):
        model = member_model(config, dataset, arch, member).to(device, memory_format=torch.channels_last)
        optimizer = optimizer_for(config, model)
        generator = torch.Generator(device=device).manual_seed(member_seed(config.seed, member))
        for epoch in range(int(config.epochs) + 1):
            model.eval()
            for split in ("train", "test"):
                preds[member, split] = evaluate(model, x_all[split], y_all[split], precision)
            if epoch == int(config.epochs):
                break
            model.train()
            for lr, (index,) in epoch_steps(config, len(y_all["train"]), [generator], epoch):
                with autocast(device, precision):
                    loss = F.cross_entropy(model(x_all["train"][index]).float(), y_all["train"][index])
                sgd_step(optimizer, lr, loss)
    return preds


def run_engine(
    config: ScoreConfig,
    dataset: Dataset,
    arch: str,
    precision: str,
    device: torch.device,
    stacked: bool,
    way: str = "auto",
) -> dict:
    """The score stage's trainer on every member at once (stacked in ``way``: auto, grouped or
    vmap), checkpoint by checkpoint, no files; returns every checkpoint's predicted labels
    ([checkpoints, examples] per member and split)."""
    data = DeviceData(dataset, device)
    steps_per_epoch = batches_per_epoch(len(dataset.train.labels), config.batch_size)
    steps = checkpoint_steps(config.epochs, 1, steps_per_epoch)
    setup = MemberSetup(config, dataset, data, arch, precision, stacked, stack_way=way)
    trainer = GroupTrainer(setup, list(range(config.members)), steps[-1], steps_per_epoch)
    preds: dict = {}
    for index, step in enumerate(steps):
        trainer.run_to(step, None)
        for member, row in enumerate(trainer.record(initial=index == 0)):
            for split in ("train", "test"):
                preds.setdefault((member, split), []).append(row[split]["pred"])
    return {key: np.stack(rows) for key, rows in preds.items()}


#: The parts of the score stage's time the ``stage`` way reports: (class or module, function).
STAGE_PARTS = {
    "training": [(GroupTrainer, "run_to")],
    "predictions": [(GroupTrainer, "record")],
    "records": [(MemberRecord, "append"), (MemberRecord, "commit")],
    "states": [(GroupTrainer, "member_state"), (score_stage, "_save_state")],
    "report": [(score_stage, "write_report")],
    "data": [(DeviceData, "__init__")],
}


@contextmanager
def timed_parts(seconds: Counter, device: torch.device):
    """Add the wall seconds spent in each of ``STAGE_PARTS`` to ``seconds`` (the device is
    synchronised around each, so a part is charged for its own kernels)."""

    def timed(function, part):
        def wrapper(*args, **kwargs):
            sync(device)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                sync(device)
                seconds[part] += time.perf_counter() - started

        return wrapper

    with ExitStack() as stack:
        for part, places in STAGE_PARTS.items():
            for owner, name in places:
                stack.enter_context(mock.patch.object(owner, name, timed(getattr(owner, name), part)))
        yield


def run_stage(config: ScoreConfig, dataset: Dataset, device: torch.device, seconds: Counter) -> dict:
    """``curriculum score`` itself on ``dataset`` (records, training states, report), into a
    temporary folder; ``seconds`` receives the time of each part. Returns its run.json."""
    stage = ScoreConfig(**{**vars(config), "stack": "auto", "cpu": device.type == "cpu", "processes": "1"})
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(score_stage, "load_dataset", lambda *a, **k: dataset):
        with timed_parts(seconds, device):
            run = score_stage.score(ScoreConfig(**{**vars(stage), "out": str(Path(tmp) / "run")}))
        return read_run_info(run)


def flops_per_example(arch: str, dataset: Dataset, batch: int, device: torch.device) -> tuple[float, float]:
    """(training, evaluation) FLOPs per example of one model, counted on one batch."""
    h, w, c = dataset.image_shape
    model = build_model(arch, in_channels=c, num_classes=dataset.num_classes, image_size=(h, w)).to(device)
    x = torch.randn(batch, c, h, w, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as train_count:
        F.cross_entropy(model(x), y).backward()
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as eval_count:
        model(x)
    return train_count.get_total_flops() / batch, eval_count.get_total_flops() / batch


WAYS = ("plain", "one-by-one", "stacked", "vmap", "stage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=50_000, help="train examples")
    parser.add_argument("--test", type=int, default=10_000, help="test examples")
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--lr", type=float, default=0.01, help="SGD learning rate (the stage's 0.05 diverges on this synthetic data)"
    )
    parser.add_argument("--arch", default="auto")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on a GPU that supports it), no, bf16")
    parser.add_argument(
        "--eval-every",
        type=float,
        default=0.25,
        help="the stage way's checkpoint interval in epochs "
        "(the command's default); the training ways predict every epoch",
    )
    parser.add_argument("--ways", default=",".join(WAYS), help=f"which ways to run, comma-separated: {', '.join(WAYS)}")
    parser.add_argument("--rounds", type=int, default=1, help="alternating timed rounds of the ways (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--cpu", action="store_true", help="use the CPU even if a GPU is present")
    parser.add_argument(
        "--peak-tflops", type=float, help="the device's peak TFLOP/s at this precision (default: a table of GPUs)"
    )
    args = parser.parse_args()
    chosen = [way.strip() for way in args.ways.split(",") if way.strip()]
    if not chosen or set(chosen) - set(WAYS):
        parser.error(f"--ways takes some of {', '.join(WAYS)}, got {args.ways}")

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    policy = device_policy(device)
    dataset = synthetic_cifar(args.train, args.test)
    config = ScoreConfig(
        dataset="synthetic-cifar",
        arch=args.arch,
        members=args.members,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        precision=args.precision,
        eval_every=args.eval_every,
        quiet=True,
    ).complete()
    arch, precision = resolve_arch(config, dataset), resolve_precision(config, policy)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU"
    )
    print(
        f"{name}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
        f"{os.getloadavg()[0]:.2f}; {arch}, precision {precision}, {args.members} members x {args.epochs} epochs, "
        f"{args.train} train + {args.test} test examples, batch {args.batch_size}; {policy.kind} device policy "
        f"(stack {policy.stack}, {policy.optimizer} optimizer)",
        flush=True,
    )

    stage_seconds: Counter = Counter()
    stage_info: dict = {}
    ways = {
        "plain": lambda cfg, ds: run_plain(cfg, ds, arch, precision, device),
        "one-by-one": lambda cfg, ds: run_engine(cfg, ds, arch, precision, device, stacked=False),
        "stacked": lambda cfg, ds: run_engine(cfg, ds, arch, precision, device, stacked=True),
        "vmap": lambda cfg, ds: run_engine(cfg, ds, arch, precision, device, stacked=True, way="vmap"),
        "stage": lambda cfg, ds: stage_info.update(
            run_stage(cfg, ds, device, stage_seconds if cfg is config else Counter())
        ),
    }
    ways = {way: run for way, run in ways.items() if way in chosen}
    warm = ScoreConfig(**{**vars(config), "members": 2, "epochs": 1, "eval_every": 1.0})
    warm_data = synthetic_cifar(2 * args.batch_size, args.batch_size, seed=1)
    for run in ways.values():
        run(warm, warm_data)
    times: dict[str, list[float]] = {way: [] for way in ways}
    cpu_times: dict[str, list[float]] = {way: [] for way in ways}
    preds = {}
    for round_ in range(args.rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for way in order:
            sync(device)
            started, cpu_started = time.perf_counter(), time.process_time()
            preds[way] = ways[way](config, dataset)
            sync(device)
            times[way].append(time.perf_counter() - started)
            cpu_times[way].append(time.process_time() - cpu_started)
            print(f"round {round_ + 1} {way}: {times[way][-1]:.1f} s ({cpu_times[way][-1]:.1f} CPU s)", flush=True)

    trained = args.members * args.epochs * args.train
    train_flops, eval_flops = flops_per_example(arch, dataset, args.batch_size, device)
    checkpoints = {way: args.epochs + 1 for way in ways}
    if "stage" in ways:
        checkpoints["stage"] = len(stage_info["checkpoints"])
    evaluated = {way: args.members * count * (args.train + args.test) for way, count in checkpoints.items()}
    flops = {way: trained * train_flops + evaluated[way] * eval_flops for way in ways}
    peak = (
        args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if device.type == "cuda"
        else None
    )
    base = next(iter(ways))
    print(
        f"\n{trained:,} training examples; {train_flops / 1e6:.1f} MFLOP per training example, {eval_flops / 1e6:.1f} per "
        f"evaluation; the training ways evaluate {args.members} x {args.epochs + 1} checkpoints"
        + (f", the stage {args.members} x {checkpoints['stage']}" if "stage" in ways else "")
    )
    print(
        f"{'way':<11} {'seconds':>8} {'runs':>24} {'vs ' + base:>12} {'examples/s':>11} {'CPU s':>7} {'vs ' + base:>12} "
        f"{'TFLOP':>7} {'TFLOP/s':>8} {'of peak':>8}"
    )
    base_wall, base_cpu = statistics.median(times[base]), statistics.median(cpu_times[base])
    for way, values in times.items():
        seconds, cpu = statistics.median(values), statistics.median(cpu_times[way])
        achieved = flops[way] / seconds / 1e12
        gpu = (
            (f"{achieved:8.2f} {(f'{achieved / peak:.1%}' if peak else 'unknown'):>8}")
            if device.type == "cuda"
            else f"{'':>8} {'':>8}"
        )
        runs = " ".join(f"{v:.1f}" for v in values)
        print(
            f"{way:<11} {seconds:8.1f} {runs:>24} {base_wall / seconds:11.2f}x {(trained + evaluated[way]) / seconds:11,.0f} "
            f"{cpu:7.1f} {base_cpu / cpu:11.2f}x {flops[way] / 1e12:7.2f} {gpu}"
        )
    if "stage" in ways:
        total = sum(times["stage"])
        parts = {part: stage_seconds[part] for part in STAGE_PARTS}
        parts["other"] = total - sum(parts.values())
        print(
            f"\nstage ({stage_info['settings']['layout']}, precision {stage_info['settings']['precision']}, "
            f"{checkpoints['stage']} checkpoints): "
            + ", ".join(f"{part} {100 * value / total:.1f} %" for part, value in parts.items())
            + f" of {total:.1f} s"
        )
        for way in ("stacked", "one-by-one"):
            if way in ways and (way == "stacked") == stage_info["settings"]["layout"].startswith("stacked"):
                print(
                    f"stage vs its training loop alone ({way}, {args.epochs + 1} checkpoints): "
                    f"{statistics.median(times['stage']) / statistics.median(times[way]):.2f}x the time"
                )
                break
    print()
    for a, b in (("stacked", "one-by-one"), ("stacked", "vmap")):
        if a in ways and b in ways:
            agree = np.array(
                [[np.mean(x == y) for x, y in zip(preds[a][key], preds[b][key])] for key in preds[b]]
            )  # [member and split, checkpoint]
            print(
                f"{a} vs {b} records: {agree.min():.2%} of the predicted labels agree at the worst checkpoint "
                f"(member and split), {agree.mean():.2%} on average, {agree[:, -1].mean():.2%} at the last"
            )


if __name__ == "__main__":
    main()
