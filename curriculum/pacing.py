"""Pacing functions: how many of the easiest examples are open for sampling at training step t.

A pacing function maps a step ``t = 0, 1, 2, ...`` to a prefix size ``g(t)``: each mini-batch
of step t is drawn from the first ``g(t)`` examples of an ordering (see ``scoring.ordering``
and ``curriculum.sampler``). Every family here is one small class that checks its parameters
when it is built; calling it returns the size clamped to ``[batch_size, M]``, with M the number
of examples. The formulas follow ``REFERENCE.md``, "Pacing functions".

Hacohen & Weinshall 2019 (their code: GuyHacohen/curriculum_learning). Sizes are rounded
**up** (``ceil``), as their code does (``np.ceil(size_data * percent)``):

- ``exp`` (fixed exponential): ``ceil(M * min(start * inc ** floor(t / step), 1))``.
  Defaults start = 0.04 and inc = 1.9 (theirs); ``step`` is derived from the budget (below).
- ``varied-exp`` (varied exponential): as ``exp``, but the k-th increase happens after the
  k-th entry of ``steps`` (a list of step lengths): the increase points are the cumulative sums
  of ``steps``, and after the list ends its last length repeats until all data is open, so
  ``steps=[100]`` is ``exp`` with ``step=100``. Without ``steps``, equal lengths derived from the
  budget, i.e. ``exp``.
- ``single-step``: ``ceil(start * M)`` for ``t < step``, then M. Default start = 0.04; ``step``
  derived from the budget.

The stage length. Hacohen & Weinshall's code defaults to ``step = 100`` batches but they tuned it
per dataset and budget; a fixed 100 opens at most 14 % of digits (1347 examples) within 280
steps, which is hardly a curriculum. So unless ``step`` (``steps``) is given, it is derived from
the budget T so that the whole set is open by ``OPEN_BY = 0.5`` of it: with K the number of
increases that ``start * inc ** K >= 1`` needs (6 for 0.04 and 1.9), ``step = max(1,
floor(OPEN_BY * T / K))``; for ``single-step``, ``step = max(1, floor(OPEN_BY * T))``. Half the
budget on the growing prefix and half on all data is this toolkit's choice (Wu et al.'s families
default here to ``a = 0.8``). :meth:`Pacing.full_at` says when a pacing opens the whole set, and
the curriculum stage reports one that never does within the budget.

Wu, Dyer & Neyshabur 2021 (their code: google-research/understanding-curricula), with T the
total number of training steps, ``a`` in (0, 10] the fraction of T at which all data is open,
``b`` in [0, 1] the fraction open at t = 0, and ``u = min(t / (a T), 1)``. Sizes are rounded
**down** (``floor``), as their code does (``int(...)``):

- ``linear``:   ``floor(b M + (1 - b) M u)``
- ``quad``:     ``floor(b M + (1 - b) M u^2)``
- ``root``:     ``floor(b M + (1 - b) M u^0.5)``
- ``step``:     ``floor(b M + M floor(u))``
- ``exp-ramp``: ``floor(b M + (1 - b) M (e^(c u) - 1) / (e^c - 1))``, c = 10 (their "exp")
- ``log``:      ``floor(b M + (1 - b) M (1 + ln(u + e^-c) / c))``, c = 10

Capping u at 1 changes nothing after clamping (every family gives at least M at u = 1) and keeps
``e^(c u)`` finite. Their code defaults to a = b = 1, which is no curriculum at all; the defaults
here, a = 0.8 and b = 0.2 (all data open at 80 % of training, a fifth of it from the start), are
this toolkit's choice.

Before ``ceil``/``floor`` the value is rounded to 6 decimals, so that floating-point error
(``0.2 * 1000 + 0.8 * 1000 * 0.5`` landing on 599.999...) does not move the size by one.
"""

from __future__ import annotations

import bisect
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

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
    "make_pacing",
]

