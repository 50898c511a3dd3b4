"""A finished record -> ``scores.parquet``: the one code path behind ``curriculum score`` and
:class:`scoring.Recorder`, so both give the same table for the same predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scoring.errors import CorruptFileError
from scoring.records import Record, load_record
from scoring.scores import Scores


def el2n_checkpoint(epochs: list[float], fraction: float = 0.1) -> int:
    """EL2N is read early in training (Paul et al.): the first checkpoint after initialisation at
    or past ``fraction`` of the training epochs."""
    target = fraction * epochs[-1]
    return next(i for i, epoch in enumerate(epochs) if i > 0 and epoch >= target - 1e-9)


def write_scores(run_dir: str | Path, info: dict, labels: dict[str, np.ndarray], ids: dict[str, np.ndarray] | None = None,
                 hashes: dict[str, np.ndarray] | None = None,
                 extra: dict[str, dict[str, np.ndarray]] | None = None,
                 directions: dict[str, str | None] | None = None) -> tuple[Scores, dict[str, Record]]:
    """Read every member's committed record of each split in ``labels`` and write the scores.

    ``info`` is the run's ``run.json`` content (``dataset``, ``members``, ``checkpoints``, ``arch``).
    ``extra`` adds per-split columns that are not scores (a generated dataset's factors), with
    their easier ``directions``. Returns the scores and the records (for summaries and figures).
    """
    run_dir = Path(run_dir)
    epochs = [c["epoch"] for c in info["checkpoints"]]
    records = {split: load_record(run_dir, split, split_labels, info["members"], len(epochs)) for split, split_labels in labels.items()}
    scores = Scores.from_records(
        records, dataset=info["dataset"]["name"], fingerprint=info["dataset"]["fingerprint"], el2n_checkpoint=el2n_checkpoint(epochs),
        extra_meta={"arch": info["arch"], "members": info["members"], "epochs": epochs}, ids=ids, hashes=hashes,
    )
    for split, columns in (extra or {}).items():
        scores.add_columns(split, columns, directions)
    _carry_columns(scores, run_dir / "scores.parquet")
    scores.save(run_dir / "scores.parquet")
    return scores, records


def _carry_columns(scores: Scores, path: Path) -> None:
    """Keep the columns a later stage (``curriculum stats``) added to this run's previous scores;
    a damaged previous file is simply replaced by the fresh table, an unreadable one stops with
    its one sentence."""
    if not path.exists():
        return
    try:
        previous = Scores.load(path)
    except CorruptFileError:
        return
    if previous.fingerprint == scores.fingerprint:
        scores.carry_columns(previous)
