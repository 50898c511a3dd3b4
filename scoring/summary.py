"""Per-checkpoint summary of an ensemble: how much its members agree beyond their accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import agreement
from scoring.records import Record
from stats.distributions import bimodality


def checkpoint_summary(records: dict[str, Record], epochs: list[float]) -> pd.DataFrame:
    """One row per checkpoint and split.

    Columns: mean accuracy and its population std over members; TP-agreement and its lower bound
    (Pliushch et al.); the fraction of examples at consistency 0 and 1, observed, as expected had
    members been independent with the same accuracies (Hacohen et al., Fig. 1c), and as expected
    had they been independent given the class, with the same per-class accuracies (so agreement
    that only reflects which classes members favour is not counted as agreement); and the
    Pearson bimodality of the consistency histogram (lower = more bimodal).
    """
    rows = []
    for split, record in records.items():
        correct = record.correct
        consistency = agreement.consistency(correct)
        mean, std = agreement.accuracy_mean_std(correct)
        tpa = agreement.tp_agreement(correct)
        lower = agreement.tp_agreement_lower_bound(correct)
        extremes = agreement.extreme_fractions(correct)
        class_at0, class_at1 = agreement.class_conditional_extremes(correct, record.labels)
        for e, epoch in enumerate(epochs):
            rows.append({
                "split": split,
                "checkpoint": e,
                "epoch": epoch,
                "acc_mean": mean[e],
                "acc_std": std[e],
                "tpa": tpa[e],
                "tpa_lower": lower[e],
                "at0_observed": extremes.observed_at_0[e],
                "at0_independent": extremes.expected_at_0[e],
                "at0_class_null": class_at0[e],
                "at1_observed": extremes.observed_at_1[e],
                "at1_independent": extremes.expected_at_1[e],
                "at1_class_null": class_at1[e],
                "bimodality": bimodality(consistency[e]),
            })
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame) -> str:
    """The table ``curriculum score`` prints: one line per checkpoint and split."""
    header = (f"{'split':5} {'ckpt':>4} {'epoch':>6}  {'accuracy':>13}  {'TPa':>5} {'lower':>5}  "
              f"{'c=0 obs/ind/cls':>17}  {'c=1 obs/ind/cls':>17}  {'bimod':>6}")
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
