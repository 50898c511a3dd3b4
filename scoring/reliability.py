"""How reliable a per-example order is: split-half reliability with the Spearman-Brown correction.

A score computed from N members is a measurement, and a second ensemble trained from other seeds
would not order the examples exactly the same way. Split-half reliability predicts how much it
would agree without training it: split the members at random into two halves of h = floor(N/2)
members each, compute the score from each half, and take Spearman's rho between the two halves'
scores; average rho over several random halvings; then Spearman-Brown predicts the correlation
between two independent ensembles of the full size N:

    rho_N = k rho / (1 + (k - 1) rho),   k = N / h   (k = 2 for an even N)

This is the classical test-theory estimate for an average of exchangeable measurements (members
trained from different seeds are exchangeable); on digits it predicts the measured Spearman
between two runs that differ only in ``--seed`` to within 0.015 (experiments/README.md).
Rank correlation is :func:`stats.distributions.spearman_rho` (numpy only: average ranks for ties,
then Pearson's r of the ranks, as ``scipy.stats.spearmanr`` does).
"""

from __future__ import annotations

import numpy as np

from scoring.errors import UserError
from stats.distributions import spearman_rho

#: Random halvings of the members averaged by default; more only narrows the estimate's own noise.
DEFAULT_HALVINGS = 10

#: Half scores are rounded to this many decimals before they are ranked: two examples whose
#: scores differ only by float rounding (sums taken in another order) tie, as their statistics do.
TIE_DECIMALS = 12


def spearman_brown(rho: float, factor: float) -> float:
    """Predicted reliability of a measurement ``factor`` times as long (here: as many members);
    NaN where the formula has no value (halves that order exactly oppositely, rho = -1 at factor 2)."""
    denominator = 1 + (factor - 1) * rho
    return factor * rho / denominator if denominator != 0 else float("nan")


def member_halvings(members: int, count: int = DEFAULT_HALVINGS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` random halvings of ``members`` into two halves of floor(N/2) members each (an odd
    member out), drawn from ``numpy.random.default_rng(seed)``: each a pair of index arrays."""
    if members < 2:
        raise UserError(f"Split-half reliability needs at least 2 members, got {members}.")
    if count < 1:
        raise UserError(f"Split-half reliability needs at least one halving, got {count}.")
    half = members // 2
    rng = np.random.default_rng(seed)
    return [(order[:half], order[half : 2 * half]) for order in (rng.permutation(members) for _ in range(count))]


def split_half_reliability(halves: dict[str, np.ndarray], members: int) -> dict[str, dict[str, float]]:
    """Split-half reliability of every score from its values on the two halves of each halving.

    Parameters
    ----------
    halves : dict
        ``{name: array [halvings, 2, M]}``: each score computed from the members of each half of
        each halving of :func:`member_halvings` (:func:`scoring.stream.score_split` computes them
        from per-member statistics, without a second pass over the record). Values are ranked
        after rounding to :data:`TIE_DECIMALS` decimals.
    members : int
        N, the size of the whole ensemble the reliability is predicted for.

    Returns
    -------
    dict
        ``{name: {"half": mean rho between halves, "full": Spearman-Brown rho for N members}}``,
        both in ``[-1, 1]``, **higher = more reliable order**. Splits in which a half's score is
        constant (no order to correlate) are left out of the mean; NaN when every halving's is.
    """
    out = {}
    for name, values in halves.items():
        rounded = np.round(values, TIE_DECIMALS)
        rhos = [spearman_rho(a, b) for a, b in rounded]
        defined = [v for v in rhos if not np.isnan(v)]  # a halving whose half is constant says nothing
        rho = float(np.mean(defined)) if defined else float("nan")
        out[name] = {"half": rho, "full": spearman_brown(rho, members / (members // 2))}
    return out
