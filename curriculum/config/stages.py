"""Every stage's settings: one dataclass per command whose fields are exactly its flags.

Each field is declared once with :func:`~curriculum.config.options.option` (type, default, help,
range or choices); the mechanism that reads, checks and turns them into a command line is
:mod:`curriculum.config.options`. Torch-free, so ``--help`` and a refused value cost no torch import.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculum.config.constraints import SEED_RANGE
from curriculum.config.options import Config, build_config, option, to_dict
from curriculum.config.recipes import recipe_help, with_recipe
from curriculum.models.architectures import auto_arch, check_arch
from curriculum.pacing import OPEN_BY, PACINGS, check_pacing_params
from scoring.errors import UserError
from scoring.ordering import ORDERS
from scoring.stream import DEFAULT_MEMORY_MB

if typing.TYPE_CHECKING:
    from curriculum.data.datasets import Dataset

__all__ = [
    "CompareConfig",
    "LearnersConfig",
    "ScoreConfig",
    "StatsConfig",
    "TrainConfig",
    "TrainingConfig",
    "build_config",
    "to_dict",
]

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("auto", "no", "bf16", "fp16")
STACKING = ("auto", "on", "off")
TRAIN_RECORDS = ("eval", "online")
SELF_TAUGHT = "self-taught"


# --- the stages' configs ------------------------------------------------------------------------


def data_dir_option() -> Any:
    """``--data-dir``, declared alike by every stage that loads a dataset."""
    return option(
        None,
        "folder holding the original files of mnist, fashion-mnist, cifar10, cifar100 or "
        "svhn (idx, python pickles or .tar.gz, .mat), read instead of the Hugging Face hub; ids "
        "and classes are the hub's",
        default_help="the hub",
        setting=False,
    )  # not a setting: the data is recorded by its fingerprint


@dataclass
class TrainingConfig(Config):
    """Settings every training stage shares (each is also a CLI flag)."""

    dataset: str = option("digits", "dataset name (`curriculum datasets` lists them)")
    data_dir: str | None = data_dir_option()
    arch: str = option("auto", "architecture, or 'auto' to pick one for the data; see `curriculum architectures`")
    batch_size: int = option(100, "mini-batch size", range="[1, inf)")
    optimizer: str = option("sgd", "optimizer", choices=OPTIMIZERS)
    lr: float | None = option(
        None, "initial learning rate", range="(0, 10]", default_help=f"the dataset's recipe, {recipe_help('lr')}"
    )
    momentum: float | None = option(
        None, "SGD momentum", range="[0, 1)", default_help=f"the dataset's recipe, {recipe_help('momentum')}"
    )
    weight_decay: float | None = option(
        None, "L2 weight decay", range="[0, 1)", default_help=f"the dataset's recipe, {recipe_help('weight_decay')}"
    )
    lr_schedule: str | None = option(
        None,
        "learning-rate schedule",
        choices=LR_SCHEDULES,
        default_help=f"the dataset's recipe, {recipe_help('lr_schedule')}",
    )
    lr_decay: float = option(1.8, "'step' schedule: divide the LR by this factor at each decay", range="[1, inf)")
    min_lr: float = option(0.0, "floor of the learning rate, at most --lr", range="[0, 10]")
    precision: str = option(
        "auto", "mixed precision: auto is bf16 on a GPU that supports it, else no (float32)", choices=PRECISIONS
    )
    augment: bool = option(False, "random flip and crop on the device (off in the source papers)")
    dropout: bool = option(True, "keep the architecture's dropout (Hacohen et al. 2020 turn it off for random labels)")
    label_noise: float = option(0.0, "fraction of train labels replaced at random (1 = random labels)", range="[0, 1]")
    seed: int = option(0, "base seed; each model's seed is derived from it", range=SEED_RANGE)
    stack: str = option(
        "auto",
        "train the members of one architecture as one stacked model: auto (on a GPU; on a "
        "CPU a loop measured faster), on, or off (one by one)",
        choices=STACKING,
    )
    max_stack: int = option(
        32,
        "at most this many members in one stacked model (bounds device memory); more train in successive groups",
        range="[1, inf)",
    )
    compile: bool = option(False, "torch.compile the forward passes (pays off on long GPU runs)")
    cpu: bool = option(False, "train on the CPU even when a GPU is present", setting=False)
    quiet: bool = option(False, "no progress bar or summary", setting=False)

    def complete(self) -> TrainingConfig:
        """Fields left at None take the dataset's recipe, else the generic default."""
        return with_recipe(self)

    def validate(self) -> None:
        super().validate()
        if self.min_lr > self.lr:
            raise UserError(f"--min-lr must be at most --lr ({self.lr:g}), got {self.min_lr:g}.")
        if self.arch != "auto":
            check_arch(self.arch)

    def resolved_arch(self, dataset: Dataset) -> str:
        """The architecture to build: ``--arch``, or the one ``auto`` picks for the data."""
        h, w, c = dataset.image_shape
        return auto_arch((h, w), c, len(dataset.train.labels)) if self.arch == "auto" else check_arch(self.arch)


