"""The one validator: a range of numbers (:class:`Interval`) or a set of names (:class:`Options`).

Configs, pacing families, dataset names and the Python API check their values with these, so the
same mistake gets the same sentence everywhere: ``"{what} must be {expected}, got {value}."``
(in the spirit of scikit-learn's ``utils._param_validation``). Torch-free.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from scoring.errors import UserError

#: What every random generator we seed accepts.
SEED_RANGE = "[0, 4294967295]"


def shown(value: Any, label: str) -> str:
    """A value as the sentence shows it: for a flag as typed (a number as ``:g``), repr otherwise."""
    if label.startswith("--") and isinstance(value, (str, float)):
        return value if isinstance(value, str) else f"{value:g}"
    return repr(value)


def _whole(value: Any) -> int:
    """``value`` as an int: ints, whole floats (100.0) and their strings; bools are not numbers."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    x = float(value)
    if not x.is_integer():
        raise ValueError(value)
    return int(x)


def _real(value: Any) -> float:
    """``value`` as a float: numbers and their strings (YAML 1.1 reads ``5e-4`` as one); not bools."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    return float(value)


@dataclass(frozen=True)
class Interval:
    """Numbers in a range written as in mathematics, ``"(0, 10]"`` or ``"[1, inf)"``, so the
    declaration, the help text and the error message all show the same text.

    ``whole=True`` admits whole numbers only (``100.0`` counts as 100). NaN and infinities are
    never inside.
    """

    text: str
    whole: bool = False

    @functools.cached_property
    def _bounds(self) -> tuple[float, float, bool, bool]:
        lo, hi = (float(part) for part in self.text[1:-1].split(","))
        return lo, hi, self.text[0] == "(", self.text[-1] == ")"

    def __contains__(self, x: float) -> bool:
        lo, hi, lo_open, hi_open = self._bounds
        return math.isfinite(x) and (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)

    def __str__(self) -> str:
        """``>= 1`` for a half-line, ``in (0, 10]`` otherwise."""
        lo, hi, lo_open, hi_open = self._bounds
        lo_s, hi_s = (f"{int(x)}" if x.is_integer() else f"{x:g}" for x in (lo, hi))
        if math.isinf(hi):
            return f"{'>' if lo_open else '>='} {lo_s}"
        return f"in {'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}"

    def expected(self) -> str:
        return f"{'a whole number' if self.whole else 'a finite number'} {self}"

    def convert(self, value: Any) -> int | float:
        """``value`` as a number inside the range, or ValueError."""
        number = _whole(value) if self.whole else _real(value)
        if number not in self:
            raise ValueError(value)
        return number

    def check(self, value: Any, label: str) -> int | float:
        """``value`` as a number inside the range, or a UserError naming ``label``."""
        try:
            return self.convert(value)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{label} must be {self.expected()}, got {shown(value, label)}.") from None


@dataclass(frozen=True)
class Options:
    """One name among ``names``."""

    names: tuple[str, ...]

    def expected(self) -> str:
        return f"one of {', '.join(self.names)}"

    def convert(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.names:
            raise ValueError(value)
        return value

    def check(self, value: Any, label: str) -> str:
        """``value`` if it is one of the names, or a UserError naming ``label``."""
        try:
            return self.convert(value)
        except ValueError:
            raise UserError(f"{label} must be {self.expected()}, got {shown(value, label)}.") from None


def split_list(value: Any) -> list[str]:
    """A list from a flag's comma-separated text or a YAML list, items stripped, empty ones dropped."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        raise ValueError(value)
    return [item.strip() for item in items if item.strip()]
