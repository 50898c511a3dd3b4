"""How an image statistic relates to the order in which an ensemble learns examples.

Two views, both from the seed papers:
- Pliushch et al. (seed 003, Fig. 4): at each checkpoint, the mean of the statistic over the
  examples that *all* members classify correctly (:func:`scoring.agreement.statistic_over_agreed`;
  0 when none is, as in their code, which is why the figure leaves out checkpoints whose
  agreement is below 20 %, as theirs does).
- Per example: the Spearman correlation between the statistic and accessibility.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import agreement
from scoring.records import Record
from stats.distributions import spearman


def statistic_curves(records: dict[str, Record], statistics: dict[str, dict[str, np.ndarray]], epochs: list[float]) -> pd.DataFrame:
    """Long table: split, checkpoint, epoch, statistic, agreed_mean, tpa, dataset_mean, dataset_std."""
    rows = []
    for split, record in records.items():
        correct = record.correct
        tpa = agreement.tp_agreement(correct)
        for name, values in statistics[split].items():
            curve = agreement.statistic_over_agreed(correct, values)
            for e, epoch in enumerate(epochs):
                rows.append({"split": split, "checkpoint": e, "epoch": epoch, "statistic": name,
                             "agreed_mean": curve[e], "tpa": tpa[e], "dataset_mean": float(np.nanmean(values)),
                             "dataset_std": float(np.nanstd(values))})
    return pd.DataFrame(rows)


def statistic_correlations(table: pd.DataFrame, names: list[str], split: str = "train") -> pd.DataFrame:
    """Per statistic: mean and std over ``split``, Spearman r with accessibility and its p-value."""
    rows = table[table["split"] == split]
    out = []
    for name in names:
        values = rows[name].to_numpy(dtype=np.float64)
        r, p = spearman(values, rows["accessibility"].to_numpy(dtype=np.float64))
        out.append({"statistic": name, "mean": float(np.nanmean(values)), "std": float(np.nanstd(values)),
                    "spearman_r": r, "p_value": p})
    return pd.DataFrame(out)
