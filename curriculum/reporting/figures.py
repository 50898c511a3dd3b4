"""Every figure the stages draw (matplotlib, no display needed).

Conventions, so that a figure reads without its caption: the title names the dataset and the
number of members; every axis says what it measures and in which unit; one legend per figure,
outside the panels; fractions of examples on a log axis where the tails (examples no member or
every member gets right) carry the finding; a statistic's axis spans its spread over the
dataset rather than whatever range its curve happens to cover.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from scoring.files import atomic_write  # noqa: E402
from scoring.stream import CheckpointCounts  # noqa: E402
from stats.distributions import class_conditional_null_consistency, independent_null_consistency  # noqa: E402

SPLIT_COLORS = {"train": "tab:blue", "test": "tab:orange"}
ORDER_COLORS = {"curriculum": "tab:green", "random": "tab:blue", "anti": "tab:red", "none": "black"}

#: Readable name and unit of each image statistic (stats.images.STATISTICS).
STATISTIC_LABELS = {
    "segments": ("segment count (Felzenszwalb)", "segments per image"),
    "entropy": ("mean local entropy", "bits"),
    "dct": ("important DCT coefficients", "% of coefficients"),
    "edges": ("edge strength (Sobel magnitude summed)", "grey levels in [0, 1], summed"),
}


def statistic_label(name: str) -> str:
    """``"mean local entropy (bits)"``; an unknown column keeps its name."""
    return "{} ({})".format(*STATISTIC_LABELS[name]) if name in STATISTIC_LABELS else name


def checkpoint_label(value: float, unit: str = "epoch") -> str:
    """``"epoch 2"``, or ``"0.2 of the train set"`` for a run whose checkpoints count something else
    (``curriculum learners``)."""
    return f"epoch {value:.3g}" if unit == "epoch" else f"{value:.3g} {unit}"


def wrap(text: str, width: int) -> str:
    """Break a long title or axis label (a run named after five learners) into lines."""
    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary name + rename) and close it."""
    try:
        atomic_write(
            path, lambda handle: fig.savefig(handle, dpi=110, format=path.suffix.lstrip("."), bbox_inches="tight")
        )
    finally:
        plt.close(fig)
    return path


def pick_checkpoints(count: int, panels: int = 7) -> list[int]:
    """Up to ``panels`` checkpoint indices, dense early (where agreement forms) and always the last,
    like the epochs 0, 1, 2, 5, 10, 20, 40 of Hacohen et al.'s Fig. 1."""
    if count <= panels:
        return list(range(count))
    picks = np.unique(np.round(np.geomspace(1, count, panels)).astype(int) - 1)
    return sorted({0, *picks.tolist(), count - 1})


def fraction_ticks(first: int, n: int, most: int = 7) -> list[int]:
    """Ticks k/N for k in first..N: the multiples of the smallest of 1, 2, 5, 10, 20, 50, ...
    that gives at most ``most`` of them, and N itself (0, 2, 4, 6, 8 of 8; 0, 20, ..., 100)."""
    for step in (b * 10**e for e in range(len(str(n)) + 1) for b in (1, 2, 5)):
        ticks = [k for k in range(first, n + 1) if k % step == 0]
        if not ticks or ticks[-1] != n:  # N replaces a last multiple too close to it
            ticks = ticks[:-1] + [n] if ticks and n - ticks[-1] <= step / 2 else ticks + [n]
        if len(ticks) <= most:
            return ticks
    return [first, n]


def _log_fractions(ax: plt.Axes, floor: float) -> None:
    """A log y axis of fractions from ``floor`` to 1, decades only: the unlabelled minor ticks were
    half of a histogram figure's time."""
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(floor, 1.5)