@dataclass
class ScoreConfig(TrainingConfig):
    """Flags of ``curriculum score`` (see ``curriculum score --help``)."""

    members: int | None = option(
        None, "ensemble size", range="[2, inf)", default_help=f"the dataset's recipe, {recipe_help('members')}"
    )
    epochs: float | None = option(
        None,
        "training epochs per member",
        range="(0, 10000]",
        default_help=f"the dataset's recipe, {recipe_help('epochs')}",
    )
    eval_every: float = option(
        0.25, "checkpoint interval in epochs, fractions allowed; checkpoint 0 is the initialisation", range="(0, 10000]"
    )
    lr_decay_epochs: float = option(20, "'step' schedule: epochs between LR decays", range="(0, 10000]")
    train_record: str = option(
        "eval",
        "train-set predictions from a separate eval pass, or from the training "
        "pass itself as in Pliushch et al.'s code",
        choices=TRAIN_RECORDS,
    )
    record_probs: bool = option(
        False,
        "also keep every class probability per checkpoint (float16 [E, M, K] per member "
        "and split; the size is printed first)",
    )
    probe: str | None = option(
        None,
        "out-of-sample probe: after training every member also labels these images ('noise' "
        "for random pixels, or a dataset name whose test split is resized to this data); the report "
        "gives their consensus beside a shuffled null (Hacohen et al. 2020, Fig. 5)",
    )
    out: str | None = option(None, "run directory", default_help="runs/<dataset>", writable_dir=True, setting=False)
    score_memory: float = option(
        DEFAULT_MEMORY_MB,
        "MiB the score pass may hold: it reads the record once, "
        "in blocks that fit (the process itself adds about 100 MB)",
        range="[1, inf)",
        setting=False,
    )
    processes: str = option(
        "auto",
        "on the CPU, the command starts this many processes of itself (one thread each) "
        "and spreads the members over them (at most one per member): auto is one per usable core, "
        "fewer where as few finish as soon; "
        "under torchrun / accelerate launch, or on a GPU, the launcher decides (1 or auto)",
        setting=False,
    )

    def validate(self) -> None:
        super().validate()
        if self.processes != "auto":
            if not (self.processes.isdecimal() and int(self.processes) >= 1):
                raise UserError(f"--processes must be auto or a whole number >= 1, got {self.processes}.")
            self.processes = str(int(self.processes))


@dataclass
class StatsConfig(Config):
    """Flags of ``curriculum stats``."""

    dataset: str = option("digits", "dataset name (`curriculum datasets` lists them)")
    data_dir: str | None = data_dir_option()
    run: str | None = option(
        None, "score run directory", default_help="runs/<dataset>", writable_dir=True, setting=False
    )
    label_noise: float = option(0.0, "as given to `curriculum score`", range="[0, 1]")
    seed: int = option(0, "as given to `curriculum score`", range=SEED_RANGE)
    workers: int | None = option(
        None, "processes for the statistics", range="[1, inf)", default_help="every core", setting=False
    )
    quiet: bool = option(False, "print nothing", setting=False)


def pacing_option(param: str, help: str, **extra: Any) -> Any:
    """A pacing parameter: its families, range and default come from :mod:`curriculum.pacing`;
    None leaves the family's default (a family's default of None is derived from the step budget
    when the pacing is built)."""
    families = [name for name, cls in PACINGS.items() if param in cls.params]
    defaults = {name: pacing_default(name, param) for name in families}
    if len(set(defaults.values())) == 1:
        default = next(iter(defaults.values()))
    else:
        default = ", ".join(f"{name} {value}" for name, value in defaults.items())
    return option(None, f"{'/'.join(families)}: {help}", default_help=default, **extra)


def pacing_default(family: str, param: str) -> str:
    """The default of pacing ``family``'s ``param`` as the help shows it."""
    value = inspect.signature(PACINGS[family].__init__).parameters[param].default
    return f"derived: all data open by {OPEN_BY:.0%} of the budget" if value is None else f"{value:g}"


