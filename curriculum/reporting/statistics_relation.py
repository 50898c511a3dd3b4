"""How an image statistic relates to the order in which an ensemble learns examples.

Two views, both from the source papers:
- Pliushch et al. (2022, Fig. 4): at each checkpoint, the mean of the statistic over the
  examples that *all* members classify correctly (:func:`scoring.agreement.statistic_over_agreed`;
  0 when none is, as in their code, which is why the figure leaves out checkpoints whose
  agreement is below 20 %, as theirs does).
- Per example: the Spearman correlation between the statistic and accessibility.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scoring import agreement
from scoring.stream import DEFAULT_MEMORY_MB, correct_counts, row_blocks
from stats.distributions import spearman


def statistic_curves(
    run_dir: Path,
    info: dict,
    labels: dict[str, np.ndarray],
    statistics: dict[str, dict[str, np.ndarray]],
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> pd.DataFrame:
    """Long table: split, checkpoint, epoch, statistic, agreed_mean, tpa, dataset_mean, dataset_std.

    Reads the record a block of checkpoints at a time (:func:`scoring.stream.correct_counts`):
    the examples every member gets right at a checkpoint are those counted right N times."""
    epochs = [c["epoch"] for c in info["checkpoints"]]
    members = info["members"]
    rows = []
    for split, split_labels in labels.items():
        tpa = np.empty(len(epochs))
        curves = {name: np.empty(len(epochs)) for name in statistics[split]}
        for block in row_blocks(list(range(len(epochs))), len(split_labels), memory_mb):
            right, counts = correct_counts(run_dir, split, split_labels, members, len(epochs), block)
            learned = len(split_labels) - counts.histogram[:, 0]  # examples some member gets right
            tpa[block] = counts.histogram[:, members] / np.maximum(1, learned)
            for i, e in enumerate(block):
                for name, values in statistics[split].items():
                    curves[name][e] = agreement.mean_over_agreed(values, right[i] == members)
        for name, values in statistics[split].items():
            for e, epoch in enumerate(epochs):
                rows.append(
                    {
                        "split": split,
                        "checkpoint": e,
                        "epoch": epoch,
                        "statistic": name,
                        "agreed_mean": curves[name][e],
                        "tpa": tpa[e],
                        "dataset_mean": float(np.nanmean(values)),
                        "dataset_std": float(np.nanstd(values)),
                    }
                )
    return pd.DataFrame(rows)


def statistic_correlations(table: pd.DataFrame, names: list[str], split: str = "train") -> pd.DataFrame:
    """Per statistic: mean and std over ``split``, Spearman r with accessibility and its p-value."""
    rows = table[table["split"] == split]
    out = []
    for name in names:
        values = rows[name].to_numpy(dtype=np.float64)
        r, p = spearman(values, rows["accessibility"].to_numpy(dtype=np.float64))
        out.append(
            {
                "statistic": name,
                "mean": float(np.nanmean(values)),
                "std": float(np.nanstd(values)),
                "spearman_r": r,
                "p_value": p,
            }
        )
    return pd.DataFrame(out)
