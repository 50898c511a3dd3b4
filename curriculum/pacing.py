"""Pacing functions: how many of the easiest examples are open for sampling at training step t.

One small class per family (Hacohen & Weinshall 2019: ``exp``, ``varied-exp``, ``single-step``;
Wu, Dyer & Neyshabur 2021: ``linear``, ``quad``, ``root``, ``step``, ``exp-ramp``, ``log``), each
checking its parameters when built; ``pacing(t)`` is the prefix size clamped to ``[batch_size, M]``.
The formulas, their rounding and the derived stage length are in docs/REFERENCE.md, "Pacing
functions"; the orders they pace come from :mod:`scoring.ordering`, the batches from
:mod:`curriculum.sampler`.
"""

from __future__ import annotations

import bisect
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

from curriculum.config.constraints import Interval
from scoring.errors import UserError

__all__ = [
    "PACINGS",
    "ExpRamp",
    "FixedExponential",
    "Linear",
    "Logarithmic",
    "Pacing",
    "Quadratic",
    "Root",
    "SingleStep",
    "Step",
    "VariedExponential",
    "check_pacing_params",
    "make_pacing",
]

_C = 10.0  # Wu et al.'s constant c for exp-ramp and log
#: Fraction of the step budget by which a derived stage length opens the whole set.
OPEN_BY = 0.5


def _ceil(x: float) -> int:
    return math.ceil(round(x, 6))


def _floor(x: float) -> int:
    return math.floor(round(x, 6))


_COUNT = Interval("[1, inf)", whole=True)
#: Each parameter's range, for every family that takes it.
PARAMETER_RANGES = {
    "start": Interval("(0, 1]"),
    "inc": Interval("(1, inf)"),
    "stage_length": _COUNT,
    "a": Interval("(0, 10]"),
    "b": Interval("[0, 1]"),
}


def _param(family: str, name: str, value) -> float | int:
    """``value`` checked against the parameter's range; the error names the family."""
    return PARAMETER_RANGES[name].check(value, f"{family} pacing: {name}")


class Pacing(ABC):
    """A pacing function over M examples: ``pacing(t)`` is the open prefix size at step t.

    Subclasses set ``name`` and ``params`` (their own parameter names) and implement
    ``size(t)``, the family's formula before clamping; ``__call__`` clamps it to
    ``[batch_size, num_examples]``.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]]

    def __init__(self, *, num_examples: int, batch_size: int, total_steps: int | None = None):
        self.num_examples = _COUNT.check(num_examples, f"{self.name} pacing: num_examples")
        self.batch_size = _COUNT.check(batch_size, f"{self.name} pacing: batch_size")
        if self.batch_size > self.num_examples:
            raise UserError(
                f"The batch size ({self.batch_size}) exceeds the number of "
                f"examples ({self.num_examples}); use a batch size of at most "
                f"{self.num_examples}."
            )
        self.total_steps = (
            None if total_steps is None else _COUNT.check(total_steps, f"{self.name} pacing: total_steps")
        )

    @abstractmethod
    def size(self, t: int) -> int:
        """The family's prefix size at step t, before clamping to [batch_size, M]."""

    def __call__(self, t: int) -> int:
        if isinstance(t, bool) or not float(t).is_integer() or t < 0:
            raise ValueError(f"step t must be a whole number >= 0, got {t!r}")
        return min(max(self.size(int(t)), self.batch_size), self.num_examples)

    def full_at(self) -> int | None:
        """The first step at which the whole set is open, or None if that never happens within
        ``total_steps`` (sizes never shrink, so a binary search finds it)."""
        if self.total_steps is None:
            raise UserError(f"{self.name} pacing needs total_steps to say when all data is open.")
        if self(self.total_steps - 1) < self.num_examples:
            return None
        lo, hi = 0, self.total_steps - 1
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if self(mid) < self.num_examples else (lo, mid)
        return lo

    def _derived_length(self, fraction_of_budget: float, stages: int) -> int:
        """A stage length that opens the whole set by ``OPEN_BY`` of the budget."""
        if self.total_steps is None:
            raise UserError(
                f"{self.name} pacing derives its stage length from the step budget: pass "
                "total_steps, or give the stage length (stage_length) yourself."
            )
        return max(1, math.floor(fraction_of_budget * self.total_steps / stages))

    def describe(self) -> str:
        """``exp pacing (start 0.04, inc 1.9, stage_length 23)``: the family and its parameters, for people."""

        def fmt(v):
            return ",".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}"

        return f"{self.name} pacing ({', '.join(f'{p} {fmt(getattr(self, p))}' for p in self.params)})"

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.params)
        return (
            f"{type(self).__name__}({args}; num_examples={self.num_examples}, "
            f"batch_size={self.batch_size}, total_steps={self.total_steps})"
        )


