"""Agreement of an ensemble: how far its members classify the same examples correctly.

Array in, array out (numpy and ``stats`` only). Inputs are the prediction record of N members
at E checkpoints on M examples (checkpoint 0 is initialisation):

- ``correct`` bool ``[N, E, M]`` (integer 0/1 is accepted too), ``pred`` int ``[N, E, M]``.

Every function uses all the checkpoints it is given (pass ``correct[:, 1:]`` to leave
initialisation out; checkpoint indices in the output then count from checkpoint 1).

Sources (see ``REFERENCE.md``):

- Consistency, consensus, accessibility, the easy set (c > 0.9), "learned at least as fast",
  cross-consistency with checkpoints matched by mean error (+-1 %), the independent null and
  the fractions at c = 0 and c = 1: Hacohen, Choshen & Weinshall (2020, "Let's agree to
  agree", sections 2-4 and Fig. 1c, 6, 7b).
- True-positive agreement, its lower bound, mean accuracy and its population std, statistic over
  agreed examples: Pliushch et al. (2022, "When deep classifiers agree", eq. 2-3, and their
  code). The toolkit returns fractions in ``[0, 1]``; their code multiplies by 100.

The per-member training-dynamics scores (learned checkpoint, forgetting, data map, EL2N) are in
:mod:`scoring.dynamics`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scoring.errors import UserError

__all__ = [
    "consistency",
    "consensus",
    "accessibility",
    "accessibility_correlation",
    "consistency_histogram",
    "accuracy_mean_std",
    "tp_agreement",
    "tp_agreement_lower_bound",
    "statistic_over_agreed",
    "mean_over_agreed",
    "ExtremeFractions",
    "extreme_fractions",
    "class_conditional_extremes",
    "easy_set",
    "compare_easy_sets",
    "learned_at_least_as_fast",
    "learned_at_least_as_fast_from",
    "match_checkpoints",
    "cross_consistency",
]


# --------------------------------------------------------------------------------------------
# validation


def record_array(a, name: str, kind: str) -> np.ndarray:
    """Check a ``[N, E, M]`` record; ``kind`` is 'bool', 'int' or 'float'."""
    a = np.asarray(a)
    if a.ndim != 3 or 0 in a.shape:
        raise UserError(
            f"`{name}` must be a non-empty array of shape [members, checkpoints, examples]; got shape {a.shape}."
        )
    if kind == "bool":
        if a.dtype == bool:
            return a
        if np.issubdtype(a.dtype, np.integer) and np.isin(a, (0, 1)).all():
            return a.astype(bool)
        raise UserError(f"`{name}` must be boolean (or integer 0/1); got dtype {a.dtype}.")
    if kind == "int":
        if not np.issubdtype(a.dtype, np.integer):
            raise UserError(f"`{name}` must hold integer class labels; got dtype {a.dtype}.")
        return a
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise UserError(f"`{name}` must be a float array; got dtype {a.dtype}.")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise UserError(f"`{name}` holds NaN or infinite values; fill in the record first.")
    return a


def _consistency_matrix(c, name: str) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    if c.ndim != 2 or 0 in c.shape:
        raise UserError(
            f"`{name}` must be a non-empty consistency array of shape [checkpoints, examples]; got shape {c.shape}."
        )
    if not np.all((c >= 0) & (c <= 1)):
        raise UserError(f"`{name}` must hold consistency values in [0, 1].")
    return c


def _member_accuracy(correct: np.ndarray) -> np.ndarray:
    """``[N, E]`` accuracy of each member at each checkpoint."""
    return correct.sum(axis=2) / correct.shape[2]


# --------------------------------------------------------------------------------------------
# agreement of an ensemble (Hacohen et al. 2020)


def consistency(correct) -> np.ndarray:
    """Fraction of members that classify each example correctly, per checkpoint.

    ``c[e, i] = mean_n correct[n, e, i]`` (Hacohen et al. 2020, section 2).

    Returns
    -------
    np.ndarray of float, shape [E, M]
        Values ``k / N`` in ``[0, 1]``; **higher = easier**.
    """
    correct = record_array(correct, "correct", "bool")
    return correct.sum(axis=0) / correct.shape[0]  # integer count / N: exactly k/N as a float


def consensus(pred) -> np.ndarray:
    """Largest fraction of members that predict the same label, right or wrong.

    ``s[e, i] = max_k mean_n (pred[n, e, i] == k)`` (Hacohen et al. 2020, section 2). Needs no true label,
    so it applies to out-of-sample probe sets too.

    Returns
    -------
    np.ndarray of float, shape [E, M]
        In ``[1/N, 1]``; higher = members agree more (not necessarily on the right label).
    """
    pred = record_array(pred, "pred", "int")
    s = np.sort(pred, axis=0)
    same = s[1:] == s[:-1]  # [N-1, E, M]: member n+1 extends the run of equal labels
    run = np.ones(pred.shape[1:], dtype=np.int64)
    best = run.copy()
    for step in same:
        run = np.where(step, run + 1, 1)
        np.maximum(best, run, out=best)
    return best / pred.shape[0]


def accessibility(correct, from_checkpoint: int = 1) -> np.ndarray:
    """Mean consistency over the checkpoints of training (Hacohen et al. 2020, section 4).

    Hacohen et al. 2020 define it as "the average consistency computed over all epochs" of training, so
    checkpoint 0, the initialisation, is left out by default (``from_checkpoint=1``): there a
    member predicts nearly one class for everything, so that row measures class bias, not
    learning order (it cut the cross-seed Spearman of digits' accessibility from 0.79 to 0.64).
    Pass ``from_checkpoint=0`` for a record that holds no initialisation row. Computed as the
    count of right (member, checkpoint) pairs over N x (checkpoints averaged), one rounding, so
    examples with the same count tie exactly (a sum of the per-checkpoint fractions k/N would
    differ in the last bits with the order of the k, and order tied examples by float noise).

    Returns
    -------
    np.ndarray of float, shape [M]
        In ``[0, 1]``; **higher = learned earlier and more reliably = easier**.
    """
    correct = record_array(correct, "correct", "bool")
    n, e, _ = correct.shape
    if not 0 <= from_checkpoint < e:
        raise UserError(
            f"Accessibility averages checkpoints {from_checkpoint} onwards, but the record has "
            f"{e}; record at least one checkpoint after initialisation."
        )
    return correct[:, from_checkpoint:].sum(axis=(0, 1)) / (n * (e - from_checkpoint))


def accessibility_correlation(correct_a, correct_b) -> tuple[float, float]:
    """Pearson r (and p-value) between the accessibility of two collections (Hacohen et al. 2020, Fig. 6).

    The collections may differ in members and checkpoints, not in examples.

    Returns
    -------
    (r, p) : tuple of float
        ``r`` in ``[-1, 1]``; higher = the two collections learn the examples in a more similar
        order. ``p`` in ``[0, 1]``. See ``stats.distributions.pearson``.
    """
    acc_a, acc_b = accessibility(correct_a), accessibility(correct_b)
    if acc_a.shape != acc_b.shape:
        raise UserError(f"The two collections must score the same examples; got {acc_a.size} and {acc_b.size}.")
    from stats.distributions import pearson  # scipy, only when asked for: importing scoring stays light

    return pearson(acc_a, acc_b)


def consistency_histogram(correct) -> np.ndarray:
    """Observed fraction of examples at each consistency value k/N, per checkpoint.

    Draw it beside ``stats.distributions.independent_null_consistency(acc[:, e])``.

    Returns
    -------
    np.ndarray of float, shape [E, N + 1]
        ``h[e, k]`` = fraction of examples that exactly k members classify correctly at
        checkpoint e; each row sums to 1.
    """
    correct = record_array(correct, "correct", "bool")
    n, e, m = correct.shape
    counts = correct.sum(axis=0)  # [E, M]
    hist = np.zeros((e, n + 1))
    for k in range(n + 1):
        hist[:, k] = (counts == k).sum(axis=1) / m
    return hist


class ExtremeFractions(NamedTuple):
    """Fractions of examples at consistency 0 and 1, observed and under the independent null.

    Each field is float ``[E]`` in ``[0, 1]``.
    """

    observed_at_0: np.ndarray
    observed_at_1: np.ndarray
    expected_at_0: np.ndarray
    expected_at_1: np.ndarray


def extreme_fractions(correct) -> ExtremeFractions:
    """Observed vs independent-null fraction of examples that no member / every member gets right.

    Under the null, member n is right on each example independently with probability a_n (its
    accuracy at that checkpoint), so ``expected_at_0[e] = prod_n (1 - a[n, e])`` and
    ``expected_at_1[e] = prod_n a[n, e]`` (Hacohen et al. 2020, Fig. 1c). Observed far above expected at
    both ends = the members agree far more than independent classifiers would.

    Returns
    -------
    ExtremeFractions
        Four float arrays of shape [E], each in ``[0, 1]``.
    """
    correct = record_array(correct, "correct", "bool")
    acc = _member_accuracy(correct)
    return ExtremeFractions(
        observed_at_0=(~correct.any(axis=0)).mean(axis=1),
        observed_at_1=correct.all(axis=0).mean(axis=1),
        expected_at_0=np.prod(1.0 - acc, axis=0),
        expected_at_1=np.prod(acc, axis=0),
    )


def class_conditional_extremes(correct, labels) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of examples no member / every member gets right, had members been independent
    *given the class*: member n is right on an example of class k with probability a[n, k, e],
    its accuracy on class k (its recall) at checkpoint e.

    ``expected_at_0[e] = sum_k w_k prod_n (1 - a[n, k, e])`` and ``expected_at_1[e] = sum_k w_k
    prod_n a[n, k, e]``, with w_k the fraction of examples in class k. Members that all favour
    the same classes (at initialisation one member may predict one class for everything) agree
    beyond the plain null of :func:`extreme_fractions` without agreeing on examples; this null
    counts such agreement as expected, so observed fractions above it are agreement on examples.

    Returns
    -------
    (expected_at_0, expected_at_1) : two np.ndarray of float, shape [E]
        Each in ``[0, 1]``. Compare with the observed fractions of :func:`extreme_fractions`.
    """
    correct = record_array(correct, "correct", "bool")
    labels = np.asarray(labels)
    if labels.shape != correct.shape[2:]:
        raise UserError(f"`labels` must have one class per example ({correct.shape[2]}); got shape {labels.shape}.")
    at0 = np.zeros(correct.shape[1])
    at1 = np.zeros(correct.shape[1])
    for k in np.unique(labels):
        members = correct[:, :, labels == k]
        acc = members.mean(axis=2)  # [N, E]: accuracy on class k
        weight = members.shape[2] / labels.size
        at0 += weight * np.prod(1.0 - acc, axis=0)
        at1 += weight * np.prod(acc, axis=0)
    return at0, at1


def easy_set(consistency_row, threshold: float = 0.9) -> np.ndarray:
    """The "easiest" examples at one checkpoint: consistency strictly above ``threshold``.

    Hacohen et al. 2020, section 4.1 / Fig. 7b uses ``c > 0.9``. With N = 10 members, c = 9/10 is *not*
    easy.

    Returns
    -------
    np.ndarray of bool, same shape as ``consistency_row`` (usually [M])
        True = easy.
    """
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"The easy-set threshold must be in [0, 1]; got {threshold}.")
    return np.asarray(consistency_row, dtype=float) > threshold


