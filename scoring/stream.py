"""Scores of a record in one streaming pass, and the other readers of a record.

:func:`score_split` reads each member's record of one split once, a block of rows at a time and,
when the record is larger than the memory setting, a range of examples at a time (examples are
independent, so any range is scored on its own). From each block it keeps, per member and
example, the sufficient statistics of every score:

- the label predicted at the last checkpoint (consistency, consensus),
- how many checkpoints after initialisation are right, the trailing run of right ones and the
  right -> wrong transitions (accessibility, correctness, learned checkpoint, forgetting),
- the sum and the sum of squares of P(true class) after initialisation, as exact integers
  (a float16 probability is a whole multiple of 2^-24), hence its mean and standard deviation
  (the data map), and EL2N at its checkpoint;

and, per checkpoint, how many members get each example right, which gives the per-checkpoint
summary (:class:`CheckpointCounts`). The scores of the whole ensemble and of every half of the
members (split-half reliability, :mod:`scoring.reliability`) follow from the per-member
statistics without reading the record again. They equal the formulas of
:mod:`scoring.agreement` and :mod:`scoring.dynamics` applied to the whole record up to float
rounding (below 1e-12); accessibility is a ratio of exact integer counts, so examples with the
same counts tie exactly.

Memory: the pass's arrays stay within ``memory_mb`` (:data:`DEFAULT_MEMORY_MB`); what they need
grows with examples (the scores themselves) and with checkpoints x the examples of one range,
never with members x checkpoints x examples. Reading only the rows and examples it needs, no
function here holds a whole ``[members, checkpoints, examples]`` array.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring import agreement
from scoring.errors import UserError
from scoring.records import check_complete, open_field
from scoring.reliability import DEFAULT_HALVINGS, member_halvings, split_half_reliability

#: Default bound, in MiB, on the arrays of one streaming pass (the Python process adds ~100 MB).
DEFAULT_MEMORY_MB = 256

#: The scores of :data:`scoring.scores.SCORE_DIRECTIONS`, in its order.
SCORE_NAMES = (
    "consistency",
    "consensus",
    "accessibility",
    "learned_checkpoint",
    "forgetting",
    "confidence",
    "variability",
    "correctness",
    "el2n",
)

_UNIT = 2.0**24  # a float16 in [0, 1] is a whole multiple of 2^-24
_BLOCK_BYTES_PER_ENTRY = 4  # bytes per entry of a block of rows read (pred and p_true)
_TILE = 2**17  # entries folded at a time: their float64 buffer (1 MiB) stays in cache
_MAX_ROWS = 64  # rows read at a time at most (the reads are contiguous; more buys nothing)
_CHUNK_BYTES_PER_MEMBER = 40  # per member and example: the sufficient statistics below
_OUTPUT_BYTES = 8 * len(SCORE_NAMES) * (1 + 2 * DEFAULT_HALVINGS) + 16  # per example: scores, half scores, labels


@dataclass
class CheckpointCounts:
    """Per checkpoint, what the summary and the consistency histograms need from one split's
    record; every entry counts examples.

    ``histogram[e, k]``: examples exactly k of the N members get right at checkpoint e.
    ``class_correct[n, e, j]``: examples of class ``classes[j]`` member n gets right at e.
    ``class_sizes[j]``: examples of class ``classes[j]``.
    """

    histogram: np.ndarray
    class_correct: np.ndarray
    classes: np.ndarray
    class_sizes: np.ndarray

    @property
    def members(self) -> int:
        return self.class_correct.shape[0]

    @property
    def examples(self) -> int:
        return int(self.class_sizes.sum())

    def member_accuracy(self) -> np.ndarray:
        """``[N, E]`` accuracy of each member at each checkpoint."""
        return self.class_correct.sum(axis=2) / self.examples

    def class_accuracy(self) -> np.ndarray:
        """``[N, E, K]`` accuracy of each member on each class (its recall) at each checkpoint."""
        return self.class_correct / self.class_sizes

    def consistency_values(self, checkpoint: int) -> np.ndarray:
        """The consistency k/N of every example at ``checkpoint``, in increasing order."""
        n = self.members
        return np.repeat(np.arange(n + 1) / n, self.histogram[checkpoint])


@dataclass
class SplitScores:
    """What one streaming pass over a split's record gives: the score columns (``[M]`` each, in
    :data:`SCORE_NAMES` order), their split-half reliability and the per-checkpoint counts."""

    columns: dict[str, np.ndarray]
    reliability: dict[str, dict[str, float]]
    counts: CheckpointCounts


class _MemberStatistics:
    """Per member and example of one range, the sufficient statistics of every score."""

    def __init__(self, members: int, examples: int):
        self.last = np.zeros((members, examples), np.int16)  # label predicted at the last checkpoint
        self.right = np.zeros((members, examples), np.int32)  # checkpoints after initialisation right
        self.tail = np.zeros((members, examples), np.int32)  # trailing run of right checkpoints
        self.forgetting = np.zeros((members, examples), np.int32)
        self.confidence = np.zeros((members, examples))  # mean P(true class) after initialisation
        self.variability = np.zeros((members, examples))  # its standard deviation (ddof=0)
        self.el2n = np.zeros((members, examples))  # EL2N at its checkpoint

    def scores(self, members: np.ndarray, labels: np.ndarray, trained: int) -> dict[str, np.ndarray]:
        """The scores of the ensemble of ``members`` (indices, in the order their means are
        summed, as the in-memory formulas sum them)."""
        last = self.last[members]
        right = self.right[members]
        return {
            "consistency": agreement.consistency((last == labels)[:, None, :])[0],
            "consensus": agreement.consensus(last[:, None, :])[0],
            "accessibility": right.sum(axis=0) / (len(members) * trained),
            "learned_checkpoint": (trained - self.tail[members]).mean(axis=0) + 1,
            "forgetting": self.forgetting[members].mean(axis=0),
            "confidence": self.confidence[members].mean(axis=0),
            "variability": self.variability[members].mean(axis=0),
            "correctness": (right / trained).mean(axis=0),
            "el2n": self.el2n[members].mean(axis=0),
        }


def plan_memory(members: int, checkpoints: int, examples: int, memory_mb: float) -> tuple[int, int]:
    """(examples per range, rows per block) that keep a pass's arrays within ``memory_mb``:
    whole rows when the per-checkpoint counts of every example fit in half of it, else the
    largest range of examples that does; the other half holds the blocks of rows read."""
    budget = memory_mb * 2**20 - examples * _OUTPUT_BYTES - 24 * _TILE  # the tile buffers
    per_example = 2 * checkpoints + _CHUNK_BYTES_PER_MEMBER * members
    chunk = min(examples, 2**24, int(budget / 2 // per_example)) if budget > 0 else 0
    if chunk < 1:
        need = (examples * _OUTPUT_BYTES + 2 * per_example + 2 * _BLOCK_BYTES_PER_ENTRY) / 2**20
        raise UserError(
            f"Scoring {examples} examples of {members} members x {checkpoints} checkpoints needs at least "
            f"{need:.0f} MiB; raise the memory setting (--score-memory, now {memory_mb:g} MiB)."
        )
    rows = int(max(1, min(checkpoints, _MAX_ROWS, budget / 2 // (chunk * _BLOCK_BYTES_PER_ENTRY))))
    return chunk, rows


def score_split(
    run_dir: str | Path,
    split: str,
    labels: np.ndarray,
    members: int,
    checkpoints: int,
    el2n_checkpoint: int,
    memory_mb: float = DEFAULT_MEMORY_MB,
    halvings: int = DEFAULT_HALVINGS,
    seed: int = 0,
) -> SplitScores:
    """Every score of one split's record, its split-half reliability and the per-checkpoint counts,
    reading each member's ``pred`` and ``p_true`` rows once and one row of its ``el2n``.

    ``labels``: the split's true class of every example. Every average over training leaves
    checkpoint 0 (initialisation) out; consistency and consensus are read at the last checkpoint;
    EL2N at ``el2n_checkpoint``. See :data:`scoring.scores.SCORE_DIRECTIONS`.
    """
    labels = np.asarray(labels, dtype=np.int64)
    m = len(labels)
    if checkpoints < 2:
        raise UserError(
            f"Scores average the checkpoints after initialisation, but the record has {checkpoints}; "
            "record at least one checkpoint after initialisation."
        )
    if members >= 2**16 or checkpoints > 2**14:
        raise UserError(
            f"A record of {members} members x {checkpoints} checkpoints is beyond what the scores count in "
            "16 bits (65535 members, 16384 checkpoints); record fewer."
        )
    check_complete(run_dir, members, checkpoints)
    files = [
        {field: open_field(run_dir, split, field, n, checkpoints, m) for field in ("pred", "p_true", "el2n")}
        for n in range(members)
    ]
    chunk, rows = plan_memory(members, checkpoints, m, memory_mb)
    classes, class_of = np.unique(labels, return_inverse=True)
    counts = CheckpointCounts(
        np.zeros((checkpoints, members + 1), np.int64),
        np.zeros((members, checkpoints, len(classes)), np.int64),
        classes,
        np.bincount(class_of, minlength=len(classes)),
    )
    halves = member_halvings(members, halvings, seed)
    columns = {name: np.empty(m) for name in SCORE_NAMES}
    half_columns = {name: np.empty((len(halves), 2, m)) for name in SCORE_NAMES}
    everyone = np.arange(members)
    for start in range(0, m, chunk):
        part = slice(start, min(m, start + chunk))
        stats = _score_range(files, labels[part], class_of[part], part, el2n_checkpoint, rows, counts)
        for name, values in stats.scores(everyone, labels[part], checkpoints - 1).items():
            columns[name][part] = values
        for h, pair in enumerate(halves):
            for side, group in enumerate(pair):
                for name, values in stats.scores(group, labels[part], checkpoints - 1).items():
                    half_columns[name][h, side, part] = values
    return SplitScores(columns, split_half_reliability(half_columns, members), counts)


def _score_range(
    files: list[dict],
    labels: np.ndarray,
    class_of: np.ndarray,
    part: slice,
    el2n_checkpoint: int,
    rows: int,
    counts: CheckpointCounts,
) -> _MemberStatistics:
    """Read every member's rows of the examples ``part`` and return their statistics; the
    per-checkpoint counts are added to ``counts``. Rows are read ``rows`` at a time, then folded
    in tiles of :data:`_TILE` entries, small enough to stay in the CPU's cache (on a 2-core VM,
    a 16 MB block made each operation several times slower than a 1 MB tile)."""
    members, checkpoints = len(files), files[0]["pred"].checkpoints
    size = len(labels)
    labels16 = labels.astype(np.int16)
    one_hot = np.zeros((size, counts.class_correct.shape[2]), np.float32)  # class counts as one matrix product
    one_hot[np.arange(size), class_of] = 1.0
    right_count = np.zeros((checkpoints, size), np.uint16)  # members right per checkpoint and example
    stats = _MemberStatistics(members, size)
    pred = np.empty((rows, size), np.int16)
    p_true = np.empty((rows, size), np.float16)
    width = max(256, _TILE // rows)
    tile = _Tile(rows, width)
    for n, member in enumerate(files):
        moments = np.zeros((2, size), np.int64)  # sums of P(true class) and of its square, units 2^-24 and 2^-48
        events = np.zeros(size, np.int32)
        previous = None  # correctness at the previous checkpoint after initialisation
        for first in range(0, checkpoints, rows):
            stop = min(checkpoints, first + rows)
            block = member["pred"].read(first, stop, part, out=pred)
            skip = 1 if first == 0 else 0  # initialisation is not training
            probs = member["p_true"].read(first + skip, stop, part, out=p_true) if stop - first > skip else None
            last = np.empty(size, bool)
            for start in range(0, size, width):
                cols = slice(start, min(size, start + width))
                correct = block[:, cols] == labels16[cols]
                right_count[first:stop, cols] += correct
                counts.class_correct[n, first:stop] += tile.class_counts(correct, one_hot[cols])
                if probs is not None:
                    after = correct[skip:]
                    _dynamics(
                        stats,
                        n,
                        cols,
                        after,
                        None if previous is None else previous[cols],
                        events[cols],
                        tile,
                    )
                    last[cols] = after[-1]
                    tile.add_moments(probs[:, cols], moments[:, cols], member["p_true"].path)
            if probs is not None:
                previous = last
            if stop == checkpoints:
                stats.last[n] = block[-1]
        trained = checkpoints - 1
        stats.forgetting[n] = np.where(stats.right[n] > 0, events, trained)
        stats.confidence[n], stats.variability[n] = _mean_std(moments[0], moments[1], trained)
        el2n = member["el2n"].read(el2n_checkpoint, el2n_checkpoint + 1, part)[0].astype(np.float64)
        if not np.isfinite(el2n).all():
            raise UserError(
                f"{member['el2n'].path} holds NaN or infinite values at checkpoint {el2n_checkpoint}; "
                "record the member again."
            )
        stats.el2n[n] = el2n
    for e in range(checkpoints):
        counts.histogram[e] += np.bincount(right_count[e], minlength=members + 1)
    return stats


class _Tile:
    """Work buffers for one tile of a block (rows x width entries), reused across tiles."""

    def __init__(self, rows: int, width: int):
        self.as_float = np.empty((rows, width), np.float32)
        self.units = np.empty((rows, width), np.float64)
        self.whole = np.empty((rows, width), np.int64)
        self.positions = np.arange(1, rows + 1, dtype=np.int16)[:, None]

    def class_counts(self, correct: np.ndarray, one_hot: np.ndarray) -> np.ndarray:
        """``[rows, K]`` right examples per class: float32 sums of 0/1 are exact below 2^24."""
        rows, width = correct.shape
        as_float = self.as_float[:rows, :width]
        np.copyto(as_float, correct)
        return np.rint(as_float @ one_hot).astype(np.int64)

    def add_moments(self, probs: np.ndarray, moments: np.ndarray, path: Path) -> None:
        """Add float16 probabilities ``[rows, width]`` to exact integer sums and sums of squares
        (units of 2^-24 and 2^-48: at most 2^48 an entry, so int64 holds 2^14 checkpoints).
        float16 -> float64 is exact, and numpy's fastest float16 cast."""
        rows, width = probs.shape
        units, whole = self.units[:rows, :width], self.whole[:rows, :width]
        np.copyto(units, probs)
        np.multiply(units, _UNIT, out=units)
        if not (units.min() >= 0 and units.max() <= _UNIT):  # also catches NaN
            raise UserError(f"{path} holds P(true class) values outside [0, 1] or NaN; record the member again.")
        np.copyto(whole, units, casting="unsafe")
        moments[0] += whole.sum(axis=0)
        np.multiply(whole, whole, out=whole)
        moments[1] += whole.sum(axis=0)


