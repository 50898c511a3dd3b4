"""Every experiment config in ``experiments/`` loads into its stage's config class and is valid.

The configs only run on a GPU with network access, so a misspelt key, an unknown architecture or
dataset, out-of-range pacing parameters, or a curriculum run pointing at a score run that no
config produces would otherwise surface hours into an experiment. Nothing here loads a network
dataset or builds a model; the file name's prefix (``score_``, ``train_``, ``stats_``) names the
stage, i.e. the ``curriculum`` subcommand the file is for.
"""

from functools import cache
from pathlib import Path

import pytest

from curriculum.config.options import build_config
from curriculum.config.stages import SELF_TAUGHT, ScoreConfig, StatsConfig, TrainConfig
from curriculum.data.datasets import list_datasets
from curriculum.models.architectures import check_arch
from curriculum.pacing import make_pacing
from scoring.scores import SCORE_DIRECTIONS

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STAGES = {"score": ScoreConfig, "train": TrainConfig, "stats": StatsConfig}
FILES = sorted(EXPERIMENTS.glob("*.yaml"))
NAMED_DATASETS = {name for name, _ in list_datasets() if "<" not in name}
DATASET_PREFIXES = ("hf:", "torchvision:", "folder:")  # the patterns of list_datasets()


def load(path: Path):
    return build_config(STAGES[path.name.split("_", 1)[0]], path)


@cache
def score_runs() -> dict[str, ScoreConfig]:
    """Score configs by their run directory."""
    return {c.out: c for c in (load(p) for p in FILES if p.name.startswith("score_"))}


def same_data(a, b) -> bool:
    """Whether two configs load the same dataset (the noise seed only matters with label noise)."""
    return (a.dataset, a.label_noise, a.seed if a.label_noise else 0) == (
        b.dataset,
        b.label_noise,
        b.seed if b.label_noise else 0,
    )


def test_experiments_exist():
    assert {p.name.split("_", 1)[0] for p in FILES} >= {"score", "train"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_config_is_valid(path):
    stage = path.name.split("_", 1)[0]
    assert stage in STAGES, f"name {path.name} with a stage prefix: {', '.join(p + '_' for p in STAGES)}"
    text = path.read_text()
    assert text.startswith("#"), "start with a comment header: paper, figure, what it shows, our choices"
    assert f"--config experiments/{path.name}" in text, "the header should say how to run it"
    config = load(path)  # build_config validates every value
    name = config.dataset.split("+", 1)[0]  # suffixes (+part0of6, +noise0.2) apply to every name
    assert name in NAMED_DATASETS or (name.startswith(DATASET_PREFIXES) and name.partition(":")[2]), name
    if hasattr(config, "arch"):
        assert config.arch != "auto", "name the paper's architecture rather than 'auto'"
        check_arch(config.arch)


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith("score_")], ids=lambda p: p.name)
def test_score_config_has_its_own_run_directory(path):
    config = load(path)
    assert config.out, "set out, so that runs of one dataset in different settings do not collide"
    assert score_runs()[config.out] == config, f"another score config also writes {config.out}"


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith("train_")], ids=lambda p: p.name)
def test_train_config_pacing_and_order_source(path):
    config = load(path)
    # Parameter ranges do not depend on the dataset size, so a CIFAR-sized M stands in for it.
    make_pacing(
        config.pacing,
        num_examples=50_000,
        batch_size=config.batch_size,
        total_steps=config.steps or 1,
        **config.pacing_params(),
    )
    if config.scores_file or config.by == SELF_TAUGHT:
        return
    assert SCORE_DIRECTIONS.get(config.by), f"--by {config.by} is not a score with an easier direction"
    source = score_runs().get(config.scores)
    assert source is not None, f"no score config in experiments/ writes {config.scores}"
    assert same_data(source, config), f"{config.scores} scores another dataset (or label noise) than {config.dataset}"


@pytest.mark.parametrize("path", [p for p in FILES if p.name.startswith("stats_")], ids=lambda p: p.name)
def test_stats_config_reads_a_score_run_of_its_dataset(path):
    config = load(path)
    source = score_runs().get(config.run)
    assert source is not None, f"no score config in experiments/ writes {config.run}"
    assert same_data(source, config), f"{config.run} scores another dataset (or label noise) than {config.dataset}"