@dataclass
class TrainConfig(TrainingConfig):
    """Flags of ``curriculum train`` (see ``curriculum train --help``)."""

    pacing: str = option("exp", "pacing family", choices=tuple(PACINGS))
    start: float | None = pacing_option("start", "starting fraction of the data")
    inc: float | None = pacing_option("inc", "growth factor per stage")
    stage_length: int | None = pacing_option("stage_length", "steps per stage", renamed_from="step")
    stage_lengths: list[int] | None = option(
        None,
        "varied-exp: comma-separated stage lengths in steps",
        range="[1, inf)",
        default_help="as --stage-length",
        renamed_from="step_lengths",
    )
    a: float | None = pacing_option("a", "fraction of the budget at which all data is open")
    b: float | None = pacing_option("b", "fraction of the data open at step 0")
    orders: list[str] = option(["curriculum", "random", "anti", "none"], "comma-separated orders", choices=ORDERS)
    seeds: int = option(3, "seeds per order", range="[1, inf)")
    steps: int | None = option(None, "step budget", range="[1, inf)", default_help="20 epochs' worth of batches")
    eval_every_steps: int | None = option(
        None, "steps between test evaluations", range="[1, inf)", default_help="budget / 20", renamed_from="eval_every"
    )
    lr_decay_steps: int | None = option(
        None, "'step' schedule: steps between LR decays", range="[1, inf)", default_help="budget / 4"
    )
    scores: str | None = option(None, "score run to order by", default_help="runs/<dataset>", setting=False)
    by: str = option(
        "accessibility", f"score column to order by, its direction from the scores' metadata, or '{SELF_TAUGHT}'"
    )
    scores_file: str | None = option(
        None,
        "order by an external per-example score file instead: a `curriculum "
        "export` file, a CSV/parquet 'score' column (or --by NAME), C-score .npz, "
        "forgetting .pkl, cartography td_metrics.jsonl or dynamics folder, cleanlab .npz, "
        "a Hugging Face save_to_disk folder; rows matched by id, file name or position, "
        "as the printed note says",
        setting=False,
    )
    scores_direction: str | None = option(
        None,
        "which --scores-file values are easier, when the file does not say (never assumed)",
        choices=("higher", "lower"),
    )
    balanced: bool = option(True, "class-balanced interleaving of the order")
    target: float | None = option(
        None, "accuracy for 'steps to target'", range="(0, 1]", default_help="95% of the none control's final accuracy"
    )
    out: str | None = option(
        None, "output directory", default_help="<score run>/curriculum/<pacing>", writable_dir=True, setting=False
    )

    def pacing_params(self) -> dict:
        """The pacing parameters given, by the pacing family's names."""
        params = {name: getattr(self, name) for name in ("start", "inc", "stage_length", "stage_lengths", "a", "b")}
        return {k: v for k, v in params.items() if v is not None}

    def validate(self) -> None:
        super().validate()
        self.orders = list(dict.fromkeys(self.orders))  # each order trained once, in the given order
        check_pacing_params(self.pacing, self.pacing_params(), label=lambda name: "--" + name.replace("_", "-"))


#: The ``curriculum train`` config's former name.
CurriculumConfig = TrainConfig


@dataclass
class CompareConfig(Config):
    """Arguments of ``curriculum compare``."""

    runs: list[str] = option([], "finished score runs to compare (two or more)", positional="RUN", setting=False)
    tol: float = option(
        0.01, "match checkpoints whose mean errors differ by at most this (Hacohen et al. 2020: 1%)", range="[0, 1)"
    )
    threshold: float = option(
        0.9, "an example is easy above this consistency (Hacohen et al. 2020, Fig. 7b)", range="[0, 1)"
    )
    out: str | None = option(
        None, "output directory", default_help="<first run>/compare", writable_dir=True, setting=False
    )
    quiet: bool = option(False, "print nothing", setting=False)

    def validate(self) -> None:
        super().validate()
        runs = self.runs
        if len(runs) < 2:
            raise UserError(f"Compare needs at least two score runs, got {len(runs)}; pass RUN_A RUN_B [...].")
        if len({Path(r).resolve() for r in runs}) < len(runs):
            raise UserError("A run is named twice; pass each score run once.")


LEARNERS = ("svm", "knn", "random-forest", "adaboost", "logistic", "decision-tree", "naive-bayes")


@dataclass
class LearnersConfig(Config):
    """Flags of ``curriculum learners``."""

    dataset: str = option("digits", "dataset name (`curriculum datasets` lists them)")
    data_dir: str | None = data_dir_option()
    learners: list[str] = option(
        ["svm", "knn", "random-forest", "adaboost", "logistic"],
        "learners, one member each (at least two)",
        choices=LEARNERS,
    )
    fractions: list[float] = option(
        [0.05, 0.1, 0.2, 0.4, 0.7, 1.0],
        "increasing fractions of the train set, one checkpoint each (checkpoint 0 is the class prior)",
        range="(0, 1]",
    )
    label_noise: float = option(0.0, "fraction of train labels replaced at random (1 = random labels)", range="[0, 1]")
    seed: int = option(0, "seed of the permutation that orders the train set, and of the learners", range=SEED_RANGE)
    out: str | None = option(
        None, "run directory, new or empty", default_help="runs/<dataset>-learners", writable_dir=True, setting=False
    )
    quiet: bool = option(False, "print nothing", setting=False)

    def validate(self) -> None:
        super().validate()
        self.learners = list(dict.fromkeys(self.learners))
        if len(self.learners) < 2:
            raise UserError(f"--learners needs at least two distinct learners among {', '.join(LEARNERS)}.")
        if self.fractions != sorted(set(self.fractions)):
            shown = ",".join(f"{v:g}" for v in self.fractions)
            raise UserError(
                f"--fractions must be increasing fractions of the train set in (0, 1], e.g. 0.1,0.5,1; got {shown}."
            )
