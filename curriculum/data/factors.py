"""How the scores and the image statistics track a difficulty known by construction.

The generated datasets (``shapes``, ``gaussian``, ``gabor``, ``gabor-overlap``) carry the
factors that made each example (``curriculum.data.Split.factors``). A score run copies them into
``scores.parquet`` as ``factor_<name>`` columns, with the direction that makes an example easier
where the generator decides it (``shapes``: larger, higher contrast, less clutter, occlusion and
noise; ``gaussian``: a larger margin; ``gabor-overlap``: outside the other class's range), so an
order by a factor is an oracle curriculum to hold a learned order against.

:func:`factor_correlations` gives, per factor, the Spearman correlation of a column with it and
whether its sign is the one construction predicts: a score that orders examples by difficulty
correlates positively with an easier-when-higher factor when the score is higher-is-easier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from curriculum.config.recipes import base_name
from curriculum.data import shapes
from stats.distributions import spearman

PREFIX = "factor_"

#: Per generated dataset family (:func:`curriculum.config.recipes.base_name`), the direction of each
#: factor that makes an example easier; factors not listed are nuisances (None).
EASIER: dict[str, dict[str, str]] = {
    "shapes": {name: way for name, way in shapes.EASIER.items() if way is not None},
    "gaussian": {"margin": "higher"},
    "gabor-overlap": {"in_other_range": "lower"},
}

#: Unit of each factor, for figure axes.
UNITS = {
    "size": "px, half the box",
    "contrast": "grey levels",
    "clutter": "grey levels, std",
    "occlusion": "fraction of the shape hidden",
    "noise": "grey levels, std",
    "x": "px",
    "y": "px",
    "margin": "standard deviations",
    "orientation": "degrees",
    "offset": "degrees from the class's base",
    "sigma": "px",
    "wavelength": "px",
    "in_other_range": "1 = inside another class's range",
}


def factor_columns(factors: dict[str, np.ndarray], dataset: str) -> tuple[dict[str, np.ndarray], dict[str, str | None]]:
    """The ``factor_<name>`` columns of one split and their easier directions."""
    easier = EASIER.get(base_name(dataset), {})
    columns = {PREFIX + name: np.asarray(values, dtype=np.float64) for name, values in factors.items()}
    return columns, {PREFIX + name: easier.get(name) for name in factors}


def factor_correlations(
    table: pd.DataFrame, columns: list[str], directions: dict[str, str | None], split: str = "train"
) -> pd.DataFrame:
    """Spearman r of each column with each factor column over ``split``'s rows.

    Long table: factor, column, split, spearman_r, expected (``"+"``, ``"-"`` or ``""`` for a
    nuisance factor or a column without a direction), and ``as_built`` (True when r has the
    expected sign, None without an expectation). ``directions`` holds the easier direction of
    the factor columns and of the scored columns (``Scores.directions``).
    """
    rows = table[table["split"] == split]
    factors = [c for c in rows.columns if c.startswith(PREFIX)]
    out = []
    for factor in factors:
        for column in columns:
            r, _ = spearman(rows[column].to_numpy(np.float64), rows[factor].to_numpy(np.float64))
            ways = directions.get(factor), directions.get(column)
            expected = "" if None in ways else "+" if ways[0] == ways[1] else "-"
            out.append(
                {
                    "factor": factor[len(PREFIX) :],
                    "column": column,
                    "split": split,
                    "spearman_r": r,
                    "expected": expected,
                    "as_built": None if not expected or not np.isfinite(r) else (r > 0) == (expected == "+"),
                }
            )
    return pd.DataFrame(out)


def factor_sentence(correlations: pd.DataFrame, column: str = "accessibility") -> str:
    """One sentence on the test split (else the first there is): how many of the difficulty
    factors the column tracks with the sign construction predicts, and the strongest of them."""
    rows = correlations[(correlations["column"] == column) & (correlations["expected"] != "")]
    if rows.empty:
        return ""
    split = "test" if (rows["split"] == "test").any() else rows["split"].iloc[0]
    rows = rows[rows["split"] == split]
    strongest = rows.iloc[rows["spearman_r"].abs().argmax()]
    right = int(rows["as_built"].eq(True).sum())
    return (
        f"On the {split} examples, {column} tracks {right} of the {len(rows)} difficulty factors the generator "
        f"controls with the sign construction predicts; the strongest is {strongest.factor} (Spearman r = "
        f"{strongest.spearman_r:+.2f})."
    )


def factor_table(correlations: pd.DataFrame) -> str:
    """A markdown table: one row per factor, one column per (column, split); a tick marks the
    sign construction predicts, a cross the other sign (none for nuisance factors)."""
    keys = list(dict.fromkeys(zip(correlations["column"], correlations["split"])))
    lines = ["| factor | " + " | ".join(f"{c} ({s})" for c, s in keys) + " |", "| --- |" + " --- |" * len(keys)]
    for factor, rows in correlations.groupby("factor", sort=False):
        cells = {
            (r.column, r.split): f"{r.spearman_r:+.3f}" + {True: " ✓", False: " ✗"}.get(r.as_built, "")
            for r in rows.itertuples()
        }
        lines.append(f"| {factor} | " + " | ".join(cells.get(key, "") for key in keys) + " |")
    return "\n".join(lines)
