"""Everything that trains: datasets, models, the ensemble (score) stage, pacing, orderings, the
curriculum sampler and stage. Each CLI command is one function here:

    from curriculum import ScoreConfig, score, CurriculumConfig, curriculum_train
    run_dir = score(ScoreConfig(dataset="digits", members=10))
    results = curriculum_train(CurriculumConfig(dataset="digits", pacing="exp"))

Names are imported on first use (PEP 562): ``curriculum --help`` and ``from curriculum import
make_pacing`` do not pay for torch.
"""

import importlib

_EXPORTS = {
    "ORDERS": "scoring.ordering",
    "PACINGS": "curriculum.pacing",
    "CurriculumBatchSampler": "curriculum.sampler",
    "CurriculumConfig": "curriculum.config",
    "Dataset": "curriculum.data",
    "Pacing": "curriculum.pacing",
    "ScoreConfig": "curriculum.config",
    "Split": "curriculum.data",
    "StatsConfig": "curriculum.config",
    "auto_arch": "curriculum.architectures",
    "build_model": "curriculum.models",
    "curriculum_train": "curriculum.stages.train",
    "image_statistics": "curriculum.stages.stats",
    "list_architectures": "curriculum.architectures",
    "list_datasets": "curriculum.data",
    "load_dataset": "curriculum.data",
    "load_external_scores": "scoring.formats",
    "make_pacing": "curriculum.pacing",
    "order_examples": "scoring.ordering",
    "score": "curriculum.stages.score",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'curriculum' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