def compare_easy_sets(cons_a, cons_b, threshold: float = 0.9):
    """Sizes of the intersection and both differences of two easy sets, per checkpoint.

    Hacohen et al. 2020, Fig. 7b: ``|A ∩ B|``, ``|A \\ B|``, ``|B \\ A|`` with ``A = easy_set(cons_a[e])``.

    Returns
    -------
    (both, only_a, only_b) : three np.ndarray of int, shape [E]
        Counts in ``[0, M]``.
    """
    cons_a = _consistency_matrix(cons_a, "cons_a")
    cons_b = _consistency_matrix(cons_b, "cons_b")
    if cons_a.shape != cons_b.shape:
        raise UserError(f"`cons_a` and `cons_b` must have the same shape; got {cons_a.shape} and {cons_b.shape}.")
    a, b = easy_set(cons_a, threshold), easy_set(cons_b, threshold)
    return (a & b).sum(axis=1), (a & ~b).sum(axis=1), (~a & b).sum(axis=1)


def learned_at_least_as_fast_from(cons, i: int, j: int) -> int:
    """First checkpoint from which example i stays at least as consistent as example j.

    The smallest e' with ``cons[e, i] >= cons[e, j]`` for every ``e >= e'``.

    Returns
    -------
    int
        In ``[0, E]``; ``E`` (one past the last index) when ``cons[-1, i] < cons[-1, j]``.
        Lower = i leads j for longer.
    """
    cons = _consistency_matrix(cons, "cons")
    m = cons.shape[1]
    for name, k in (("i", i), ("j", j)):
        if not -m <= k < m:
            raise UserError(f"Example index {name}={k} is out of range for {m} examples.")
    holds = cons[:, i] >= cons[:, j]
    tail = int(np.cumprod(holds[::-1]).sum())  # length of the run of True at the end
    return cons.shape[0] - tail