# --- Hacohen & Weinshall 2019 ------------------------------------------------------------------


class _Exponential(Pacing):
    """``ceil(M * min(start * inc ** k(t), 1))`` with k(t) the number of increases by step t."""

    def __init__(self, *, start: float, inc: float, **sizes):
        super().__init__(**sizes)
        self.start = _param(self.name, "start", start)
        self.inc = _param(self.name, "inc", inc)
        # Stage from which start * inc**k >= 1; capping k there keeps inc**k finite.
        self._k_full = math.ceil(math.log(1 / self.start) / math.log(self.inc)) + 1
        # Increases the whole set needs: the smallest K with start * inc**K >= 1.
        self.stages_to_full = next(k for k in range(self._k_full + 1) if self.start * self.inc**k >= 1)

    @abstractmethod
    def stage(self, t: int) -> int:
        """k(t): how many increases have happened by step t."""

    def size(self, t: int) -> int:
        k = min(self.stage(t), self._k_full)
        return _ceil(self.num_examples * min(self.start * self.inc**k, 1.0))


class FixedExponential(_Exponential):
    """``exp``: ``ceil(M * min(start * inc ** floor(t / stage_length), 1))``."""

    name = "exp"
    params = ("start", "inc", "stage_length")

    def __init__(self, *, start: float = 0.04, inc: float = 1.9, stage_length: int | None = None, **sizes):
        super().__init__(start=start, inc=inc, **sizes)
        self.stage_length = (
            self._derived_length(OPEN_BY, max(1, self.stages_to_full))
            if stage_length is None
            else _param(self.name, "stage_length", stage_length)
        )

    def stage(self, t: int) -> int:
        return t // self.stage_length


class VariedExponential(_Exponential):
    """``varied-exp``: ``exp`` whose stage lengths come from the list ``stage_lengths``.

    The increase points are the cumulative sums of ``stage_lengths``; k(t) counts those <= t, and
    after the last one the last length repeats (so ``stage_lengths=[s]`` equals ``exp`` with
    ``stage_length=s``).
    """

    name = "varied-exp"
    params = ("start", "inc", "stage_lengths")

    def __init__(self, *, start: float = 0.04, inc: float = 1.9, stage_lengths: Iterable[int] | None = None, **sizes):
        super().__init__(start=start, inc=inc, **sizes)
        if stage_lengths is None:
            stage_lengths = [self._derived_length(OPEN_BY, max(1, self.stages_to_full))]
        try:
            lengths = () if isinstance(stage_lengths, (str, bytes)) else tuple(stage_lengths)
        except TypeError:  # a single number
            lengths = ()
        if not lengths:
            raise UserError(
                "varied-exp pacing needs stage_lengths, a non-empty list of stage lengths "
                f"in batches (e.g. stage_lengths=[200, 100, 50]), got {stage_lengths!r}."
            )
        self.stage_lengths = tuple(_param(self.name, "stage_length", s) for s in lengths)
        self._points = list(itertools.accumulate(self.stage_lengths))

    def stage(self, t: int) -> int:
        last = self._points[-1]
        if t < last:
            return bisect.bisect_right(self._points, t)
        return len(self._points) + (t - last) // self.stage_lengths[-1]


class SingleStep(Pacing):
    """``single-step``: ``ceil(start * M)`` for ``t < stage_length``, then M."""

    name = "single-step"
    params = ("start", "stage_length")

    def __init__(self, *, start: float = 0.04, stage_length: int | None = None, **sizes):
        super().__init__(**sizes)
        self.start = _param(self.name, "start", start)
        self.stage_length = (
            self._derived_length(OPEN_BY, 1)
            if stage_length is None
            else _param(self.name, "stage_length", stage_length)
        )

    def size(self, t: int) -> int:
        return _ceil(self.start * self.num_examples) if t < self.stage_length else self.num_examples


