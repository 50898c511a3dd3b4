"""The per-example scores table, ``scores.parquet``: what other projects import.

One row per example and split (``split``, ``index`` in that split, the example's stable ``id``
and ``content_hash`` (see ``scoring.ids``), ``label``) and one column per score. The parquet metadata (key ``curriculum``) carries the schema version, the dataset name and
fingerprint, and for each column the direction that means *easier* (``"higher"``, ``"lower"`` or
``null`` when a column has none, as for data-map variability or image statistics)::

    from scoring import Scores
    scores = Scores.load("runs/digits")
    easy_first = scores.order(by="accessibility", split="train")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.errors import UserError
from scoring.files import atomic_write_bytes, reading
from scoring.ids import Alignment, align, as_ids
from scoring.ordering import order_examples
from scoring.records import SCHEMA_VERSION
from scoring.reliability import DEFAULT_HALVINGS

META_KEY = b"curriculum"
KEY_COLUMNS = ("split", "index", "id", "content_hash")  # what identifies a row; never a score

#: Columns every score run writes (computed by :func:`scoring.stream.score_split`), with the
#: direction that means easier. Every average over
#: training (accessibility, learned checkpoint, forgetting, the data map) uses the checkpoints
#: after initialisation: Hacohen et al. 2020 average consistency "over all epochs" of training, and Toneva
#: et al. and Swayamdipta et al. count only what happens during training. Consistency and
#: consensus are read at the last checkpoint.
SCORE_DIRECTIONS: dict[str, str | None] = {
    "consistency": "higher",  # fraction of members correct at the last checkpoint
    "consensus": "higher",  # agreement on a label (right or wrong) at the last checkpoint
    "accessibility": "higher",  # consistency averaged over the checkpoints after initialisation
    "learned_checkpoint": "lower",  # mean over members of the checkpoint from which it stays correct
    "forgetting": "lower",  # mean over members of correct -> incorrect transitions
    "confidence": "higher",  # data map: mean P(true class)
    "variability": None,  # data map: std of P(true class); high = ambiguous, not hard
    "correctness": "higher",  # data map: fraction of checkpoints correct
    "el2n": "lower",  # mean EL2N over members at an early checkpoint
}


def _json_float(value: float) -> float | None:
    """JSON has no NaN: store None (read back as NaN)."""
    return None if np.isnan(value) else round(float(value), 6)


@dataclass
class Scores:
    """A scores table and its metadata; see the module docstring."""

    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_columns(
        cls,
        columns: dict[str, dict[str, np.ndarray]],
        labels: dict[str, np.ndarray],
        reliability: dict[str, dict[str, dict[str, float]]],
        *,
        dataset: str,
        fingerprint: str,
        el2n_checkpoint: int,
        extra_meta: dict | None = None,
        ids: dict[str, np.ndarray] | None = None,
        hashes: dict[str, np.ndarray] | None = None,
    ) -> Scores:
        """The table of every split's score ``columns`` (:func:`scoring.stream.score_split`), with
        their split-half ``reliability``; ``ids`` and ``hashes`` (per split, one per example) fill
        the ``id`` and ``content_hash`` columns (positions and None when not given)."""
        frames = []
        for split, split_columns in columns.items():
            m = len(labels[split])
            frames.append(
                pd.DataFrame(
                    {
                        "split": split,
                        "index": np.arange(m),
                        "id": as_ids(ids[split]) if ids and split in ids else as_ids(np.arange(m)),
                        "content_hash": np.asarray(hashes[split], dtype=object)
                        if hashes and split in hashes
                        else np.full(m, None, dtype=object),
                        "label": np.asarray(labels[split], dtype=np.int64),
                        **split_columns,
                    }
                )
            )
        meta = {
            "schema_version": SCHEMA_VERSION,
            "dataset": dataset,
            "fingerprint": fingerprint,
            "directions": dict(SCORE_DIRECTIONS),
            "el2n_checkpoint": el2n_checkpoint,
            "reliability": {
                "method": "split-half: Spearman rho between the scores of two random halves of the members, "
                f"mean over {DEFAULT_HALVINGS} splits ('half'), Spearman-Brown corrected to all members ('full')",
                "values": {
                    split: {name: {k: _json_float(v) for k, v in values.items()} for name, values in halves.items()}
                    for split, halves in reliability.items()
                },
            },
            **(extra_meta or {}),
        }
        return cls(pd.concat(frames, ignore_index=True), meta)

    @classmethod
    def load(cls, path: str | Path) -> Scores:
        """Load ``scores.parquet`` from a run directory or a file path."""
        path = Path(path)
        if path.is_dir():
            path = path / "scores.parquet"
        if not path.exists():
            raise UserError(f"No scores at {path}; run `curriculum score` first (its --out is the run directory).")
        fix = "run `curriculum score` again with the same settings to rewrite it"
        with reading(path, fix, errors=(OSError, pa.ArrowInvalid, ValueError)):
            table = pq.read_table(pa.BufferReader(path.read_bytes()))
            raw = (table.schema.metadata or {}).get(META_KEY)
            if raw is None:
                raise UserError(f"{path} has no curriculum metadata; it was not written by `curriculum score`.")
            meta = json.loads(raw)
            if not isinstance(meta, dict) or not {"directions", "fingerprint"} <= meta.keys():
                raise ValueError("metadata without directions or fingerprint")
        return cls(table.to_pandas(), meta)

    def save(self, path: str | Path) -> Path:
        """Write parquet atomically (temporary file + rename)."""
        path = Path(path)
        if path.suffix != ".parquet":
            path = path / "scores.parquet"
        table = pa.Table.from_pandas(self.table, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), META_KEY: json.dumps(self.meta).encode()}
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def directions(self) -> dict[str, str | None]:
        return self.meta["directions"]

    @property
    def reliability(self) -> pd.DataFrame:
        """Split-half reliability of every score's order, one row per score and one column per
        split: the Spearman-Brown value, i.e. the Spearman correlation expected between this
        ensemble's scores and those of a second, independent ensemble of the same size (higher =
        more reliable; NaN where undefined). ``meta["reliability"]`` also holds the uncorrected
        half-ensemble values."""
        values = self.meta.get("reliability", {}).get("values", {})
        return pd.DataFrame(
            {
                split: {name: (np.nan if v["full"] is None else v["full"]) for name, v in cols.items()}
                for split, cols in values.items()
            }
        )

    def split(self, split: str) -> pd.DataFrame:
        """Rows of one split, sorted by example index."""
        rows = self.table[self.table["split"] == split]
        if rows.empty:
            raise UserError(
                f"The scores hold no '{split}' split; choose one of {', '.join(self.table['split'].unique())}."
            )
        return rows.sort_values("index").reset_index(drop=True)

    def column(self, by: str, split: str = "train") -> np.ndarray:
        if by not in self.table.columns or by in KEY_COLUMNS:
            names = [c for c in self.table.columns if c not in (*KEY_COLUMNS, "label")]
            raise UserError(f"Unknown score column '{by}'; choose one of {', '.join(names)}.")
        return self.split(split)[by].to_numpy()

    def order(
        self,
        by: str = "accessibility",
        split: str = "train",
        kind: str = "curriculum",
        *,
        easier: str | None = None,
        balanced: bool = True,
        seed: int = 0,
    ) -> np.ndarray:
        """Example indices of ``split`` in ``kind`` order (easiest first for ``curriculum``),
        class-balanced unless ``balanced=False``: :func:`scoring.ordering.order_examples`.

        The direction comes from the metadata; columns without one (e.g. ``variability``, image
        statistics) need ``easier="higher"`` or ``"lower"``, and a given ``easier`` that
        contradicts the metadata is refused.
        """
        rows = self.split(split)
        values = self.column(by, split)
        known = self.directions.get(by)
        if easier is None:
            if known is None:
                raise UserError(f"Column '{by}' has no easier direction; pass easier='higher' or easier='lower'.")
            easier = known
        elif known is not None and easier != known:
            raise UserError(f"Column '{by}' is {known}-is-easier by its metadata, not {easier}; leave easier out.")
        return order_examples(values, rows["label"].to_numpy(), kind, easier=easier, balanced=balanced, seed=seed)

    def add_columns(
        self, split: str, columns: dict[str, np.ndarray], directions: dict[str, str | None] | None = None
    ) -> None:
        """Add per-example columns (e.g. image statistics) for the rows of ``split``, in index order."""
        mask = (self.table["split"] == split).to_numpy()
        index = self.table.loc[mask, "index"].to_numpy()
        for name, values in columns.items():
            values = np.asarray(values)
            if len(values) != mask.sum():
                raise ValueError(f"column {name} has {len(values)} values for {mask.sum()} {split} examples")
            if name not in self.table.columns:
                self.table[name] = np.nan
            self.table.loc[mask, name] = values[index]
            self.meta["directions"][name] = (directions or {}).get(name)

    def carry_columns(self, previous: Scores) -> None:
        """Take over the columns ``previous`` (an earlier table of the same run) has and this one
        lacks, with their directions: rewriting a run's scores keeps what ``curriculum stats`` added."""
        extra = [c for c in previous.table.columns if c not in self.table.columns]
        for split in previous.table["split"].unique() if extra else ():
            rows = previous.split(split)
            self.add_columns(
                split, {c: rows[c].to_numpy() for c in extra}, {c: previous.directions.get(c) for c in extra}
            )

    def check_fingerprint(self, fingerprint: str, dataset_name: str) -> None:
        """Refuse to pair these scores with a dataset whose images or labels differ."""
        if fingerprint != self.fingerprint:
            raise UserError(
                f"These scores belong to dataset '{self.meta.get('dataset')}', not to '{dataset_name}' (the "
                f"fingerprints differ); run `curriculum score --dataset {dataset_name}`, pass a matching run, or "
                f"re-map them by example id with Scores.align."
            )

    def attach(self, dataset: Any) -> dict[str, pd.DataFrame]:
        """Per-split tables aligned with ``dataset`` (anything with ``fingerprint``), checked first."""
        self.check_fingerprint(dataset.fingerprint, getattr(dataset, "name", "the dataset"))
        return {split: self.split(split) for split in self.table["split"].unique()}

    def align(self, target: Any, by: str | None = None, split: str | None = None) -> Alignment:
        """These scores matched to a user's examples by ``id`` or ``content_hash``, one row per
        example of ``target`` in its order: a Hugging Face ``datasets.Dataset`` (its ``id`` column
        or split name + row), a list of ids or file paths, or uint8 images. ``str()`` of the result
        says how many matched; see :func:`scoring.ids.align`."""
        return align(self.table, target, by=by, split=split)

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_bytes(path, self.table.to_csv(index=False).encode())
        return path