def learned_at_least_as_fast(cons, i: int, j: int) -> bool:
    """Whether example i is learned at least as fast as example j (Hacohen et al. 2020, section 2).

    True if from some checkpoint on ``cons[e, i] >= cons[e, j]``. Over a finite record this holds
    exactly when it holds at the last checkpoint; ``learned_at_least_as_fast_from`` says from
    which checkpoint on. (The paper writes ``for all e > e'`` with e' a recorded epoch, which
    taken literally is vacuous at the last epoch; this follows REFERENCE.md's ``e >= e'``.)

    Returns
    -------
    bool
        True = i is learned at least as fast as j.
    """
    return learned_at_least_as_fast_from(cons, i, j) < np.asarray(cons).shape[0]


# --------------------------------------------------------------------------------------------
# true-positive agreement (Pliushch et al. 2022)


def accuracy_mean_std(correct):
    """Mean accuracy over members and its population standard deviation, per checkpoint.

    Returns
    -------
    (mean, std) : two np.ndarray of float, shape [E]
        ``mean`` in ``[0, 1]``; ``std`` in ``[0, 0.5]``, over members with ``ddof=0`` (Pliushch et al. 2022).
    """
    acc = _member_accuracy(record_array(correct, "correct", "bool"))
    return acc.mean(axis=0), acc.std(axis=0, ddof=0)