def consistency_panel(
    ax: plt.Axes,
    histogram: np.ndarray,
    accuracy: np.ndarray,
    class_accuracy: np.ndarray,
    class_sizes: np.ndarray,
    color: str,
) -> None:
    """One histogram of consistency k/N at one checkpoint (``histogram[k]``: examples exactly k of
    the N members get right) beside what N independent members of the same accuracies
    (``accuracy`` [N]), and of the same per-class accuracies (``class_accuracy`` [N, K] on classes
    of ``class_sizes`` examples), would give; log y so that the tails at 0 and 1 stay visible
    however far apart the bars are."""
    n, m = len(accuracy), int(histogram.sum())
    observed = histogram / m
    grid, null = independent_null_consistency(accuracy)
    _, class_null = class_conditional_null_consistency(class_accuracy, class_sizes / class_sizes.sum())
    width = 0.27 / n
    floor = 0.5 / m  # below one example: nothing to see
    ax.bar(grid - width, observed, width=width, color=color, label="observed")
    ax.bar(
        grid,
        np.maximum(null, floor),
        width=width,
        color="lightgray",
        edgecolor="gray",
        linewidth=0.5,
        label="independent members (same accuracies)",
    )
    ax.bar(
        grid + width,
        np.maximum(class_null, floor),
        width=width,
        color="white",
        edgecolor="black",
        linewidth=0.5,
        hatch="///",
        label="independent given the class (same per-class accuracies)",
    )
    _log_fractions(ax, floor)
    ax.set_xlim(-0.6 / n, 1 + 0.6 / n)
    ticks = fraction_ticks(0, n)
    ax.set_xticks([k / n for k in ticks], [f"{k}/{n}" for k in ticks], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def consistency_histograms(
    counts: dict[str, CheckpointCounts], epochs: list[float], path: Path, title: str, unit: str = "epoch"
) -> Path:
    """Observed consistency histograms per checkpoint (rows: splits) beside the independent nulls
    (Hacohen et al. 2020, Fig. 1), from the streaming pass's per-checkpoint counts."""
    picks = pick_checkpoints(len(epochs))
    fig, axes = plt.subplots(
        len(counts), len(picks), figsize=(2.4 * len(picks), 2.5 * len(counts) + 0.6), squeeze=False, sharey=True
    )
    for row, (split, split_counts) in enumerate(counts.items()):
        accuracy, by_class = split_counts.member_accuracy(), split_counts.class_accuracy()
        for col, e in enumerate(picks):
            ax = axes[row, col]
            consistency_panel(
                ax,
                split_counts.histogram[e],
                accuracy[:, e],
                by_class[:, e],
                split_counts.class_sizes,
                SPLIT_COLORS.get(split, "tab:gray"),
            )
            ax.set_title(f"{split}, {checkpoint_label(epochs[e], unit)}", fontsize=9)
            ax.set_xlabel("consistency (members right / N)", fontsize=7)
        axes[row, 0].set_ylabel("fraction of examples (log)", fontsize=8)
    _figure_legend(fig, axes[0, 0], 3, title)
    return save(fig, path)


def _figure_legend(fig: plt.Figure, ax: plt.Axes, ncol: int, title: str) -> None:
    """One legend for the whole figure, between the title and the panels, where readers look first."""
    handles, labels = ax.get_legend_handles_labels()
    height = fig.get_figheight()
    rows = -(-len(labels) // ncol)
    title = wrap(title, 120)
    top = 1 - (0.45 + 0.2 * rows + 0.18 * title.count("\n")) / height
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, top), ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")


def agreement_curve(summary: pd.DataFrame, path: Path, title: str, unit: str = "epoch") -> Path:
    """TP-agreement, its lower bound and mean accuracy +- std over epochs (Pliushch et al., Fig. 2)."""
    splits = list(summary["split"].unique())
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.8), squeeze=False, sharey=True)
    for ax, split in zip(axes[0], splits):
        rows = summary[summary["split"] == split]
        x = rows["epoch"].to_numpy()
        mean, std = rows["acc_mean"].to_numpy(), rows["acc_std"].to_numpy()
        ax.plot(x, mean, color="black", label="mean accuracy of the members")
        ax.fill_between(x, mean - std, mean + std, color="black", alpha=0.15, label="accuracy +- std over members")
        ax.plot(x, rows["tpa"], color="tab:red", label="TP-agreement (all right / any right)")
        ax.plot(
            x,
            rows["tpa_lower"],
            color="tab:red",
            linestyle="--",
            label="TP-agreement implied by accuracy alone (lower bound)",
        )
        ax.set_title(split, fontsize=9)
        ax.set_xlabel("epoch" if unit == "epoch" else unit.replace("of ", "fraction of ", 1))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("fraction of examples")
    _figure_legend(fig, axes[0, 0], 2, title)
    return save(fig, path)


