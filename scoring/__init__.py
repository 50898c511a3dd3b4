"""Predictions -> per-example scores. numpy/pandas only: importing it never pulls in training code.

    from scoring import Scores
    scores = Scores.load("runs/digits")
    order = scores.order(by="accessibility", split="train")   # example indices, easiest first

Names are imported on first use (PEP 562), so ``from scoring.errors import UserError`` in the
command line does not load pandas and pyarrow.
"""

import importlib

_EXPORTS = {
    "Alignment": "scoring.ids",
    "MemberRecord": "scoring.records",
    "Record": "scoring.records",
    "Recorder": "scoring.recorder",
    "SCORE_DIRECTIONS": "scoring.scores",
    "Scores": "scoring.scores",
    "UserError": "scoring.errors",
    "agreement": "scoring.agreement",
    "checkpoint_summary": "scoring.summary",
    "content_hash": "scoring.ids",
    "content_hashes": "scoring.ids",
    "load_record": "scoring.records",
    "read_run_info": "scoring.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return module if module.__name__ == f"scoring.{name}" else getattr(module, name)


def __dir__() -> list[str]:
    return __all__
