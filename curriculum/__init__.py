"""Everything that trains: datasets, models, the ensemble (score) stage, pacing, orderings, the
curriculum sampler and stage. Each CLI command is one function here:

    from curriculum import ScoreConfig, score, TrainConfig, train
    run_dir = score(ScoreConfig(dataset="digits", members=10))
    results = train(TrainConfig(dataset="digits", pacing="exp"))

Names are imported on first use (PEP 562): ``curriculum --help`` and ``from curriculum import
make_pacing`` do not pay for torch.
"""

from scoring.lazy import lazy_exports

_EXPORTS = {
    "ORDERS": "scoring.ordering",
    "PACINGS": "curriculum.pacing",
    "CurriculumBatchSampler": "curriculum.sampler",
    "CurriculumConfig": "curriculum.config.stages",
    "TrainConfig": "curriculum.config.stages",
    "Dataset": "curriculum.data.datasets",
    "Pacing": "curriculum.pacing",
    "ScoreConfig": "curriculum.config.stages",
    "Split": "curriculum.data.datasets",
    "StatsConfig": "curriculum.config.stages",
    "auto_arch": "curriculum.models.architectures",
    "build_model": "curriculum.models.builders",
    "curriculum_train": "curriculum.stages.train",
    "train": "curriculum.stages.train",
    "image_statistics": "curriculum.stages.stats",
    "list_architectures": "curriculum.models.architectures",
    "list_datasets": "curriculum.data.datasets",
    "load_dataset": "curriculum.data.datasets",
    "load_external_scores": "scoring.formats",
    "make_pacing": "curriculum.pacing",
    "order_examples": "scoring.ordering",
    "score": "curriculum.stages.score",
}

__getattr__, __dir__, __all__ = lazy_exports("curriculum", _EXPORTS)
