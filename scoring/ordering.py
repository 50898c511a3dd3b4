"""Orderings: which examples a pacing function opens first.

An ordering is a permutation of example indices, easiest first for a curriculum. The sampler
(``curriculum.sampler``) draws step t's batch from its first ``pacing(t)`` entries.

Kinds (``ORDERS``), as in Hacohen & Weinshall 2019 and Wu et al. 2021:

- ``curriculum``: easiest first. Scores are ranked by a stable sort, so ties keep index order
  (the lower example index first) and the same scores always give the same order.
- ``anti``: hardest first: the curriculum ranking reversed (ties therefore higher index first).
- ``random``: a permutation drawn from ``numpy.random.default_rng(seed)``; it gets the same
  pacing as the curriculum, so it separates the effect of the order from that of the growing
  training set.
- ``none``: the vanilla control, all data from the first step. The ordering is the same as
  ``random`` (it is irrelevant once the whole set is open); callers ask ``uses_pacing(kind)``
  and train without pacing (a sampler with ``pacing=None``) when it is False.

Class balancing (on by default, ``balanced=False`` turns it off) interleaves the ranking so that
every prefix holds the k-th easiest example of every class together: round k takes the k-th
example of each class (by its place in the ranking), and within a round the classes follow the
place of that example in the ranking, so the round's easiest example comes first. When classes
have unequal sizes, a class that has run out simply drops out of the later rounds, so no example
is lost (as in Wu et al.'s code; Hacohen & Weinshall's assumes equal class sizes).

Balancing is applied to each kind's own ranking: ``anti`` balances the reversed ranking and
``random`` balances the shuffled one. With equal class sizes ``anti`` is exactly the reverse of
the balanced ``curriculum`` (what both papers' code does, reversing after balancing); with unequal
sizes it stays class-balanced in every prefix, where the plain reverse would open the largest
classes' leftovers first. Both papers' code shuffles *after* balancing for ``random``; here the
random control stays balanced, so it differs from the curriculum in the order only.

Direction. A score has no built-in direction: accessibility is higher-is-easier, the learned
checkpoint, forgetting and EL2N are lower-is-easier. ``order_examples`` therefore takes
``easier="higher"`` or ``easier="lower"`` with no default, and ``Scores.order`` reads it from the
scores' metadata, so no call can silently order hardest-first. Scores come from a column of the
Scores table, from an external file (``scoring.formats.load_external_scores``), or from self-taught scoring
(P(true class) under a vanilla-trained model: ``easier="higher"``).
"""

from __future__ import annotations

import numpy as np

from scoring.errors import UserError

__all__ = ["DIRECTIONS", "ORDERS", "balance_by_class", "order_examples", "rank_easiest_first", "uses_pacing"]

ORDERS = ("curriculum", "anti", "random", "none")
#: What a score's direction can be: which end means easier.
DIRECTIONS = ("higher", "lower")


def uses_pacing(kind: str) -> bool:
    """Whether an ordering kind trains with a pacing function (every kind but ``none``)."""
    _check_kind(kind)
    return kind != "none"


def check_direction(easier, what: str = "the scores") -> str:
    """``easier`` if it is ``"higher"`` or ``"lower"``; else one sentence naming the fix."""
    if easier not in DIRECTIONS:
        raise UserError(
            f"Say which end of {what} is easier: easier='higher' or easier='lower' "
            f"(got {easier!r}); a wrong guess would order hardest-first."
        )
    return easier


def rank_easiest_first(scores, *, easier: str) -> np.ndarray:
    """Example indices sorted easiest first; ties keep index order (a stable sort)."""
    s = np.asarray(scores, dtype=np.float64)
    return np.argsort(-s if check_direction(easier) == "higher" else s, kind="stable")


def balance_by_class(order, labels) -> np.ndarray:
    """Interleave ``order`` by class: round k holds the k-th example of every class.

    Within a round the examples keep their relative place in ``order``; a class with fewer
    examples than the round number takes no part in that round.
    """
    order = np.asarray(order)
    lab = np.asarray(labels)[order]
    by_class = np.argsort(lab, kind="stable")  # positions grouped by class, in order within it
    grouped = lab[by_class]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    sizes = np.diff(np.r_[starts, len(lab)])
    round_of = np.empty(len(lab), dtype=np.int64)
    round_of[by_class] = np.arange(len(lab)) - np.repeat(starts, sizes)
    return order[np.lexsort((np.arange(len(lab)), round_of))]


def order_examples(
    scores, labels, kind: str = "curriculum", *, easier: str | None = None, balanced: bool = True, seed: int = 0
) -> np.ndarray:
    """A permutation of the example indices for ordering ``kind`` (one of ``ORDERS``).

    ``scores`` is one number per example and ``easier`` (``"higher"`` or ``"lower"``, required
    for ``curriculum`` and ``anti``) says which end is easier; ``scores`` may be None for
    ``random`` and ``none``. ``labels`` (one int per example) is needed for class balancing,
    on by default, and may be None with ``balanced=False``. ``seed`` only affects
    ``random``/``none``. ``Scores.order`` calls this with the direction from the metadata.
    """
    _check_kind(kind)
    if kind in ("curriculum", "anti"):
        check_direction(easier)
    if labels is None and balanced:
        raise UserError("Class-balanced ordering needs the labels; pass labels or balanced=False.")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if labels is not None and len(scores) != len(labels):
            raise UserError(
                f"There are {len(scores)} scores for {len(labels)} labels; give one score per example of the dataset."
            )
        bad = int(np.isnan(scores).sum())
        if bad:
            raise UserError(
                f"{bad} of {len(scores)} scores are NaN; fill them in (or choose "
                "a score defined for every example) before ordering."
            )

    if kind in ("curriculum", "anti"):
        if scores is None:
            raise UserError(f"The {kind} ordering needs a score per example; pass scores.")
        order = rank_easiest_first(scores, easier=easier)
        if kind == "anti":
            order = order[::-1]
    else:
        if scores is None and labels is None:
            raise UserError(f"The {kind} ordering needs scores or labels to know the number of examples.")
        order = np.random.default_rng(seed).permutation(len(scores) if scores is not None else len(labels))
    return balance_by_class(order, labels) if balanced else order


def _check_kind(kind: str) -> None:
    if kind not in ORDERS:
        raise UserError(f"Unknown ordering {kind!r}; choose one of: {', '.join(ORDERS)}.")