def tp_agreement(correct) -> np.ndarray:
    """True-positive agreement per checkpoint (Pliushch et al. 2022, eq. 2).

    ``TPa[e] = sum_i prod_n correct[n, e, i] / max(1, sum_i max_n correct[n, e, i])``: examples
    every member gets right over examples some member gets right; 0 when no member gets any
    example right. Pliushch et al.'s code multiplies by 100 (percent); this returns a fraction.

    Returns
    -------
    np.ndarray of float, shape [E]
        In ``[0, 1]``; higher = members agree more on what they have learned.
    """
    correct = record_array(correct, "correct", "bool")
    agreed = correct.all(axis=0).sum(axis=1)
    learned = correct.any(axis=0).sum(axis=1)
    return agreed / np.maximum(1, learned)


def tp_agreement_lower_bound(correct) -> np.ndarray:
    """Smallest true-positive agreement the member accuracies force (Pliushch et al. 2022, eq. 3).

    ``Lba[e] = 1 - min(sum_n (1 - acc[n, e]), 1)``: once the members' errors sum to less than
    the whole set, some examples must be right for all of them. ``tp_agreement - lower bound``
    is the agreement that accuracy alone cannot explain. A fraction (their code: percent).

    Returns
    -------
    np.ndarray of float, shape [E]
        In ``[0, 1]``; 0 while the summed error is at least 1.
    """
    acc = _member_accuracy(record_array(correct, "correct", "bool"))
    return 1.0 - np.minimum((1.0 - acc).sum(axis=0), 1.0)


