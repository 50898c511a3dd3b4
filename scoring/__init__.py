"""Predictions -> per-example scores. numpy/pandas only: importing it never pulls in training code.

    from scoring import Scores
    scores = Scores.load("runs/digits")
    order = scores.order(by="accessibility", split="train")   # example indices, easiest first

Names are imported on first use (PEP 562), so ``from scoring.errors import UserError`` in the
command line does not load pandas and pyarrow.
"""

from scoring.lazy import lazy_exports

_EXPORTS = {
    "Alignment": "scoring.ids",
    "MemberRecord": "scoring.records",
    "Recorder": "scoring.recorder",
    "SCORE_DIRECTIONS": "scoring.scores",
    "Scores": "scoring.scores",
    "UserError": "scoring.errors",
    "agreement": "scoring.agreement",
    "checkpoint_summary": "scoring.summary",
    "dynamics": "scoring.dynamics",
    "content_hash": "scoring.ids",
    "content_hashes": "scoring.ids",
    "read_run_info": "scoring.records",
    "score_split": "scoring.stream",
}

__getattr__, __dir__, __all__ = lazy_exports("scoring", _EXPORTS)