def statistics_figure(
    summary: pd.DataFrame,
    curves: pd.DataFrame,
    correlations: pd.DataFrame,
    path: Path,
    title: str,
    min_agreement: float = 0.2,
) -> Path:
    """The agreement curve beside, per statistic, its mean over the examples all members get right
    (Pliushch et al., Fig. 4), with the Spearman correlation of the statistic with accessibility
    on each panel. Checkpoints with TP-agreement below ``min_agreement`` are left out, as in their
    plots. A statistic's y axis spans its dataset mean +- one standard deviation (and the curve),
    so a drift that is small against the spread between images looks small."""
    names = list(curves["statistic"].unique())
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.7 * (len(names) + 1), 3.6), squeeze=False)
    first = axes[0, 0]
    for split in summary["split"].unique():
        rows = summary[summary["split"] == split]
        first.plot(rows["epoch"], rows["tpa"], color=SPLIT_COLORS.get(split), label=f"{split}")
        first.plot(rows["epoch"], rows["acc_mean"], color=SPLIT_COLORS.get(split), linestyle=":")
    first.set_title("TP-agreement (solid), accuracy (dotted)", fontsize=8)
    first.set_xlabel("epoch")
    first.set_ylabel("fraction of examples")
    first.set_ylim(0, 1.02)
    first.grid(alpha=0.3)
    corr = correlations.set_index("statistic") if len(correlations) else None
    for ax, name in zip(axes[0, 1:], names):
        lows, highs = [], []
        for split in curves["split"].unique():
            rows = curves[(curves["statistic"] == name) & (curves["split"] == split)]
            shown = rows[rows["tpa"] >= min_agreement]
            mean, std = rows["dataset_mean"].iloc[0], rows["dataset_std"].iloc[0]
            ax.plot(shown["epoch"], shown["agreed_mean"], marker=".", color=SPLIT_COLORS.get(split))
            ax.axhline(mean, color=SPLIT_COLORS.get(split), linestyle="--", linewidth=0.8)
            ax.axhspan(mean - std, mean + std, color=SPLIT_COLORS.get(split), alpha=0.06)
            lows += [mean - 1.2 * std, shown["agreed_mean"].min()]
            highs += [mean + 1.2 * std, shown["agreed_mean"].max()]
        ax.set_ylim(np.nanmin(lows), np.nanmax(highs))
        label, unit = STATISTIC_LABELS.get(name, (name, ""))
        ax.set_title(label, fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if corr is not None and name in corr.index:
            r, p = corr.loc[name, "spearman_r"], corr.loc[name, "p_value"]
            ax.text(
                0.03,
                0.04,
                f"Spearman r with accessibility\n(train) = {r:+.2f}, p = {p:.1g}",
                transform=ax.transAxes,
                fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
            )
    handles = [plt.Line2D([], [], color=SPLIT_COLORS[s]) for s in SPLIT_COLORS] + [
        plt.Line2D([], [], color="gray", marker="."),
        plt.Line2D([], [], color="gray", linestyle="--"),
        plt.Rectangle((0, 0), 1, 1, color="gray", alpha=0.15),
    ]
    labels = [
        "train",
        "test",
        "mean over the examples every member gets right",
        "mean over all examples",
        "mean +- std over all examples",
    ]
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.95), ncol=5, fontsize=8, frameon=False)
    fig.suptitle(f"{title}; checkpoints with TP-agreement >= {min_agreement:g}", fontsize=10, y=1.0)
    return save(fig, path)