def statistic_over_agreed(correct, statistic) -> np.ndarray:
    """Mean of a per-example statistic over the examples every member gets right, per checkpoint.

    Pliushch et al.'s code: ``nanmean(metric[agreed])``, and 0 when no example is agreed on.

    Parameters
    ----------
    statistic : array_like of float, shape [M]
        E.g. an image statistic (entropy, segment count); NaN entries are ignored.

    Returns
    -------
    np.ndarray of float, shape [E]
        In the statistic's units; 0 where no example is agreed on, NaN where all agreed
        examples have a NaN statistic.
    """
    correct = record_array(correct, "correct", "bool")
    statistic = np.asarray(statistic, dtype=float)
    if statistic.shape != correct.shape[2:]:
        raise UserError(
            f"`statistic` must have one value per example ({correct.shape[2]}); got shape {statistic.shape}."
        )
    return np.array([mean_over_agreed(statistic, agreed) for agreed in correct.all(axis=0)])


def mean_over_agreed(statistic: np.ndarray, agreed: np.ndarray) -> float:
    """Pliushch et al.'s ``nanmean(metric[agreed])`` at one checkpoint (``agreed`` bool [M]): 0
    when no example is agreed on, NaN when every agreed example's statistic is NaN."""
    values = np.asarray(statistic, dtype=float)[agreed]
    if not values.size:
        return 0.0
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


# --------------------------------------------------------------------------------------------
# two architectures (Hacohen et al. 2020, section 4.2)


def match_checkpoints(err_a, err_b, tol: float = 0.01) -> list[tuple[int, int]]:
    """Pairs of checkpoints of two collections at which their mean errors match.

    For each checkpoint of a, the checkpoint of b with the nearest mean error (the earliest on a
    tie); the pair is kept if the errors differ by at most ``tol`` (Hacohen et al. 2020: +-1 %, with errors
    as fractions). A 1e-12 slack absorbs float rounding, so 0.30 vs 0.29 matches at tol 0.01.
    Several checkpoints of a may match the same checkpoint of b.

    Returns
    -------
    list of (int, int)
        ``(index in a, index in b)``, in increasing order of the index in a; may be empty.
    """
    err_a = np.asarray(err_a, dtype=float)
    err_b = np.asarray(err_b, dtype=float)
    if err_a.ndim != 1 or err_b.ndim != 1 or err_a.size == 0 or err_b.size == 0:
        raise UserError("`err_a` and `err_b` must be non-empty 1-D arrays of mean error.")
    if not (np.isfinite(err_a).all() and np.isfinite(err_b).all()):
        raise UserError("`err_a` and `err_b` must be finite.")
    if tol < 0:
        raise UserError(f"The matching tolerance must be >= 0; got {tol}.")
    diff = np.abs(err_a[:, None] - err_b[None, :])
    nearest = diff.argmin(axis=1)
    return [(ia, int(ib)) for ia, ib in enumerate(nearest) if diff[ia, ib] <= tol + 1e-12]


def cross_consistency(correct_a, correct_b, pairs) -> np.ndarray:
    """Consistency of the two collections merged, at each matched pair of checkpoints.

    For a pair (ea, eb): ``(sum_n correct_a[n, ea, i] + sum_n correct_b[n, eb, i]) / (Na + Nb)``
    (Hacohen et al. 2020, section 4.2). The collections may differ in members and checkpoints.

    Returns
    -------
    np.ndarray of float, shape [P, M]
        In ``[0, 1]``; higher = easier for both architectures together.
    """
    correct_a = record_array(correct_a, "correct_a", "bool")
    correct_b = record_array(correct_b, "correct_b", "bool")
    if correct_a.shape[2] != correct_b.shape[2]:
        raise UserError(
            f"The two collections must score the same examples; got {correct_a.shape[2]} and {correct_b.shape[2]}."
        )
    idx = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    ea, eb = idx[:, 0], idx[:, 1]
    if ((ea < 0) | (ea >= correct_a.shape[1]) | (eb < 0) | (eb >= correct_b.shape[1])).any():
        raise UserError("A checkpoint pair is out of range; build pairs with match_checkpoints.")
    sum_a = correct_a.sum(axis=0)[ea]  # [P, M]
    sum_b = correct_b.sum(axis=0)[eb]
    return (sum_a + sum_b) / (correct_a.shape[0] + correct_b.shape[0])
