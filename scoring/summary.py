"""Per-checkpoint summary of an ensemble: how much its members agree beyond their accuracy.

Computed from the per-checkpoint counts of the streaming pass (:class:`scoring.stream.CheckpointCounts`),
with the formulas of :mod:`scoring.agreement` (``accuracy_mean_std``, ``tp_agreement``,
``tp_agreement_lower_bound``, ``extreme_fractions``, ``class_conditional_extremes``) written on
counts of examples instead of whole records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.stream import CheckpointCounts
from stats.distributions import bimodality


def checkpoint_summary(counts: dict[str, CheckpointCounts], epochs: list[float]) -> pd.DataFrame:
    """One row per checkpoint and split.

    Columns: mean accuracy and its population std over members; TP-agreement and its lower bound
    (Pliushch et al. 2022); the fraction of examples at consistency 0 and 1, observed, as expected
    had members been independent with the same accuracies (Hacohen et al. 2020, Fig. 1c), and as
    expected had they been independent given the class, with the same per-class accuracies (so
    agreement that only reflects which classes members favour is not counted as agreement); and
    the Pearson bimodality of the consistency histogram (lower = more bimodal).
    """
    rows = []
    for split, split_counts in counts.items():
        n, m = split_counts.members, split_counts.examples
        histogram = split_counts.histogram  # [E, N + 1]
        acc = split_counts.member_accuracy()  # [N, E]
        mean, std = acc.mean(axis=0), acc.std(axis=0, ddof=0)
        tpa = histogram[:, n] / np.maximum(1, m - histogram[:, 0])  # all right / any right
        lower = 1.0 - np.minimum((1.0 - acc).sum(axis=0), 1.0)
        independent_at0, independent_at1 = np.prod(1.0 - acc, axis=0), np.prod(acc, axis=0)
        class_at0, class_at1 = np.zeros(len(epochs)), np.zeros(len(epochs))
        by_class = split_counts.class_accuracy()  # [N, E, K]
        for k, size in enumerate(split_counts.class_sizes):
            class_at0 += size / m * np.prod(1.0 - by_class[:, :, k], axis=0)
            class_at1 += size / m * np.prod(by_class[:, :, k], axis=0)
        for e, epoch in enumerate(epochs):
            rows.append(
                {
                    "split": split,
                    "checkpoint": e,
                    "epoch": epoch,
                    "acc_mean": mean[e],
                    "acc_std": std[e],
                    "tpa": tpa[e],
                    "tpa_lower": lower[e],
                    "at0_observed": histogram[e, 0] / m,
                    "at0_independent": independent_at0[e],
                    "at0_class_null": class_at0[e],
                    "at1_observed": histogram[e, n] / m,
                    "at1_independent": independent_at1[e],
                    "at1_class_null": class_at1[e],
                    "bimodality": bimodality(split_counts.consistency_values(e)),
                }
            )
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame) -> str:
    """The table ``curriculum score`` prints: one line per checkpoint and split."""
    header = (
        f"{'split':5} {'ckpt':>4} {'epoch':>6}  {'accuracy':>13}  {'TPa':>5} {'lower':>5}  "
        f"{'c=0 obs/ind/cls':>17}  {'c=1 obs/ind/cls':>17}  {'bimod':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in summary.itertuples():
        lines.append(
            f"{row.split:5} {row.checkpoint:>4} {row.epoch:>6.2f}  {row.acc_mean:>6.3f} +-{row.acc_std:5.3f}  "
            f"{row.tpa:5.3f} {row.tpa_lower:5.3f}  {row.at0_observed:5.3f}/{row.at0_independent:5.3f}/{row.at0_class_null:5.3f}  "
            f"{row.at1_observed:5.3f}/{row.at1_independent:5.3f}/{row.at1_class_null:5.3f}  {_fmt(row.bimodality):>6}"
        )
    return "\n".join(lines)


def format_reliability(reliability: pd.DataFrame) -> str:
    """The reliability table ``curriculum score`` prints: per score and split, the Spearman
    correlation a second ensemble of the same size from other seeds is expected to reach."""
    splits = list(reliability.columns)
    lines = [f"{'score':20}" + "".join(f"{split:>8}" for split in splits)]
    for name, row in reliability.iterrows():
        lines.append(f"{name:20}" + "".join(f"{_fmt(row[split]):>8}" for split in splits))
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "   nan" if not np.isfinite(value) else f"{value:6.3f}"
