"""Figures of a score run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scoring import agreement  # noqa: E402
from scoring.files import atomic_write, atomic_write_bytes  # noqa: E402
from scoring.records import SPLITS, Record  # noqa: E402
from scoring.run import write_scores  # noqa: E402
from scoring.scores import Scores  # noqa: E402
from scoring.summary import checkpoint_summary, format_reliability, format_summary  # noqa: E402
from stats.distributions import class_conditional_null_consistency, independent_null_consistency  # noqa: E402

SPLIT_COLORS = {"train": "tab:blue", "test": "tab:orange"}


def pick_checkpoints(count: int, panels: int = 7) -> list[int]:
    """Up to ``panels`` checkpoint indices, dense early (where agreement forms) and always the last,
    like the epochs 0, 1, 2, 5, 10, 20, 40 of Hacohen et al.'s Fig. 1."""
    if count <= panels:
        return list(range(count))
    picks = np.unique(np.round(np.geomspace(1, count, panels)).astype(int) - 1)
    return sorted({0, *picks.tolist(), count - 1})


def consistency_histograms(records: dict[str, Record], epochs: list[float], path: Path) -> Path:
    """Observed consistency histograms per checkpoint (rows: splits) beside the histograms that
    independent members would give with the same accuracies (Poisson-binomial) and with the same
    per-class accuracies (a mixture over classes)."""
    picks = pick_checkpoints(len(epochs))
    fig, axes = plt.subplots(len(records), len(picks), figsize=(2.3 * len(picks), 2.4 * len(records)), squeeze=False, sharey="row")
    for row, (split, record) in enumerate(records.items()):
        correct = record.correct
        n = correct.shape[0]
        consistency = agreement.consistency(correct)
        for col, e in enumerate(picks):
            ax = axes[row, col]
            values = np.round(consistency[e] * n).astype(int)
            observed = np.bincount(values, minlength=n + 1) / len(values)
            grid, null = independent_null_consistency(correct[:, e, :].mean(1))
            classes, sizes = np.unique(record.labels, return_counts=True)
            by_class = np.stack([correct[:, e, record.labels == k].mean(1) for k in classes], axis=1)
            _, class_null = class_conditional_null_consistency(by_class, sizes / sizes.sum())
            width = 0.8 / (n + 1) / 1.5
            ax.bar(grid - width, observed, width=width, color=SPLIT_COLORS.get(split, "tab:gray"), label="observed")
            ax.bar(grid, null, width=width, color="lightgray", edgecolor="gray", label="independent")
            ax.bar(grid + width, class_null, width=width, color="white", edgecolor="black", hatch="///", label="independent given class")
            ax.set_title(f"{split}, epoch {epochs[e]:g}", fontsize=9)
            ax.set_xlim(-2 * width, 1 + 2 * width)
            ax.set_xticks(grid if n <= 10 else grid[:: max(1, n // 5)])
            ax.tick_params(axis="x", labelsize=6)
            ax.set_xlabel("consistency", fontsize=8)
        axes[row, 0].set_ylabel("fraction of examples", fontsize=8)
    axes[0, -1].legend(fontsize=7, loc="upper center")
    fig.suptitle("Consistency over training: observed vs independent members (same accuracies; same per-class accuracies)", fontsize=10)
    return _save(fig, path)


def agreement_curve(summary: pd.DataFrame, path: Path) -> Path:
    """TP-agreement, its lower bound and mean accuracy +- std over epochs (Pliushch et al., Fig. 2)."""
    splits = list(summary["split"].unique())
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False, sharey=True)
    for ax, split in zip(axes[0], splits):
        rows = summary[summary["split"] == split]
        x = rows["epoch"].to_numpy()
        mean, std = rows["acc_mean"].to_numpy(), rows["acc_std"].to_numpy()
        ax.plot(x, mean, color="black", label="mean accuracy")
        ax.fill_between(x, mean - std, mean + std, color="black", alpha=0.15, label="accuracy +- std")
        ax.plot(x, rows["tpa"], color="tab:red", label="TP-agreement")
        ax.plot(x, rows["tpa_lower"], color="tab:red", linestyle="--", label="lower bound")
        ax.set_title(split)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("fraction")
    axes[0, -1].legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    try:
        atomic_write(path, lambda handle: fig.savefig(handle, dpi=110, format=path.suffix.lstrip(".")))
    finally:
        plt.close(fig)
    return path


def write_report(run_dir: Path, dataset, info: dict, quiet: bool = False) -> Scores:
    """Turn a finished record into ``scores.parquet``, ``summary.csv``, figures and ``report.md``,
    and print the per-checkpoint summary."""
    run_dir = Path(run_dir)
    epochs = [c["epoch"] for c in info["checkpoints"]]
    parts = {split: dataset.split(split) for split in SPLITS}
    scores, records = write_scores(
        run_dir, info, {split: part.labels for split, part in parts.items()},
        ids={split: part.ids for split, part in parts.items()},
        hashes={split: part.content_hashes for split, part in parts.items()},
    )
    summary = checkpoint_summary(records, epochs)
    atomic_write_bytes(run_dir / "summary.csv", summary.to_csv(index=False).encode())
    figures = [
        consistency_histograms(records, epochs, run_dir / "figures" / "consistency_histograms.png"),
        agreement_curve(summary, run_dir / "figures" / "agreement_curve.png"),
    ]
    text = format_summary(summary)
    reliability = format_reliability(scores.reliability, info["members"])
    reliability_title = (f"Reliability of each score's order: split-half Spearman, Spearman-Brown corrected to "
                         f"{info['members']} members (what a second run with another --seed is expected to reach)")
    lines = [
        f"# Score run: {dataset.name}",
        "",
        f"{info['members']} members of `{info['arch']}`, {len(epochs)} checkpoints (epoch {epochs[-1]:g} last); "
        f"dataset fingerprint `{dataset.fingerprint[:16]}`.",
        "",
        "```",
        text,
        "```",
        "",
        reliability_title + ":",
        "",
        "```",
        reliability,
        "```",
        "",
        *[f"![{f.stem}](figures/{f.name})" for f in figures],
        "",
    ]
    atomic_write_bytes(run_dir / "report.md", "\n".join(lines).encode())
    if not quiet:
        print(f"\n{info['members']} x {info['arch']} on {dataset.name}: per-checkpoint agreement "
              "(c=0/c=1: fraction of examples no/every member gets right: observed / independent members "
              "of the same accuracies / independent given the class, with the same per-class accuracies)")
        print(text)
        print(f"\n{reliability_title}:")
        print(reliability)
        print(f"\nScores: {run_dir / 'scores.parquet'}   Figures: {run_dir / 'figures'}")
    return scores


def statistics_figure(summary: pd.DataFrame, curves: pd.DataFrame, path: Path, min_agreement: float = 0.2) -> Path:
    """The agreement curve beside, per statistic, its mean over the examples all members get right
    (Pliushch et al., Fig. 4). Checkpoints with TP-agreement below ``min_agreement`` are left out,
    as in their plots, since the mean over a handful of agreed examples is noise (or 0 when none)."""
    names = list(curves["statistic"].unique())
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.6 * (len(names) + 1), 3.3), squeeze=False)
    first = axes[0, 0]
    for split in summary["split"].unique():
        rows = summary[summary["split"] == split]
        first.plot(rows["epoch"], rows["tpa"], color=SPLIT_COLORS.get(split), label=f"TPa {split}")
        first.plot(rows["epoch"], rows["acc_mean"], color=SPLIT_COLORS.get(split), linestyle=":", label=f"accuracy {split}")
    first.set_title("agreement")
    first.set_xlabel("epoch")
    first.set_ylim(0, 1.02)
    first.legend(fontsize=7)
    for ax, name in zip(axes[0, 1:], names):
        for split in curves["split"].unique():
            rows = curves[(curves["statistic"] == name) & (curves["split"] == split)]
            shown = rows[rows["tpa"] >= min_agreement]
            ax.plot(shown["epoch"], shown["agreed_mean"], marker=".", color=SPLIT_COLORS.get(split), label=f"agreed, {split}")
            ax.axhline(rows["dataset_mean"].iloc[0], color=SPLIT_COLORS.get(split), linestyle="--", linewidth=0.8, label=f"all, {split}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=7)
    fig.suptitle(f"Mean image statistic over the examples all members classify correctly (TPa >= {min_agreement:g})", fontsize=10)
    return _save(fig, path)


ORDER_COLORS = {"curriculum": "tab:green", "random": "tab:blue", "anti": "tab:red", "none": "black"}


def learning_curves_figure(curves: pd.DataFrame, path: Path, title: str = "", open_fraction: np.ndarray | None = None) -> Path:
    """Test accuracy over training steps: mean over seeds per order, with a +- std band; on a
    second axis, the fraction of the train set the pacing has opened at each step (``none``
    trains on all of it from the start)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if open_fraction is not None:
        opened = ax.twinx()
        opened.fill_between(np.arange(1, len(open_fraction) + 1), open_fraction, step="post", color="tab:gray", alpha=0.12, linewidth=0)
        opened.plot(np.arange(1, len(open_fraction) + 1), open_fraction, color="tab:gray", linewidth=0.8, drawstyle="steps-post",
                    label="open fraction (paced orders)")
        opened.set_ylim(0, 1.02)
        opened.set_ylabel("fraction of the train set open to the paced orders", color="tab:gray", fontsize=8)
        opened.tick_params(axis="y", colors="tab:gray")
        ax.set_zorder(opened.get_zorder() + 1)
        ax.patch.set_visible(False)
    for order, rows in curves.groupby("order", sort=False):
        stats = rows.groupby("step")["test_accuracy"].agg(["mean", "std"]).fillna(0.0)
        color = ORDER_COLORS.get(order)
        ax.plot(stats.index, stats["mean"], color=color, label=order)
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=color, alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy (mean; band +- std over seeds)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if open_fraction is not None:
        extra = opened.get_legend_handles_labels()
        handles, labels = handles + extra[0], labels + extra[1]
    ax.legend(handles, labels, fontsize=8)
    return _save(fig, path)
