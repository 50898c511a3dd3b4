"""Predictions -> per-example scores. numpy/pandas only: importing it never pulls in training code.

    from scoring import Scores
    scores = Scores.load("runs/digits")
    order = scores.order(by="accessibility", split="train")   # example indices, easiest first
"""

from scoring import agreement
from scoring.errors import UserError
from scoring.ids import Alignment, content_hash, content_hashes
from scoring.recorder import Recorder
from scoring.records import MemberRecord, Record, load_record, read_run_info
from scoring.scores import SCORE_DIRECTIONS, Scores


def __getattr__(name: str):
    """``checkpoint_summary`` needs scipy (bimodality); import it only when it is used."""
    if name == "checkpoint_summary":
        from scoring.summary import checkpoint_summary

        return checkpoint_summary
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")

__all__ = [
    "Alignment",
    "MemberRecord",
    "Record",
    "Recorder",
    "SCORE_DIRECTIONS",
    "Scores",
    "UserError",
    "agreement",
    "checkpoint_summary",
    "content_hash",
    "content_hashes",
    "load_record",
    "read_run_info",
]
