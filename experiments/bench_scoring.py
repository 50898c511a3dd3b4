"""Benchmark the score pass at the source papers' scale: synthetic records in the real on-disk layout,
scored by the streaming pass (``scoring.run.write_scores``), and at the small size by the
in-memory way it replaced, which lives only here (and in the tests, which import it from here).

The record: N members x E checkpoints x M examples in the layout of ``scoring.records``, with
learning dynamics that look like training, not constants: each example has a difficulty, each
member a speed; at checkpoint e the logit of P(true class) grows with training time minus the
difficulty, plus noise per member, checkpoint and example (so examples are learned at different
times, forgotten and relearned, and members disagree). The predicted label is the true one when
P(true class) > 1/2, else a wrong one; EL2N follows from P(true class) with the rest spread over
the other classes. Checkpoint 0 is initialisation (near chance, mostly wrong).

The script prints wall and CPU seconds (this process's; steadier than wall time on shared
cores), peak RSS (the process's high-water mark, read from /proc/self/status and reset before
each pass), entries per second (N x E x M over both splits' wall time) and, with ``--compare``,
the same for the in-memory way and the ratios (above 1 = the streaming pass is faster or
smaller). The streaming pass runs first, so the in-memory way's peak cannot hide its own.

    python experiments/bench_scoring.py --members 10 --checkpoints 41 --examples 60000 --compare
    python experiments/bench_scoring.py --members 100 --checkpoints 561 --examples 60000 \\
        --dir /scratch/bench-seed --keep        # the seed setup: ~20 GB of record, generated once

Records go to ``--dir`` (default: a temporary folder, removed at the end unless ``--keep``); a
folder that already holds a complete record of the same size is scored without rewriting it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring.errors import UserError
from scoring.files import atomic_write_json
from scoring.records import FIELDS, check_complete, member_dir, read_run_info
from scoring.reliability import DEFAULT_HALVINGS, spearman_brown
from scoring.run import el2n_checkpoint, write_scores
from scoring.scores import Scores
from scoring.stream import DEFAULT_MEMORY_MB
from stats.distributions import spearman_rho

CLASSES = 10
SPLIT_SIZES = (5 / 6, 1 / 6)  # train / test shares of the examples (CIFAR-10: 50,000 / 10,000)


# ---------------------------------------------------------------------------------------------
# the synthetic record


def split_sizes(examples: int) -> dict[str, int]:
    train = round(examples * SPLIT_SIZES[0])
    return {"train": train, "test": examples - train}


def synthetic_labels(sizes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {split: rng.integers(0, CLASSES, size).astype(np.int64) for split, size in sizes.items()}


def write_record(run_dir: Path, members: int, checkpoints: int, examples: int, seed: int = 0) -> dict:
    """Write a complete synthetic run (``run.json``, every member's ``.npy`` files and
    ``progress.json``) and return its run.json content. The files are written front to back in
    the layout :class:`scoring.records.MemberRecord` allocates (checked when they are read);
    the noise comes from one table read at random offsets, and P(true class) and EL2N from
    tables over a fine grid of logits, so that 20 GB take minutes, not an hour."""
    sizes = split_sizes(examples)
    labels = synthetic_labels(sizes, seed)
    info = {
        "dataset": {
            "name": f"synthetic-{members}x{checkpoints}x{examples}",
            "fingerprint": f"bench-{seed}",
            "sizes": sizes,
        },
        "arch": "synthetic",
        "members": members,
        "status": "complete",
        "settings": {},
        "checkpoints": [{"index": e, "step": e, "epoch": e / 4} for e in range(checkpoints)],
    }
    atomic_write_json(run_dir / "run.json", info)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(1 << 20, dtype=np.float32)
    grid = np.linspace(-_LOGIT_RANGE, _LOGIT_RANGE, _GRID)
    p_grid = 1.0 / (1.0 + np.exp(-grid))
    tables = {
        "p_true": p_grid.astype(np.float16),
        "el2n": np.sqrt((1 - p_grid) ** 2 * (1 + 1 / (CLASSES - 1))).astype(np.float16),
    }
    right_from = int(np.searchsorted(p_grid, 0.5, side="right"))  # grid index from which P(true) > 1/2
    chance = int(np.searchsorted(p_grid, 1 / CLASSES))
    difficulty = {split: rng.normal(0.0, 1.5, size).astype(np.float32) for split, size in sizes.items()}
    wrong = {
        split: ((labels[split] + 1 + np.arange(size) % (CLASSES - 1)) % CLASSES).astype(np.int16)
        for split, size in sizes.items()
    }
    time_axis = np.linspace(0.0, 1.0, checkpoints, dtype=np.float32)
    for n in range(members):
        speed = np.float32(rng.uniform(5.0, 9.0))
        folder = member_dir(run_dir, n)
        folder.mkdir(parents=True, exist_ok=True)
        for split, size in sizes.items():
            handles = {
                field: _npy_writer(folder / f"{split}.{field}.npy", dtype, (checkpoints, size))
                for field, dtype in FIELDS.items()
            }
            try:
                for e in range(checkpoints):
                    offset = int(rng.integers(0, len(noise) - size))
                    logit = noise[offset : offset + size] + (speed * time_axis[e] - 3.0) - difficulty[split]
                    index = np.clip(
                        ((logit + _LOGIT_RANGE) * ((_GRID - 1) / (2 * _LOGIT_RANGE))).astype(np.int32),
                        0,
                        _GRID - 1,
                    )
                    if e == 0:  # initialisation: near chance, mostly wrong
                        index = np.clip(chance + (index - _GRID // 2) // 16, 0, right_from - 1)
                    right = index >= right_from
                    handles["pred"].write(np.where(right, labels[split].astype(np.int16), wrong[split]).tobytes())
                    handles["p_true"].write(tables["p_true"][index].tobytes())
                    handles["el2n"].write(tables["el2n"][index].tobytes())
            finally:
                for handle in handles.values():
                    handle.close()
        atomic_write_json(folder / "progress.json", {"checkpoints": checkpoints})
    return info


_LOGIT_RANGE, _GRID = 12.0, 1 << 14


def _npy_writer(path: Path, dtype: type, shape: tuple[int, int]):
    """A ``.npy`` file of ``shape`` opened for its rows to be written in order after the header."""
    handle = open(path, "wb")
    np.lib.format.write_array_header_1_0(
        handle,
        {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape},
    )
    return handle


def has_record(run_dir: Path, members: int, checkpoints: int, examples: int) -> bool:
    info = read_run_info(run_dir) if (run_dir / "run.json").exists() else None
    if info is None or info["members"] != members or len(info["checkpoints"]) != checkpoints:
        return False
    if sum(info["dataset"]["sizes"].values()) != examples:
        return False
    try:
        check_complete(run_dir, members, checkpoints)
    except UserError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the in-memory way the streaming pass replaced (kept here only, as the baseline and the tests'
# reference): load every member's arrays, widen them, compute each score from [N, E, M] arrays,
# and recompute every score from the raw arrays for each random half of the members


@dataclass(frozen=True)
class Record:
    """All members' predictions for one split: arrays of shape [N members, E checkpoints, M]."""

    pred: np.ndarray
    p_true: np.ndarray
    el2n: np.ndarray
    labels: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels[None, None, :]


