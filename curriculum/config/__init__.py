"""Settings: the option mechanism, every stage's declared settings, and the per-dataset recipes.

from curriculum.config import ScoreConfig, build_config
"""

from scoring.lazy import lazy_exports

_EXPORTS = {
    "CompareConfig": "curriculum.config.stages",
    "CurriculumConfig": "curriculum.config.stages",
    "TrainConfig": "curriculum.config.stages",
    "LearnersConfig": "curriculum.config.stages",
    "ScoreConfig": "curriculum.config.stages",
    "StatsConfig": "curriculum.config.stages",
    "TrainingConfig": "curriculum.config.stages",
    "build_config": "curriculum.config.options",
    "to_dict": "curriculum.config.options",
    "Interval": "curriculum.config.constraints",
    "Options": "curriculum.config.constraints",
    "constraints": "curriculum.config.constraints",
    "options": "curriculum.config.options",
    "recipes": "curriculum.config.recipes",
    "stages": "curriculum.config.stages",
}

__getattr__, __dir__, __all__ = lazy_exports("curriculum.config", _EXPORTS)
