"""Numbers about distributions: bimodality, correlations, and the independent-member null.

Array in, array out (numpy/scipy only). Sources of the formulas:

- ``bimodality``: Pearson (1894), as used by Hacohen, Choshen & Weinshall (2020, "Let's agree
  to agree", section 3): ``kurtosis(X) - skewness(X)^2 - 1`` with the *non-excess* kurtosis and
  population (biased) moments, i.e. scipy's ``kurtosis(x, fisher=False) - skew(x)**2 - 1``.
- ``pearson`` / ``spearman``: thin wrappers of ``scipy.stats.pearsonr`` / ``spearmanr``; Hacohen et al. 2020
  correlates the accessibility scores of two collections with Pearson r and its p-value.
- ``mean_confidence_interval`` / ``paired_t_test``: Student-t interval and paired t-test over
  seeds, for the curriculum stage's comparison of orders trained from the same seeds.
- ``poisson_binomial_pmf`` / ``independent_null_consistency``: the baseline of Hacohen et al. 2020, Fig. 1c
  (REFERENCE.md, "Independent null"): had the N members been independent with accuracies a_n, the
  number of members right on an example would follow a Poisson-binomial distribution.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bimodality",
    "pearson",
    "average_ranks",
    "spearman",
    "spearman_rho",
    "poisson_binomial_pmf",
    "independent_null_consistency",
    "class_conditional_null_consistency",
    "mean_confidence_interval",
    "paired_t_test",
]


def _scipy_stats():
    """scipy.stats, imported on first use: ``from scoring import Scores`` (whose metrics import
    this module) must not pay for scipy."""
    from scipy import stats

    return stats


def bimodality(x, axis: int = -1) -> float | np.ndarray:
    """Pearson's (1894) bimodality measure ``kurtosis - skewness^2 - 1`` along ``axis``.

    Parameters
    ----------
    x : array_like of float
        Samples, e.g. the consistency scores of all examples at one checkpoint (1-D), or one row
        per checkpoint (2-D, ``axis=-1``).
    axis : int
        The axis that holds the samples.

    Returns
    -------
    float or np.ndarray
        In ``[0, inf)``; **lower = more bimodal**. A two-point distribution (any weights) gives 0,
        a uniform distribution 0.8, a Gaussian 2. Moments are population moments (``ddof=0``;
        scipy's ``bias=True``) and the kurtosis is non-excess (``fisher=False``). Pearson's
        inequality ``kurtosis >= skewness^2 + 1`` makes the value non-negative; float rounding
        below 0 is clipped to 0. A float for 1-D input, else an array with ``axis`` removed.
        Constant input (zero variance, including a single sample) gives NaN, as does any NaN in
        the input. Near a one-sided distribution (almost all mass at one end) the value says
        little: report the fractions at the two ends beside it.

    Raises
    ------
    ValueError
        If ``axis`` holds no samples.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        raise ValueError("bimodality needs an array of samples, not a scalar.")
    x = np.moveaxis(x, axis, -1)
    if x.shape[-1] == 0:
        raise ValueError("bimodality needs at least one sample along the given axis.")
    d = x - x.mean(axis=-1, keepdims=True)
    m2 = np.mean(d**2, axis=-1)
    m3 = np.mean(d**3, axis=-1)
    m4 = np.mean(d**4, axis=-1)
    constant = np.all(x == x[..., :1], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = m4 / m2**2 - m3**2 / m2**3 - 1.0
    out = np.where(constant, np.nan, np.maximum(out, 0.0))  # np.maximum keeps NaN
    return float(out) if out.ndim == 0 else out


def _paired(x, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"{name} needs two 1-D arrays; got shapes {x.shape} and {y.shape}.")
    if x.shape != y.shape:
        raise ValueError(f"{name} needs arrays of equal length; got {x.size} and {y.size}.")
    if np.isinf(x).any() or np.isinf(y).any():
        raise ValueError(f"{name} got an infinite value; replace it with NaN to drop the pair.")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size < 3:
        raise ValueError(f"{name} needs at least 3 pairs without NaN; got {x.size}.")
    return x, y


def _correlation(test, x, y, name: str) -> tuple[float, float]:
    """Run a scipy correlation ``test`` on NaN-free pairs; NaN for a constant sample."""
    x, y = _paired(x, y, name)
    if np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan"), float("nan")
    res = test(x, y)
    return float(res.statistic), float(res.pvalue)


def pearson(x, y) -> tuple[float, float]:
    """Pearson correlation of two 1-D samples and its two-sided p-value.

    Pairs where either value is NaN are dropped first.

    Returns
    -------
    (r, p) : tuple of float
        ``r`` in ``[-1, 1]`` (higher = stronger positive linear relation); ``p`` in ``[0, 1]``
        (lower = stronger evidence against r = 0; scipy's exact test under normality).
        ``(nan, nan)`` if either sample is constant after dropping.

    Raises
    ------
    ValueError
        On 1-D arrays of different length, an infinite value, or fewer than 3 pairs left.
    """
    return _correlation(_scipy_stats().pearsonr, x, y, "pearson")


def average_ranks(x) -> np.ndarray:
    """Ranks 1..M of ``x`` with ties given their average rank (scipy's ``rankdata``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x)  # any order of tied values gives the same average ranks
    sorted_x = x[order]
    new = np.empty(len(x), bool)
    new[:1] = True
    np.not_equal(sorted_x[1:], sorted_x[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(x))
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


def spearman(x, y) -> tuple[float, float]:
    """Spearman rank correlation of two 1-D samples and its two-sided p-value (scipy's; where no
    p-value is needed, :func:`spearman_rho` gives rho with numpy alone).

    Pairs where either value is NaN are dropped first; ties get average ranks.

    Returns
    -------
    (rho, p) : tuple of float
        ``rho`` in ``[-1, 1]`` (higher = stronger positive monotone relation); ``p`` in
        ``[0, 1]`` (scipy's t-approximation). ``(nan, nan)`` if either sample is constant.

    Raises
    ------
    ValueError
        On 1-D arrays of different length, an infinite value, or fewer than 3 pairs left.
    """
    return _correlation(_scipy_stats().spearmanr, x, y, "spearman")


def poisson_binomial_pmf(p) -> np.ndarray:
    """Distribution of the number of successes of independent Bernoulli(p_n) trials.

    Exact dynamic-programming convolution, O(N^2).

    Parameters
    ----------
    p : array_like of float, shape [N]
        Success probability of each trial, each in ``[0, 1]``. N = 0 is allowed.

    Returns
    -------
    np.ndarray of float, shape [N + 1]
        ``pmf[k] = P(exactly k successes)``, each in ``[0, 1]``, summing to 1.
        ``pmf[0] = prod(1 - p)``, ``pmf[N] = prod(p)``.

    Raises
    ------
    ValueError
        If ``p`` is not 1-D or holds a value outside ``[0, 1]`` (or NaN).
    """
    p = np.asarray(p, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"poisson_binomial_pmf needs a 1-D array of probabilities; got shape {p.shape}.")
    if not np.all((p >= 0.0) & (p <= 1.0)):  # also rejects NaN
        raise ValueError("poisson_binomial_pmf needs every probability in [0, 1].")
    pmf = np.ones(1)
    for pn in p:
        nxt = np.zeros(pmf.size + 1)
        nxt[:-1] += pmf * (1.0 - pn)  # trial fails: count stays
        nxt[1:] += pmf * pn  # trial succeeds: count + 1
        pmf = nxt
    return pmf


def independent_null_consistency(acc) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of consistency k/N had the N members been independent with accuracies ``acc``.

    The baseline histogram of Hacohen et al. 2020, Fig. 1c: draw ``pmf`` at ``values`` beside the observed
    histogram of consistency at the same checkpoint. ``pmf[0] = prod(1 - acc)`` and
    ``pmf[-1] = prod(acc)`` are the expected fractions of examples at consistency 0 and 1.

    Parameters
    ----------
    acc : array_like of float, shape [N], N >= 1
        Accuracy of each member at one checkpoint, each in ``[0, 1]``.

    Returns
    -------
    values : np.ndarray of float, shape [N + 1]
        ``k / N`` for k = 0..N, in ``[0, 1]`` (higher = more members right = easier).
    pmf : np.ndarray of float, shape [N + 1]
        Probability of each value, in ``[0, 1]``, summing to 1.

    Raises
    ------
    ValueError
        If ``acc`` is empty, not 1-D, or holds a value outside ``[0, 1]``.
    """
    acc = np.asarray(acc, dtype=float)
    if acc.ndim != 1 or acc.size == 0:
        raise ValueError("independent_null_consistency needs a non-empty 1-D array of accuracies.")
    pmf = poisson_binomial_pmf(acc)
    return np.arange(acc.size + 1) / acc.size, pmf


def class_conditional_null_consistency(acc_by_class, weights) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of consistency k/N had the members been independent *given the class*.

    A mixture over classes of :func:`independent_null_consistency`: an example of class k is
    right for member n with probability ``acc_by_class[n, k]`` (its accuracy on that class), and
    class k holds a fraction ``weights[k]`` of the examples. Members that merely favour the same
    classes agree this much without agreeing on examples.

    Parameters
    ----------
    acc_by_class : array_like of float, shape [N, K]
        Each member's accuracy on each class, in ``[0, 1]``.
    weights : array_like of float, shape [K]
        Fraction of examples in each class (non-negative, summing to 1).

    Returns
    -------
    values, pmf : as :func:`independent_null_consistency`.
    """
    acc = np.asarray(acc_by_class, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if acc.ndim != 2 or acc.shape[0] == 0 or weights.shape != acc.shape[1:]:
        raise ValueError("class_conditional_null_consistency needs accuracies [N, K] and K class weights.")
    if not (np.all(weights >= 0) and np.isclose(weights.sum(), 1.0)):
        raise ValueError("class_conditional_null_consistency needs class weights >= 0 that sum to 1.")
    pmf = sum(w * poisson_binomial_pmf(acc[:, k]) for k, w in enumerate(weights))
    return np.arange(acc.shape[0] + 1) / acc.shape[0], pmf


def mean_confidence_interval(x, level: float = 0.95) -> tuple[float, float]:
    """Mean of a small sample and the half-width of its Student-t confidence interval.

    Returns ``(mean, half_width)``; the half-width is NaN for a single value (no spread to
    estimate) and exactly 0 for a constant sample (whose mean is that value, free of rounding).
    NaN values are dropped first. ``level`` is in (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"mean_confidence_interval needs a level in (0, 1), got {level}.")
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError("mean_confidence_interval needs at least one value that is not NaN.")
    if x.size == 1:
        return float(x[0]), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), 0.0
    sem = x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(_scipy_stats().t.ppf(0.5 + level / 2, x.size - 1) * sem)


def paired_t_test(a, b) -> tuple[float, float]:
    """Mean difference ``a - b`` of paired samples (e.g. one value per seed) and the two-sided
    p-value of the paired t-test.

    The p-value is NaN with fewer than 2 pairs. When the differences have no spread (equal up to
    floating-point rounding, 1e-12 relative) the t statistic is 0/0 or infinite, so the p-value
    is 1 if every difference is 0 (nothing distinguishes the two) and 0 otherwise (a constant
    shift).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_t_test needs two 1-D arrays of equal length; got {a.shape} and {b.shape}.")
    diff = a - b
    if diff.size < 2:
        return float(diff.mean()) if diff.size else float("nan"), float("nan")
    if np.ptp(diff) <= 1e-12 * np.abs(diff).max():
        return float(diff.mean()), 0.0 if diff.any() else 1.0
    return float(diff.mean()), float(_scipy_stats().ttest_rel(a, b).pvalue)
