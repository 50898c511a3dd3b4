"""How reliable a per-example order is: split-half reliability with the Spearman-Brown correction.

A score computed from N members is a measurement, and a second ensemble trained from other seeds
would not order the examples exactly the same way. Split-half reliability predicts how much it
would agree without training it: split the members at random into two halves of h = floor(N/2)
members each, compute the score from each half, and take Spearman's rho between the two halves'
scores; average rho over several random splits; then Spearman-Brown predicts the correlation
between two independent ensembles of the full size N:

    rho_N = k rho / (1 + (k - 1) rho),   k = N / h   (k = 2 for an even N)

This is the classical test-theory estimate for an average of exchangeable measurements (members
trained from different seeds are exchangeable); on digits it predicts the measured Spearman
between two runs that differ only in ``--seed`` to within 0.015 (experiments/README.md).
Rank correlation is computed here with numpy (average ranks for ties, then Pearson's r of the
ranks, as ``scipy.stats.spearmanr`` does), so the scores package stays free of scipy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from scoring.errors import UserError
from scoring.records import Record

#: Random member splits averaged by default; more only narrows the estimate's own noise.
DEFAULT_SPLITS = 10


def average_ranks(x) -> np.ndarray:
    """Ranks 1..M of ``x`` with ties given their average rank (scipy's ``rankdata``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    new = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2)[np.cumsum(new) - 1]
    return ranks


def spearman_rho(x, y) -> float:
    """Spearman's rank correlation of two equal-length 1-D samples.

    Returns a float in ``[-1, 1]`` (higher = the two order the items more alike), or NaN when
    either sample is constant (an order with no spread has no correlation). NaN values are not
    allowed: every example has every score.
    """
    rx, ry = average_ranks(x), average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def spearman_brown(rho: float, factor: float) -> float:
    """Predicted reliability of a measurement ``factor`` times as long (here: as many members);
    NaN where the formula has no value (halves that order exactly oppositely, rho = -1 at factor 2)."""
    denominator = 1 + (factor - 1) * rho
    return factor * rho / denominator if denominator != 0 else float("nan")


def _subset(record: Record, members: np.ndarray) -> Record:
    return Record(pred=record.pred[members], p_true=record.p_true[members], el2n=record.el2n[members], labels=record.labels)


def split_half_reliability(
    record: Record,
    columns: Callable[[Record], dict[str, np.ndarray]],
    splits: int = DEFAULT_SPLITS,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Split-half reliability of every score that ``columns`` computes from a record.

    Parameters
    ----------
    record : Record
        All members' predictions on one split, ``[N, E, M]`` arrays with N >= 2.
    columns : callable
        Record -> ``{name: per-example scores [M]}`` (e.g. :func:`scoring.scores.score_columns`).
    splits : int
        Random member splits to average (draws from ``numpy.random.default_rng(seed)``).

    Returns
    -------
    dict
        ``{name: {"half": mean rho between halves, "full": Spearman-Brown rho for N members}}``,
        both in ``[-1, 1]``, **higher = more reliable order**. Splits in which a half's score is
        constant (no order to correlate) are left out of the mean; NaN when every split's is.
    """
    n = record.pred.shape[0]
    if n < 2:
        raise UserError(f"Split-half reliability needs at least 2 members, got {n}.")
    if splits < 1:
        raise UserError(f"Split-half reliability needs at least one split, got {splits}.")
    half = n // 2
    rng = np.random.default_rng(seed)
    rhos: dict[str, list[float]] = {}
    for _ in range(splits):
        members = rng.permutation(n)
        a, b = columns(_subset(record, members[:half])), columns(_subset(record, members[half : 2 * half]))
        for name in a:
            rhos.setdefault(name, []).append(spearman_rho(a[name], b[name]))
    out = {}
    for name, values in rhos.items():
        defined = [v for v in values if not np.isnan(v)]  # a split whose half is constant says nothing
        rho = float(np.mean(defined)) if defined else float("nan")
        out[name] = {"half": rho, "full": spearman_brown(rho, n / half)}
    return out