def learning_curves_figure(
    curves: pd.DataFrame, path: Path, title: str = "", open_fraction: np.ndarray | None = None
) -> Path:
    """Test accuracy over training steps: mean over seeds per order, with a +- std band; on a
    second axis, the fraction of the train set the pacing has opened at each step (``none``
    trains on all of it from the start)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if open_fraction is not None:
        opened = ax.twinx()
        steps = np.arange(1, len(open_fraction) + 1)
        opened.fill_between(steps, open_fraction, step="post", color="tab:gray", alpha=0.12, linewidth=0)
        opened.plot(
            steps,
            open_fraction,
            color="tab:gray",
            linewidth=0.8,
            drawstyle="steps-post",
            label="open fraction (paced orders)",
        )
        opened.set_ylim(0, 1.02)
        opened.set_ylabel("fraction of the train set open to the paced orders", color="tab:gray", fontsize=8)
        opened.tick_params(axis="y", colors="tab:gray")
        ax.set_zorder(opened.get_zorder() + 1)
        ax.patch.set_visible(False)
    for order, rows in curves.groupby("order", sort=False):
        stats = rows.groupby("step")["test_accuracy"].agg(["mean", "std"]).fillna(0.0)
        color = ORDER_COLORS.get(order)
        ax.plot(stats.index, stats["mean"], color=color, label=order)
        ax.fill_between(
            stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=color, alpha=0.15
        )
    ax.set_xlabel("training step (mini-batches)")
    ax.set_ylabel("test accuracy (mean; band +- std over seeds)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if open_fraction is not None:
        extra = opened.get_legend_handles_labels()
        handles, labels = handles + extra[0], labels + extra[1]
    ax.legend(handles, labels, fontsize=8, loc="lower right")
    fig.tight_layout()
    return save(fig, path)


def gallery(
    images: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    path: Path,
    title: str,
    per_side: int = 4,
    score_name: str = "accessibility",
) -> Path:
    """Per class (rows), the ``per_side`` easiest (left) and hardest (right) examples by a
    higher-is-easier score, each captioned with its score.

    The tiles are composed into one image drawn on one axes (80 axes of a 10-class gallery took
    most of a small run's report to lay out and draw)."""
    present = [k for k in range(len(classes)) if (labels == k).any()]
    height, width = images.shape[1:3]
    zoom = max(1, -(-48 // max(height, width)))  # small images upscaled (nearest) so borders stay thin
    tile_h, tile_w = height * zoom, width * zoom
    border = max(2, round(max(tile_h, tile_w) / 24))
    gap_x, gap_y, middle = max(2, tile_w // 6), max(4, tile_h // 3), max(4, tile_w // 3)
    cols, pitch_x, pitch_y = 2 * per_side, tile_w + 2 * border + gap_x, tile_h + 2 * border + gap_y
    canvas = np.full((gap_y + len(present) * pitch_y, cols * pitch_x + middle, 3), 255, np.uint8)
    colors = {True: (44, 160, 44), False: (214, 39, 40)}  # tab:green easiest, tab:red hardest
    captions, row_labels = [], []
    for row, k in enumerate(present):
        idx = np.flatnonzero(labels == k)
        ranked = idx[np.argsort(-scores[idx], kind="stable")]
        picks = list(ranked[:per_side]) + [None] * (per_side - min(per_side, len(ranked)))
        hardest = list(ranked[::-1][:per_side][::-1])
        picks += [None] * (per_side - len(hardest)) + hardest
        top = gap_y + row * pitch_y
        row_labels.append((top + border + tile_h / 2, classes[k]))
        for col, i in enumerate(picks):
            if i is None:
                continue
            left = col * pitch_x + (middle if col >= per_side else 0)
            canvas[top : top + tile_h + 2 * border, left : left + tile_w + 2 * border] = colors[col < per_side]
            tile = np.repeat(np.repeat(images[i], zoom, axis=0), zoom, axis=1)
            canvas[top + border : top + border + tile_h, left + border : left + border + tile_w] = tile
            captions.append((left + border + tile_w / 2, top - 1, f"{scores[i]:.2f}"))
    fig, ax = plt.subplots(figsize=(1.05 * cols, 1.15 * len(present) + 0.5))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text in captions:
        ax.text(x, y, text, fontsize=7, ha="center", va="bottom")
    for y, name in row_labels:
        ax.text(-gap_x, y, name, fontsize=8, ha="right", va="center")
    ax.set_title(
        f"{title}\nleft (green): {per_side} easiest of each class, right (red): {per_side} hardest; caption: {score_name}",
        fontsize=9,
    )
    return save(fig, path)


def data_map(confidence: np.ndarray, variability: np.ndarray, correctness: np.ndarray, path: Path, title: str) -> Path:
    """Swayamdipta et al.'s data map: confidence vs variability of P(true class) over training,
    coloured by the fraction of checkpoints at which the example was right."""
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    order = np.argsort(correctness, kind="stable")
    points = ax.scatter(
        variability[order],
        confidence[order],
        c=correctness[order],
        cmap="RdYlGn",
        vmin=0,
        vmax=1,
        s=6,
        alpha=0.7,
        linewidths=0,
    )
    fig.colorbar(points, ax=ax, label="correctness (fraction of checkpoints right)")
    ax.set_xlabel("variability (std of P(true class) over checkpoints)")
    ax.set_ylabel("confidence (mean P(true class))")
    ax.set_xlim(0, max(0.5, float(np.nanmax(variability)) * 1.05))
    ax.set_ylim(0, 1)
    for text, xy in (("easy to learn", (0.02, 0.95)), ("ambiguous", (0.75, 0.55)), ("hard to learn", (0.02, 0.05))):
        ax.text(*xy, text, transform=ax.transAxes, fontsize=8, color="dimgray", va="center")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def factor_figure(
    table: pd.DataFrame,
    correlations: pd.DataFrame,
    column: str,
    units: dict[str, str],
    path: Path,
    title: str,
    bins: int = 10,
) -> Path:
    """Per generating factor (one panel each), the mean of ``column`` over ten equal-count bins of
    the factor, train and test, with the Spearman r and the sign construction predicts."""
    factors = list(correlations["factor"].unique())
    cols = min(4, len(factors))
    rows_n = -(-len(factors) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.4 * cols, 2.9 * rows_n + 0.6), squeeze=False, sharey=True)
    for ax, factor in zip(axes.flat, factors):
        for split, color in SPLIT_COLORS.items():
            rows = table[table["split"] == split]
            if rows.empty:
                continue
            x, y = rows["factor_" + factor].to_numpy(np.float64), rows[column].to_numpy(np.float64)
            edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
            which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
            centres = [x[which == b].mean() for b in range(len(edges) - 1)]
            means = [y[which == b].mean() for b in range(len(edges) - 1)]
            ax.plot(centres, means, marker=".", color=color)
        text = []
        for r in correlations[(correlations["factor"] == factor) & (correlations["column"] == column)].itertuples():
            verdict = {True: "as built", False: "against construction"}.get(r.as_built, "nuisance")
            text.append(f"{r.split}: r = {r.spearman_r:+.2f} ({verdict})")
        ax.set_title("\n".join(text), fontsize=7)
        ax.set_xlabel(f"{factor} ({units[factor]})" if factor in units else factor, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"mean {column}", fontsize=8)
    for ax in list(axes.flat)[len(factors) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=SPLIT_COLORS[s], marker=".") for s in SPLIT_COLORS]
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(
        handles,
        [f"{s} (mean over {bins} equal-count bins of the factor)" for s in SPLIT_COLORS],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.95),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=10, y=1.0)
    return save(fig, path)


def accessibility_scatter(pairs: list[dict], path: Path, title: str) -> Path:
    """Hacohen et al. 2020, Fig. 6c-e: accessibility of one collection against another's, one panel per
    split. Each entry of ``pairs``: ``split``, ``x``, ``y``, ``xlabel``, ``ylabel`` and the
    correlations (``pearson``, ``spearman``, ``ceiling``) printed on the panel."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.3 * len(pairs), 4.3), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        jitter = np.random.default_rng(0).uniform(-0.004, 0.004, size=(2, len(pair["x"])))
        ax.scatter(
            pair["x"] + jitter[0],
            pair["y"] + jitter[1],
            s=5,
            alpha=0.35,
            color=SPLIT_COLORS.get(pair["split"], "tab:gray"),
            linewidths=0,
        )
        ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel(wrap(f"accessibility, {pair['xlabel']}", 55), fontsize=8)
        ax.set_ylabel(wrap(f"accessibility, {pair['ylabel']}", 55), fontsize=8)
        ax.set_title(f"{pair['split']} ({len(pair['x'])} examples)", fontsize=9)
        ceiling = "" if not np.isfinite(pair["ceiling"]) else f"\nnoise ceiling (split-half) {pair['ceiling']:.3f}"
        ax.text(
            0.03,
            0.97,
            f"Pearson r = {pair['pearson']:.3f}\nSpearman r = {pair['spearman']:.3f}{ceiling}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
        )
        ax.grid(alpha=0.3)
    fig.suptitle(wrap(title, 95), fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def cross_consistency_histograms(panels: list[dict], path: Path, title: str) -> Path:
    """Hacohen et al. 2020, Fig. 6a-b: consistency of the two collections merged, at matched checkpoints.
    Each entry of ``panels``: ``split``, ``caption`` and the arguments of :func:`consistency_panel`
    for the Na + Nb members (``histogram``, ``accuracy``, ``class_accuracy``, ``class_sizes``)."""
    splits = list(dict.fromkeys(p["split"] for p in panels))
    cols = max(sum(p["split"] == s for p in panels) for s in splits)
    fig, axes = plt.subplots(
        len(splits), cols, figsize=(2.9 * cols, 2.6 * len(splits) + 0.7), squeeze=False, sharey=True
    )
    for ax in axes.ravel():
        ax.axis("off")
    for row, split in enumerate(splits):
        for col, panel in enumerate(p for p in panels if p["split"] == split):
            ax = axes[row, col]
            ax.axis("on")
            consistency_panel(
                ax,
                panel["histogram"],
                panel["accuracy"],
                panel["class_accuracy"],
                panel["class_sizes"],
                SPLIT_COLORS.get(split, "tab:gray"),
            )
            ax.set_title(f"{split}: {panel['caption']}", fontsize=8)
            ax.set_xlabel("cross-consistency (members right / N)", fontsize=7)
        axes[row, 0].set_ylabel("fraction of examples (log)", fontsize=8)
    _figure_legend(fig, axes[0, 0], 3, title)
    return save(fig, path)


def easy_set_bars(rows: pd.DataFrame, path: Path, title: str, name_a: str, name_b: str) -> Path:
    """Hacohen et al. 2020, Fig. 7b: per checkpoint, the examples easy (consistency > threshold) for both
    collections, for the first only and for the second only; one panel per split."""
    splits = list(rows["split"].unique())
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.8), squeeze=False)
    for ax, split in zip(axes[0], splits):
        part = rows[rows["split"] == split]
        x = np.arange(len(part))
        ax.bar(x, part["both"], color="tab:red", label="easy for both")
        ax.bar(x, part["only_a"], bottom=part["both"], color="tab:blue", label=f"easy for {name_a} only")
        ax.bar(x, -part["only_b"], color="darkred", label=f"easy for {name_b} only (below 0)")
        ax.axhline(0, color="black", linewidth=0.6)
        same = np.allclose(part["epoch_a"], part["epoch_b"])
        labels = [f"{a:.3g}" if same else f"{a:.3g}/{b:.3g}" for a, b in zip(part["epoch_a"], part["epoch_b"])]
        every = max(1, int(np.ceil(len(x) / 10)))
        ax.set_xticks(x[::every], labels[::every], fontsize=7, rotation=0 if same else 45)
        ax.set_xlabel("epoch" if same else f"epoch ({name_a}/{name_b}, accuracy-matched)", fontsize=8)
        ax.set_ylabel("examples", fontsize=8)
        ax.set_title(f"{split} ({int(part['examples'].iloc[0])} examples)", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    _figure_legend(fig, axes[0, 0], 3, title)
    return save(fig, path)


def consensus_histograms(sets: dict[str, tuple[np.ndarray, np.ndarray]], members: int, path: Path, title: str) -> Path:
    """Hacohen et al. 2020, Fig. 5: per image set, the distribution of consensus (fraction of members giving
    an image its most common label) beside the shuffled null. ``sets``: name -> (observed, null)."""
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.4), squeeze=False, sharey=True)
    grid = np.arange(1, members + 1) / members
    floor = 0.5 / max(len(v[0]) for v in sets.values())
    for ax, (name, (observed, null)) in zip(axes[0], sets.items()):
        count = len(observed)
        for offset, values, style in (
            (-0.18, observed, {"color": "tab:purple", "label": "observed"}),
            (
                0.18,
                null,
                {
                    "color": "lightgray",
                    "edgecolor": "gray",
                    "linewidth": 0.5,
                    "label": "labels shuffled over images (null)",
                },
            ),
        ):
            hist = np.bincount(np.round(values * members).astype(int), minlength=members + 1)[1:] / count
            ax.bar(grid + offset / members, np.maximum(hist, floor), width=0.36 / members, **style)
        _log_fractions(ax, floor)
        ticks = [k for k in fraction_ticks(0, members) if k > 0]  # consensus is at least 1/N
        ax.set_xticks([k / members for k in ticks], [f"{k}/{members}" for k in ticks], fontsize=7)
        ax.set_xlabel("consensus (members giving the most common label / N)", fontsize=7)
        ax.set_title(f"{name} ({count} images)", fontsize=8)
    axes[0, 0].set_ylabel("fraction of images (log)", fontsize=8)
    _figure_legend(fig, axes[0, 0], 2, title)
    return save(fig, path)