def load_record(run_dir: str | Path, split: str, labels: np.ndarray, members: int, checkpoints: int) -> Record:
    """Every member's committed record of ``split``, stacked and widened (int64 / float32)."""
    run_dir = Path(run_dir)
    check_complete(run_dir, members, checkpoints)
    arrays = {
        field: [
            np.load(member_dir(run_dir, n) / f"{split}.{field}.npy", mmap_mode="r")[:checkpoints]
            for n in range(members)
        ]
        for field in FIELDS
    }
    return Record(
        pred=np.stack(arrays["pred"]).astype(np.int64),
        p_true=np.stack(arrays["p_true"]).astype(np.float32),
        el2n=np.stack(arrays["el2n"]).astype(np.float32),
        labels=np.asarray(labels, dtype=np.int64),
    )


def in_memory_columns(record: Record, el2n_at: int) -> dict[str, np.ndarray]:
    """Every score of one split's record, from the whole arrays (the formulas of
    ``scoring.agreement`` and ``scoring.dynamics``)."""
    from scoring import agreement, dynamics

    correct = record.correct
    trained = correct[:, 1:]  # checkpoints after initialisation
    confidence, variability, correctness = dynamics.data_map(record.p_true[:, 1:], trained)
    return {
        "consistency": agreement.consistency(correct)[-1],
        "consensus": agreement.consensus(record.pred)[-1],
        "accessibility": agreement.accessibility(correct),
        "learned_checkpoint": dynamics.learned_checkpoint(trained).mean(0) + 1,
        "forgetting": dynamics.forgetting_events(trained).mean(0),
        "confidence": confidence,
        "variability": variability,
        "correctness": correctness,
        "el2n": dynamics.mean_el2n(record.el2n, el2n_at),
    }