# --- Wu, Dyer & Neyshabur 2021 -----------------------------------------------------------------


class _Wu(Pacing):
    """``floor(b M + (1 - b) M ramp(u))`` with ``u = min(t / (a T), 1)``."""

    params = ("a", "b")

    def __init__(self, *, a: float = 0.8, b: float = 0.2, **sizes):
        super().__init__(**sizes)
        if self.total_steps is None:
            raise UserError(f"{self.name} pacing needs the total number of training steps (total_steps >= 1).")
        self.a = _param(self.name, "a", a)
        self.b = _param(self.name, "b", b)

    def u(self, t: int) -> float:
        return min(t / (self.a * self.total_steps), 1.0)

    @abstractmethod
    def ramp(self, u: float) -> float:
        """The family's shape on [0, 1]: 0 at u = 0, (at least) 1 at u = 1."""

    def size(self, t: int) -> int:
        m, b = self.num_examples, self.b
        return _floor(b * m + (1 - b) * m * self.ramp(self.u(t)))


class Linear(_Wu):
    """``linear``: ``floor(b M + (1 - b) M u)``."""

    name = "linear"

    def ramp(self, u: float) -> float:
        return u


class Quadratic(_Wu):
    """``quad``: ``floor(b M + (1 - b) M u^2)``."""

    name = "quad"

    def ramp(self, u: float) -> float:
        return u * u


class Root(_Wu):
    """``root``: ``floor(b M + (1 - b) M u^0.5)``."""

    name = "root"

    def ramp(self, u: float) -> float:
        return math.sqrt(u)


class Step(_Wu):
    """``step``: ``floor(b M + M floor(u))``: b M until t = a T, then (clamped) M.

    Computed as ``floor(b M + (1 - b) M floor(u))``, which is the same once clamped to M.
    """

    name = "step"

    def ramp(self, u: float) -> float:
        return math.floor(u)


class ExpRamp(_Wu):
    """``exp-ramp`` (Wu et al.'s "exp"): ``floor(b M + (1 - b) M (e^(cu) - 1) / (e^c - 1))``."""

    name = "exp-ramp"

    def ramp(self, u: float) -> float:
        return math.expm1(_C * u) / math.expm1(_C)


class Logarithmic(_Wu):
    """``log``: ``floor(b M + (1 - b) M (1 + ln(u + e^-c) / c))``, c = 10."""

    name = "log"

    def ramp(self, u: float) -> float:
        return 1 + math.log(u + math.exp(-_C)) / _C


PACINGS: dict[str, type[Pacing]] = {
    cls.name: cls
    for cls in (FixedExponential, VariedExponential, SingleStep, Linear, Quadratic, Root, Step, ExpRamp, Logarithmic)
}


def check_pacing_params(name: str, params: dict, label=None) -> None:
    """Refuse an unknown family, a parameter the family does not take, or a value out of range,
    with the sentence every check shares; ``label(param)`` names a parameter (a flag, say)."""
    cls = PACINGS.get(name)
    if cls is None:
        raise UserError(f"Unknown pacing {name!r}; choose one of: {', '.join(PACINGS)}.")
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        raise UserError(f"{name} pacing takes the parameters {', '.join(cls.params)}; it has no {', '.join(unknown)}.")
    label = label or (lambda param: f"{name} pacing: {param}")
    for param, value in params.items():
        if param in PARAMETER_RANGES:  # a list of stage lengths is checked entry by entry when built
            PARAMETER_RANGES[param].check(value, label(param))


def make_pacing(name: str, *, num_examples: int, batch_size: int, total_steps: int | None = None, **params) -> Pacing:
    """Build the pacing family ``name`` (a key of ``PACINGS``) with its own ``params``.

    ``total_steps`` (T) is needed by Wu et al.'s families and ignored by Hacohen & Weinshall's.
    An unknown name, an unknown parameter or a value out of range raises ``UserError``.
    """
    check_pacing_params(name, params)
    return PACINGS[name](num_examples=num_examples, batch_size=batch_size, total_steps=total_steps, **params)
