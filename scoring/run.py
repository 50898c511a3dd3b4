"""A finished record -> ``scores.parquet``: the one code path behind ``curriculum score`` and
:class:`scoring.Recorder`, so both give the same table for the same predictions. The record is
read in one streaming pass per split (:mod:`scoring.stream`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scoring.errors import CorruptFileError
from scoring.scores import Scores
from scoring.stream import DEFAULT_MEMORY_MB, CheckpointCounts, score_split


def el2n_checkpoint(epochs: list[float], fraction: float = 0.1) -> int:
    """EL2N is read early in training (Paul et al.): the first checkpoint after initialisation at
    or past ``fraction`` of the training epochs."""
    target = fraction * epochs[-1]
    return next(i for i, epoch in enumerate(epochs) if i > 0 and epoch >= target - 1e-9)


def write_scores(
    run_dir: str | Path,
    info: dict,
    labels: dict[str, np.ndarray],
    ids: dict[str, np.ndarray] | None = None,
    hashes: dict[str, np.ndarray] | None = None,
    extra: dict[str, dict[str, np.ndarray]] | None = None,
    directions: dict[str, str | None] | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> tuple[Scores, dict[str, CheckpointCounts]]:
    """Score every member's committed record of each split in ``labels`` and write the scores.

    ``info`` is the run's ``run.json`` content (``dataset``, ``members``, ``checkpoints``, ``arch``).
    ``extra`` adds per-split columns that are not scores (a generated dataset's factors), with
    their easier ``directions``. ``memory_mb`` bounds the streaming pass's arrays. Returns the
    scores and, per split, the per-checkpoint counts (for the summary and the figures).
    """
    run_dir = Path(run_dir)
    epochs = [c["epoch"] for c in info["checkpoints"]]
    el2n_at = el2n_checkpoint(epochs)
    passes = {
        split: score_split(run_dir, split, split_labels, info["members"], len(epochs), el2n_at, memory_mb)
        for split, split_labels in labels.items()
    }
    scores = Scores.from_columns(
        {split: result.columns for split, result in passes.items()},
        labels,
        {split: result.reliability for split, result in passes.items()},
        dataset=info["dataset"]["name"],
        fingerprint=info["dataset"]["fingerprint"],
        el2n_checkpoint=el2n_at,
        extra_meta={"arch": info["arch"], "members": info["members"], "epochs": epochs},
        ids=ids,
        hashes=hashes,
    )
    for split, columns in (extra or {}).items():
        scores.add_columns(split, columns, directions)
    _carry_columns(scores, run_dir / "scores.parquet")
    scores.save(run_dir / "scores.parquet")
    return scores, {split: result.counts for split, result in passes.items()}


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