def in_memory_reliability(
    record: Record, el2n_at: int, splits: int = DEFAULT_HALVINGS, seed: int = 0, decimals: int | None = None
) -> dict[str, dict[str, float]]:
    """Split-half reliability recomputing every score from the raw arrays of each half.
    ``decimals`` rounds the half scores first, as the streaming pass does (12 decimals): float
    rounding in this way splits ties between examples with the same statistics."""
    n = record.pred.shape[0]
    half = n // 2
    rng = np.random.default_rng(seed)
    rhos: dict[str, list[float]] = {}
    for _ in range(splits):
        order = rng.permutation(n)
        a, b = (
            {
                name: (v if decimals is None else np.round(v, decimals))
                for name, v in in_memory_columns(
                    Record(record.pred[g], record.p_true[g], record.el2n[g], record.labels), el2n_at
                ).items()
            }
            for g in (order[:half], order[half : 2 * half])
        )
        for name in a:
            rhos.setdefault(name, []).append(spearman_rho(a[name], b[name]))
    out = {}
    for name, values in rhos.items():
        defined = [v for v in values if not np.isnan(v)]
        rho = float(np.mean(defined)) if defined else float("nan")
        out[name] = {"half": rho, "full": spearman_brown(rho, n / half)}
    return out


def in_memory_write_scores(run_dir: Path, info: dict, labels: dict[str, np.ndarray], out: Path) -> Scores:
    """The whole in-memory score step: load, score, reliability, write ``out``."""
    epochs = [c["epoch"] for c in info["checkpoints"]]
    el2n_at = el2n_checkpoint(epochs)
    columns, reliability = {}, {}
    for split, split_labels in labels.items():
        record = load_record(run_dir, split, split_labels, info["members"], len(epochs))
        columns[split] = in_memory_columns(record, el2n_at)
        reliability[split] = in_memory_reliability(record, el2n_at)
        del record
    scores = Scores.from_columns(
        columns,
        labels,
        reliability,
        dataset=info["dataset"]["name"],
        fingerprint=info["dataset"]["fingerprint"],
        el2n_checkpoint=el2n_at,
    )
    scores.save(out)
    return scores


# ---------------------------------------------------------------------------------------------
# measuring


def reset_peak() -> None:
    """Reset this process's peak RSS (Linux: writing 5 to clear_refs), so the next pass reports its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss() -> int:
    """Bytes: VmHWM from /proc/self/status, else ru_maxrss (never reset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(fn) -> tuple[float, float, int, object]:
    """Wall seconds, this process's CPU seconds (steadier than wall time on shared cores), peak RSS, result."""
    reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, peak_rss(), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--checkpoints", type=int, default=41, help="E, initialisation included")
    parser.add_argument("--examples", type=int, default=60_000, help="train + test (5/6 train)")
    parser.add_argument(
        "--memory-mb", type=float, default=DEFAULT_MEMORY_MB, help="the streaming pass's memory setting"
    )
    parser.add_argument("--compare", action="store_true", help="also time the in-memory way and check the scores agree")
    parser.add_argument("--dir", help="where the record goes (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the record for a later call")
    args = parser.parse_args()
    entries = args.members * args.checkpoints * args.examples
    run_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    print(
        f"{args.members} members x {args.checkpoints} checkpoints x {args.examples} examples = {entries:.3g} entries, "
        f"{6 * entries / 1e9:.2f} GB of record in {run_dir}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    try:
        if has_record(run_dir, args.members, args.checkpoints, args.examples):
            print("record: reused")
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            seconds = time.perf_counter()
            write_record(run_dir, args.members, args.checkpoints, args.examples)
            print(f"record: written in {time.perf_counter() - seconds:.1f} s")
        info = read_run_info(run_dir)
        labels = synthetic_labels(info["dataset"]["sizes"])
        wall, cpu, rss, (scores, _) = measure(lambda: write_scores(run_dir, info, labels, memory_mb=args.memory_mb))
        print(
            f"streaming pass:  {wall:8.1f} s wall, {cpu:8.1f} s CPU  peak RSS {rss / 2**30:6.2f} GiB  "
            f"{entries / wall:10.3g} entries/s ({entries / cpu:.3g} per CPU second; memory setting {args.memory_mb:g} MiB; "
            f"load {os.getloadavg()[0]:.1f})"
        )
        if args.compare:
            old_wall, old_cpu, old_rss, old = measure(
                lambda: in_memory_write_scores(run_dir, info, labels, run_dir / "in_memory.parquet")
            )
            print(
                f"in-memory way:   {old_wall:8.1f} s wall, {old_cpu:8.1f} s CPU  peak RSS {old_rss / 2**30:6.2f} GiB  "
                f"{entries / old_wall:10.3g} entries/s ({entries / old_cpu:.3g} per CPU second; load {os.getloadavg()[0]:.1f})"
            )
            print(
                f"ratio (in-memory / streaming): wall {old_wall / wall:.1f}x, CPU {old_cpu / cpu:.1f}x, "
                f"peak RSS {old_rss / rss:.1f}x"
            )
            names = [c for c in old.table.columns if c not in ("split", "index", "id", "content_hash", "label")]
            worst = max(float(np.max(np.abs(scores.table[c].to_numpy() - old.table[c].to_numpy()))) for c in names)
            print(f"largest difference between the two ways' scores: {worst:.2g}")
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
