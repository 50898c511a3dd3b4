"""Everything that trains: datasets, models, the ensemble (score) stage, pacing, orderings, the
curriculum sampler and stage. Each CLI command is one function here:

    from curriculum import ScoreConfig, score, CurriculumConfig, curriculum_train
    run_dir = score(ScoreConfig(dataset="digits", members=10))
    results = curriculum_train(CurriculumConfig(dataset="digits", pacing="exp"))

Names are imported on first use (PEP 562): ``curriculum --help`` and ``from curriculum import
make_pacing`` do not pay for torch.
"""

from scoring.lazy import lazy_exports

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

__getattr__, __dir__, __all__ = lazy_exports("curriculum", _EXPORTS)
