"""Benchmark the score stage's training: a plain PyTorch loop vs the engine, one by one and stacked.

All three train the same members (same architecture, seeds, batch size, SGD schedule, epochs)
and, at every checkpoint (initialisation and every epoch), predict every train and test example,
moving the predictions to the host, as the score stage records them:

  plain       the sequential loop a careful user writes: data normalised once as a float tensor
              on the device, one member after another, ``model(x)``, cross-entropy, ``opt.step()``,
              evaluation in batches of 1024 under ``torch.no_grad`` (label, P(true), EL2N)
  one by one  the engine (``curriculum.stages.score.GroupTrainer``) with ``stack="off"``
  stacked     the engine with ``stack="on"``: the members as one ``torch.func`` model
Nothing is written to disk. Runs alternate (``--rounds``) after a short warm-up of each, and the
median is reported: wall seconds, the ratio of the plain loop's time to each (above 1 = faster than
plain), examples per second (training plus evaluated examples) and, on a GPU, the achieved FLOP/s
against the device's peak (FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode``), and
this process's CPU seconds with their ratio (steadier than wall time on cores other jobs share). It
also prints how many predicted labels the stacked and one-by-one records share.

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
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from curriculum.data import Dataset, Split
from curriculum.engine import DeviceData, resolve_arch, resolve_precision
from curriculum.members import autocast
from curriculum.models import build_model
from curriculum.recipes import with_recipe
from curriculum.stages.score import GroupTrainer, ScoreConfig, batches_per_epoch, checkpoint_steps, member_seed

# Dense bf16 tensor-core peak in TFLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0, "4090": 165.2}


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


def run_plain(config: ScoreConfig, dataset: Dataset, arch: str, precision: str, device: torch.device) -> dict:
    """The plain sequential loop; at each checkpoint it moves predicted label, P(true class) and
    EL2N to the host, as the engine does; returns the last checkpoint's predicted labels."""
    h, w, c = dataset.image_shape
    data = DeviceData(dataset, device)
    x_all = {s: data.batch(s, slice(None))[0] for s in ("train", "test")}
    y_all = {s: data.labels[s] for s in ("train", "test")}
    m, b = len(y_all["train"]), config.batch_size
    steps_per_epoch = batches_per_epoch(m, b)
    decay_every = max(1, round(config.lr_decay_epochs * steps_per_epoch))
    preds = {}
    for member in range(config.members):
        seed = member_seed(config.seed, member)
        torch.manual_seed(seed)
        model = build_model(arch, in_channels=c, num_classes=dataset.num_classes, image_size=(h, w)).to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        generator = torch.Generator(device=device).manual_seed(seed)
        step = 0
        for epoch in range(int(config.epochs) + 1):
            model.eval()
            with torch.no_grad():
                for split in ("train", "test"):
                    outs = {"pred": [], "p_true": [], "el2n": []}
                    for start in range(0, len(y_all[split]), 1024):
                        with autocast(device, precision):
                            probs = torch.softmax(model(x_all[split][start : start + 1024]).float(), dim=1)
                        p_true = probs.gather(1, y_all[split][start : start + 1024, None]).squeeze(1)
                        outs["pred"].append(probs.argmax(1))
                        outs["p_true"].append(p_true)
                        outs["el2n"].append(torch.sqrt((probs.square().sum(1) - 2 * p_true + 1).clamp_min(0)))
                    host = {key: torch.cat(value).cpu().numpy() for key, value in outs.items()}
                    preds[member, split] = host["pred"]
            if epoch == int(config.epochs):
                break
            model.train()
            perm = torch.randperm(m, generator=generator, device=device)
            for position in range(steps_per_epoch):
                index = perm[position * b :] if position == steps_per_epoch - 1 else perm[position * b : (position + 1) * b]
                for group in optimizer.param_groups:
                    group["lr"] = max(config.lr / config.lr_decay ** (step // decay_every), config.min_lr)
                with autocast(device, precision):
                    loss = F.cross_entropy(model(x_all["train"][index]).float(), y_all["train"][index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
    return preds


def run_engine(config: ScoreConfig, dataset: Dataset, arch: str, precision: str, device: torch.device, stacked: bool) -> dict:
    """The score stage's trainer on every member at once, checkpoint by checkpoint, no files."""
    data = DeviceData(dataset, device)
    steps_per_epoch = batches_per_epoch(len(dataset.train.labels), config.batch_size)
    steps = checkpoint_steps(config.epochs, 1, steps_per_epoch)
    trainer = GroupTrainer(config, arch, dataset, data, list(range(config.members)), precision, stacked, steps[-1], steps_per_epoch)
    for index, step in enumerate(steps):
        trainer.run_to(step, None)
        rows = trainer.record(initial=index == 0)
    return {(member, split): rows[member][split]["pred"] for member in range(config.members) for split in ("train", "test")}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=50_000, help="train examples")
    parser.add_argument("--test", type=int, default=10_000, help="test examples")
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (the stage's 0.05 diverges on this synthetic data)")
    parser.add_argument("--arch", default="auto")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on a GPU that supports it), no, bf16")
    parser.add_argument("--rounds", type=int, default=1, help="alternating timed rounds of the three (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--cpu", action="store_true", help="use the CPU even if a GPU is present")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s at this precision (default: a table of GPUs)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    dataset = synthetic_cifar(args.train, args.test)
    config = with_recipe(ScoreConfig(dataset="synthetic-cifar", arch=args.arch, members=args.members, epochs=args.epochs,
                                     batch_size=args.batch_size, lr=args.lr, precision=args.precision, quiet=True))
    arch, precision = resolve_arch(config, dataset), resolve_precision(config, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()} CPU"
    print(f"{name}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{os.getloadavg()[0]:.2f}; {arch}, precision {precision}, {args.members} members x {args.epochs} epochs, "
          f"{args.train} train + {args.test} test examples, batch {args.batch_size}")

    ways = {
        "plain": lambda cfg, ds: run_plain(cfg, ds, arch, precision, device),
        "one by one": lambda cfg, ds: run_engine(cfg, ds, arch, precision, device, stacked=False),
        "stacked": lambda cfg, ds: run_engine(cfg, ds, arch, precision, device, stacked=True),
    }
    warm = ScoreConfig(**{**vars(config), "members": 2, "epochs": 1})
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

    checkpoints = args.epochs + 1
    trained = args.members * args.epochs * args.train
    evaluated = args.members * checkpoints * (args.train + args.test)
    train_flops, eval_flops = flops_per_example(arch, dataset, args.batch_size, device)
    total_flops = trained * train_flops + evaluated * eval_flops
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None) if device.type == "cuda" else None
    plain = statistics.median(times["plain"])
    print(f"\n{trained:,} training + {evaluated:,} evaluated examples; {total_flops / 1e12:.2f} TFLOP "
          f"({train_flops / 1e6:.1f} MFLOP per training example, {eval_flops / 1e6:.1f} per evaluation)")
    plain_cpu = statistics.median(cpu_times["plain"])
    print(f"{'way':<11} {'seconds':>8} {'runs':>24} {'vs plain':>9} {'examples/s':>11} {'CPU s':>7} {'vs plain':>9} {'TFLOP/s':>8} {'of peak':>8}")
    for way, values in times.items():
        seconds, cpu = statistics.median(values), statistics.median(cpu_times[way])
        achieved = total_flops / seconds / 1e12
        gpu = (f"{achieved:8.2f} {(f'{achieved / peak:.1%}' if peak else 'unknown'):>8}") if device.type == "cuda" else f"{'':>8} {'':>8}"
        runs = " ".join(f"{v:.1f}" for v in values)
        print(f"{way:<11} {seconds:8.1f} {runs:>24} {plain / seconds:8.2f}x {(trained + evaluated) / seconds:11,.0f} "
              f"{cpu:7.1f} {plain_cpu / cpu:8.2f}x {gpu}")
    same = np.mean([np.mean(preds["stacked"][key] == preds["one by one"][key]) for key in preds["stacked"]])
    print(f"\nstacked vs one-by-one records: {same:.2%} of the last checkpoint's predicted labels agree")


if __name__ == "__main__":
    main()
