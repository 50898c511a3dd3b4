"""Everything that trains: datasets, models, the ensemble (score) stage, pacing, orderings, the
curriculum sampler and stage. Each CLI command is one function here:

    from curriculum import ScoreConfig, score, CurriculumConfig, curriculum_train
    run_dir = score(ScoreConfig(dataset="digits", members=10))
    results = curriculum_train(CurriculumConfig(dataset="digits", pacing="exp"))
"""

from curriculum.data import Dataset, Split, list_datasets, load_dataset
from curriculum.stages.score import ScoreConfig, score
from curriculum.stages.stats import StatsConfig, image_statistics
from curriculum.models import auto_arch, build_model, list_architectures
from scoring.formats import load_external_scores
from scoring.ordering import ORDERS, order_examples
from curriculum.pacing import PACINGS, Pacing, make_pacing
from curriculum.sampler import CurriculumBatchSampler
from curriculum.stages.train import CurriculumConfig, curriculum_train

__all__ = [
    "ORDERS",
    "PACINGS",
    "CurriculumBatchSampler",
    "CurriculumConfig",
    "Dataset",
    "Pacing",
    "ScoreConfig",
    "Split",
    "StatsConfig",
    "auto_arch",
    "build_model",
    "curriculum_train",
    "image_statistics",
    "list_architectures",
    "list_datasets",
    "load_dataset",
    "load_external_scores",
    "make_pacing",
    "order_examples",
    "score",
]