_C = 10.0  # Wu et al.'s constant c for exp-ramp and log
#: Fraction of the step budget by which a derived stage length opens the whole set.
OPEN_BY = 0.5


def _ceil(x: float) -> int:
    return math.ceil(round(x, 6))


def _floor(x: float) -> int:
    return math.floor(round(x, 6))


def _real(family: str, name: str, value, lo: float, hi: float, *, lo_open: bool,
          hi_open: bool = False) -> float:
    """``value`` as a float inside the interval, or a UserError naming the interval."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    ok = (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
    if not ok:  # also catches NaN
        raise UserError(f"{family} pacing: {name} must be in {interval}, got {value!r}.")
    return x


def _count(family: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (whole floats such as 100.0 are accepted)."""
    try:
        x = float(value)
        ok = x.is_integer() and x >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise UserError(f"{family} pacing: {name} must be a whole number >= {minimum}, "
                        f"got {value!r}.")
    return int(x)


class Pacing(ABC):
    """A pacing function over M examples: ``pacing(t)`` is the open prefix size at step t.

    Subclasses set ``name`` and ``params`` (their own parameter names) and implement
    ``size(t)``, the family's formula before clamping; ``__call__`` clamps it to
    ``[batch_size, num_examples]``.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]]

    def __init__(self, *, num_examples: int, batch_size: int, total_steps: int | None = None):
        self.num_examples = _count(self.name, "num_examples", num_examples)
        self.batch_size = _count(self.name, "batch_size", batch_size)
        if self.batch_size > self.num_examples:
            raise UserError(f"The batch size ({self.batch_size}) exceeds the number of "
                            f"examples ({self.num_examples}); use a batch size of at most "
                            f"{self.num_examples}.")
        self.total_steps = (None if total_steps is None
                            else _count(self.name, "total_steps", total_steps))

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
            raise UserError(f"{self.name} pacing derives its stage length from the step budget: pass "
                            "total_steps, or give the stage length (step) yourself.")
        return max(1, math.floor(fraction_of_budget * self.total_steps / stages))

    def describe(self) -> str:
        """``exp pacing (start 0.04, inc 1.9, step 23)``: the family and its parameters, for people."""
        def fmt(v):
            return ",".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}"
        return f"{self.name} pacing ({', '.join(f'{p} {fmt(getattr(self, p))}' for p in self.params)})"

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.params)
        return (f"{type(self).__name__}({args}; num_examples={self.num_examples}, "
                f"batch_size={self.batch_size}, total_steps={self.total_steps})")


# --- Hacohen & Weinshall 2019 ------------------------------------------------------------------

class _Exponential(Pacing):
    """``ceil(M * min(start * inc ** k(t), 1))`` with k(t) the number of increases by step t."""

    def __init__(self, *, start: float, inc: float, **sizes):
        super().__init__(**sizes)
        self.start = _real(self.name, "start", start, 0, 1, lo_open=True)
        self.inc = _real(self.name, "inc", inc, 1, math.inf, lo_open=True, hi_open=True)
        # Stage from which start * inc**k >= 1; capping k there keeps inc**k finite.
        self._k_full = math.ceil(math.log(1 / self.start) / math.log(self.inc)) + 1
        # Increases the whole set needs: the smallest K with start * inc**K >= 1.
        self.stages_to_full = next(k for k in range(self._k_full + 1) if self.start * self.inc ** k >= 1)

    @abstractmethod
    def stage(self, t: int) -> int:
        """k(t): how many increases have happened by step t."""

    def size(self, t: int) -> int:
        k = min(self.stage(t), self._k_full)
        return _ceil(self.num_examples * min(self.start * self.inc ** k, 1.0))


class FixedExponential(_Exponential):
    """``exp``: ``ceil(M * min(start * inc ** floor(t / step), 1))``."""

    name = "exp"
    params = ("start", "inc", "step")

    def __init__(self, *, start: float = 0.04, inc: float = 1.9, step: int | None = None, **sizes):
        super().__init__(start=start, inc=inc, **sizes)
        self.step = (self._derived_length(OPEN_BY, max(1, self.stages_to_full)) if step is None
                     else _count(self.name, "step", step))

    def stage(self, t: int) -> int:
        return t // self.step


class VariedExponential(_Exponential):
    """``varied-exp``: ``exp`` whose step lengths come from the list ``steps``.

    The increase points are the cumulative sums of ``steps``; k(t) counts those <= t, and after
    the last one the last length repeats (so ``steps=[s]`` equals ``exp`` with ``step=s``).
    """

    name = "varied-exp"
    params = ("start", "inc", "steps")

    def __init__(self, *, start: float = 0.04, inc: float = 1.9,
                 steps: Iterable[int] | None = None, **sizes):
        super().__init__(start=start, inc=inc, **sizes)
        if steps is None:
            steps = [self._derived_length(OPEN_BY, max(1, self.stages_to_full))]
        try:
            lengths = () if isinstance(steps, (str, bytes)) else tuple(steps)
        except TypeError:  # a single number
            lengths = ()
        if not lengths:
            raise UserError("varied-exp pacing needs steps, a non-empty list of step lengths "
                            f"in batches (e.g. steps=[200, 100, 50]), got {steps!r}.")
        self.steps = tuple(_count(self.name, "each entry of steps", s) for s in lengths)
        self._points = list(itertools.accumulate(self.steps))

    def stage(self, t: int) -> int:
        last = self._points[-1]
        if t < last:
            return bisect.bisect_right(self._points, t)
        return len(self._points) + (t - last) // self.steps[-1]


class SingleStep(Pacing):
    """``single-step``: ``ceil(start * M)`` for ``t < step``, then M."""

    name = "single-step"
    params = ("start", "step")

    def __init__(self, *, start: float = 0.04, step: int | None = None, **sizes):
        super().__init__(**sizes)
        self.start = _real(self.name, "start", start, 0, 1, lo_open=True)
        self.step = self._derived_length(OPEN_BY, 1) if step is None else _count(self.name, "step", step)

    def size(self, t: int) -> int:
        return _ceil(self.start * self.num_examples) if t < self.step else self.num_examples


# --- Wu, Dyer & Neyshabur 2021 -----------------------------------------------------------------

class _Wu(Pacing):
    """``floor(b M + (1 - b) M ramp(u))`` with ``u = min(t / (a T), 1)``."""

    params = ("a", "b")

    def __init__(self, *, a: float = 0.8, b: float = 0.2, **sizes):
        super().__init__(**sizes)
        if self.total_steps is None:
            raise UserError(f"{self.name} pacing needs the total number of training steps "
                            "(total_steps >= 1).")
        self.a = _real(self.name, "a", a, 0, 10, lo_open=True)
        self.b = _real(self.name, "b", b, 0, 1, lo_open=False)

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
    for cls in (FixedExponential, VariedExponential, SingleStep,
                Linear, Quadratic, Root, Step, ExpRamp, Logarithmic)
}


def make_pacing(name: str, *, num_examples: int, batch_size: int,
                total_steps: int | None = None, **params) -> Pacing:
    """Build the pacing family ``name`` (a key of ``PACINGS``) with its own ``params``.

    ``total_steps`` (T) is needed by Wu et al.'s families and ignored by Hacohen & Weinshall's.
    An unknown name, an unknown parameter or a value out of range raises ``UserError``.
    """
    cls = PACINGS.get(name)
    if cls is None:
        raise UserError(f"Unknown pacing {name!r}; choose one of: {', '.join(PACINGS)}.")
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        raise UserError(f"{name} pacing takes the parameters {', '.join(cls.params)}; "
                        f"it has no {', '.join(unknown)}.")
    return cls(num_examples=num_examples, batch_size=batch_size, total_steps=total_steps,
               **params)