def _dynamics(
    stats: _MemberStatistics,
    n: int,
    cols: slice,
    correct: np.ndarray,
    previous: np.ndarray | None,
    events: np.ndarray,
    tile: _Tile,
) -> None:
    """Fold a block of checkpoints after initialisation (``correct`` [rows, examples ``cols``], in
    order) into member ``n``'s count of right checkpoints, trailing run and forgetting events."""
    rows = len(correct)
    stats.right[n, cols] += correct.sum(axis=0, dtype=np.int32)
    last_wrong = ((~correct) * tile.positions[:rows]).max(axis=0)  # 1-based row of the last wrong one, 0: none
    stats.tail[n, cols] = np.where(last_wrong > 0, rows - last_wrong, stats.tail[n, cols] + rows)
    events += (correct[:-1] & ~correct[1:]).sum(axis=0, dtype=np.int32)
    if previous is not None:
        events += previous & ~correct[0]


def _mean_std(sums: np.ndarray, squares: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation from exact sums (units 2^-24) of ``count`` values.

    The mean is rounded once, as numpy's. The sum of squared deviations is taken about the
    integer q = floor(mean) in exact integers, so the one subtraction left in float (r^2 / count,
    r = sums - q * count < count) cannot cancel the digits of a small spread.
    """
    mean = sums.astype(np.float64) / _UNIT / count
    q = sums // count
    r = sums - q * count
    about_q = squares - 2 * q * sums + count * q * q  # sum of (x - q)^2, exact
    variance = (about_q - r * r / count) / count
    return mean, np.sqrt(np.maximum(variance, 0.0)) / _UNIT


# ---------------------------------------------------------------------------------------------
# the other readers: a few checkpoints of every member


def correct_counts(
    run_dir: str | Path,
    split: str,
    labels: np.ndarray,
    members: int,
    checkpoints: int,
    rows: list[int] | np.ndarray,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, CheckpointCounts]:
    """At each checkpoint in ``rows``: how many members get each example right, ``[len(rows), M]``,
    and the :class:`CheckpointCounts` of those checkpoints. Reads those rows of every member's
    ``pred`` only; memory is ``len(rows)`` x M, so callers pass rows in blocks (:func:`row_blocks`).

    ``groups``: the class each example is counted under in the per-class counts (default: its
    label; ``curriculum compare`` counts a label-noise variant's members by the other run's labels).
    """
    labels16 = np.asarray(labels).astype(np.int16)
    classes, class_of = np.unique(labels if groups is None else groups, return_inverse=True)
    rows = [int(r) for r in rows]
    check_complete(run_dir, members, checkpoints)
    right = np.zeros((len(rows), len(labels16)), np.int32)
    counts = CheckpointCounts(
        np.zeros((len(rows), members + 1), np.int64),
        np.zeros((members, len(rows), len(classes)), np.int64),
        classes,
        np.bincount(class_of, minlength=len(classes)),
    )
    for n in range(members):
        pred = open_field(run_dir, split, "pred", n, checkpoints, len(labels16))
        for i, row in enumerate(rows):
            correct = pred.read(row, row + 1)[0] == labels16
            right[i] += correct
            counts.class_correct[n, i] = np.bincount(class_of[correct], minlength=len(classes))
    for i in range(len(rows)):
        counts.histogram[i] = np.bincount(right[i], minlength=members + 1)
    return right, counts


def row_blocks(rows: list[int], examples: int, memory_mb: float = DEFAULT_MEMORY_MB) -> list[list[int]]:
    """``rows`` in blocks whose :func:`correct_counts` (int32, plus a comparison) fit ``memory_mb``."""
    size = max(1, int(memory_mb * 2**20 // (8 * max(1, examples))))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def last_predictions(run_dir: str | Path, split: str, members: int, checkpoints: int, examples: int) -> np.ndarray:
    """``[N, M]`` label every member predicts for every example at the last checkpoint."""
    check_complete(run_dir, members, checkpoints)
    return np.stack(
        [
            open_field(run_dir, split, "pred", n, checkpoints, examples).read(checkpoints - 1, checkpoints)[0]
            for n in range(members)
        ]
    )
