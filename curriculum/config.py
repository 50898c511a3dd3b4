"""Configuration: one dataclass per stage whose fields are exactly its flags, and the one mechanism
that reads, checks and turns them into a command line.

A field says everything about its flag once (:func:`option`): name, type (the annotation),
default, help, range and choices. From that, :func:`add_arguments` builds the ``argparse`` flags,
:func:`check_value` converts and checks one value whether it comes from the command line, a YAML
file or Python, and ``validate()`` checks a whole config (plus the rules that tie fields
together) before anything is written. Precedence: dataclass defaults < YAML file (``--config``) <
flags. Unknown keys in a file are an error rather than silently ignored, because a misspelt key
would otherwise run a different experiment than the one written.

Torch-free (so is everything it imports): the command line builds its parser and refuses a bad
value without paying for torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from curriculum.architectures import auto_arch, check_arch
from scoring.ordering import ORDERS
from curriculum.pacing import OPEN_BY, PACINGS, make_pacing
from curriculum.recipes import recipe_help, with_recipe
from scoring.errors import UserError
from scoring.stream import DEFAULT_MEMORY_MB

if typing.TYPE_CHECKING:
    from curriculum.data import Dataset

C = TypeVar("C")

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("auto", "no", "bf16", "fp16")
STACKING = ("auto", "on", "off")
TRAIN_RECORDS = ("eval", "online")
SELF_TAUGHT = "self-taught"
SEED_RANGE = "[0, 4294967295]"  # what every RNG we seed accepts


# --- one field, one flag ------------------------------------------------------------------------

def option(default: Any, help: str, *, range: str | None = None, choices: tuple[str, ...] | None = None,
           comma: bool = False, default_help: str | None = None, writable_dir: bool = False,
           positional: str | None = None) -> Any:
    """A config field with everything its flag needs.

    ``range`` is an interval such as ``"(0, 10]"`` or ``"[2, inf)"``; ``choices`` the accepted
    names (with ``comma``, of each item of a comma-separated list, which a YAML list may also
    give); ``default_help`` describes a default of None (one derived at run time);
    ``writable_dir`` checks that the path can be created and written before any work starts;
    ``positional`` (with ``comma``) makes the flag one or more positional arguments of that
    metavar, as ``curriculum compare RUN_A RUN_B`` takes its runs.
    """
    metadata = {"help": help, "range": range, "choices": choices, "comma": comma,
                "default_help": default_help, "writable_dir": writable_dir, "positional": positional}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Interval:
    """A range written as in mathematics (``"(0, 10]"``), so the field, the help and the error
    message all show the same text."""

    lo: float
    hi: float
    lo_open: bool
    hi_open: bool

    @classmethod
    @functools.cache
    def parse(cls, text: str) -> Interval:
        lo, hi = (float(part) for part in text[1:-1].split(","))
        return cls(lo, hi, text[0] == "(", text[-1] == ")")

    def __contains__(self, x: float) -> bool:
        return (x > self.lo if self.lo_open else x >= self.lo) and (x < self.hi if self.hi_open else x <= self.hi)

    def __str__(self) -> str:
        lo, hi = (int(x) if x.is_integer() else x for x in (self.lo, self.hi))
        if math.isinf(self.hi):
            return f"{'>' if self.lo_open else '>='} {lo}"
        return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"


@dataclass(frozen=True)
class Spec:
    """A field's flag: its base type (bool, int, float or str), whether None is allowed, and metadata."""

    field: dataclasses.Field
    kind: type
    optional: bool

    @property
    def flag(self) -> str:
        return "--" + self.field.name.replace("_", "-")

    def expected(self) -> str:
        meta = self.field.metadata
        if self.kind is bool:
            return "true or false"
        if meta["choices"]:
            names = ", ".join(meta["choices"])
            return f"comma-separated names among {names}" if meta["comma"] else f"one of {names}"
        noun = {int: "a whole number", float: "a finite number", str: "a string"}[self.kind]
        return f"{noun} {Interval.parse(meta['range'])}" if meta["range"] else noun


@functools.cache
def specs(cls: type) -> dict[str, Spec]:
    """Every field of a config dataclass, by name, with its type resolved from the annotation."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        args = typing.get_args(hints[f.name])
        kind = next((a for a in args if a is not type(None)), hints[f.name])
        out[f.name] = Spec(f, kind, type(None) in args)
    return out


def _whole(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    x = float(value)
    if not x.is_integer():
        raise ValueError(value)
    return int(x)


def _convert(spec: Spec, value: Any) -> Any:
    """``value`` as the field's type, or ValueError. Numbers may come as strings (flags, and YAML
    1.1 reads ``5e-4`` as one); whole floats count as ints; bools are never numbers."""
    meta = spec.field.metadata
    if value is None and spec.optional:
        return None
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if spec.kind is str:
        if meta["comma"] and isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(value)
        items = [v.strip() for v in value.split(",") if v.strip()] if meta["comma"] else [value]
        if meta["choices"] and (not items or any(v not in meta["choices"] for v in items)):
            raise ValueError(value)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    number = _whole(value) if spec.kind is int else float(value)
    if not math.isfinite(number) or (meta["range"] and number not in Interval.parse(meta["range"])):
        raise ValueError(value)
    return number


def check_value(cls: type, name: str, value: Any, label: str | None = None) -> Any:
    """``value`` converted to field ``name``'s type and checked against its range and choices;
    otherwise a UserError naming ``label`` (default: the flag) and what is expected."""
    spec = specs(cls)[name]
    label = label or spec.flag
    try:
        value = _convert(spec, value)
    except (ValueError, OverflowError):
        shown = value if isinstance(value, str) and label.startswith("--") else repr(value)
        raise UserError(f"{label} must be {spec.expected()}, got {shown}.") from None
    if spec.field.metadata["writable_dir"] and value is not None:
        check_output_dir(value, label)
    return value


def check_output_dir(path: str | Path, label: str) -> None:
    """Refuse, before any work, an output directory that is a file or cannot be written (tried
    with an unnamed temporary file in the nearest existing directory, so root and read-only
    mounts are judged correctly and nothing visible is left)."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{label} {path}: {existing} is a file, not a directory; pass a directory path.")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise UserError(f"{label} {path}: cannot write into {existing} ({err.strerror}); "
                        "pass a directory you can write to, or fix its permissions.") from None


class Config:
    """Base of every stage's config dataclass."""

    def validate(self) -> None:
        """Convert and check every field against its metadata (subclasses add the rules that
        tie fields together). Called by every stage before it writes anything."""
        for name in specs(type(self)):
            setattr(self, name, check_value(type(self), name, getattr(self, name)))


# --- the stages' configs ------------------------------------------------------------------------

@dataclass
class TrainingConfig(Config):
    """Settings every training stage shares (each is also a CLI flag)."""

    dataset: str = option("digits", "dataset name (`curriculum datasets` lists them)")
    arch: str = option("auto", "architecture, or 'auto' to pick one for the data; see `curriculum architectures`")
    batch_size: int = option(100, "mini-batch size", range="[1, inf)")
    optimizer: str = option("sgd", "optimizer", choices=OPTIMIZERS)
    lr: float | None = option(None, "initial learning rate", range="(0, 10]",
                              default_help=f"the dataset's recipe, {recipe_help('lr')}")
    momentum: float | None = option(None, "SGD momentum", range="[0, 1)",
                                    default_help=f"the dataset's recipe, {recipe_help('momentum')}")
    weight_decay: float | None = option(None, "L2 weight decay", range="[0, 1)",
                                        default_help=f"the dataset's recipe, {recipe_help('weight_decay')}")
    lr_schedule: str | None = option(None, "learning-rate schedule", choices=LR_SCHEDULES,
                                     default_help=f"the dataset's recipe, {recipe_help('lr_schedule')}")
    lr_decay: float = option(1.8, "'step' schedule: divide the LR by this factor at each decay", range="[1, inf)")
    min_lr: float = option(0.0, "floor of the learning rate, at most --lr", range="[0, 10]")
    precision: str = option("auto", "mixed precision: auto is bf16 on a GPU that supports it, else no (float32)",
                            choices=PRECISIONS)
    augment: bool = option(False, "random flip and crop on the device (off in the seed papers)")
    dropout: bool = option(True, "keep the architecture's dropout (seed 000 turns it off for random labels)")
    label_noise: float = option(0.0, "fraction of train labels replaced at random (1 = random labels)", range="[0, 1]")
    seed: int = option(0, "base seed; each model's seed is derived from it", range=SEED_RANGE)
    stack: str = option("auto", "train the members of one architecture as one stacked model: auto (on a GPU; on a "
                        "CPU a loop measured faster), on, or off (one by one)", choices=STACKING)
    max_stack: int = option(32, "at most this many members in one stacked model (bounds device memory); more "
                            "train in successive groups", range="[1, inf)")
    compile: bool = option(False, "torch.compile the forward passes (pays off on long GPU runs)")
    cpu: bool = option(False, "train on the CPU even when a GPU is present")
    quiet: bool = option(False, "no progress bar or summary")

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

    members: int | None = option(None, "ensemble size", range="[2, inf)",
                                 default_help=f"the dataset's recipe, {recipe_help('members')}")
    epochs: float | None = option(None, "training epochs per member", range="(0, 10000]",
                                  default_help=f"the dataset's recipe, {recipe_help('epochs')}")
    eval_every: float = option(0.25, "checkpoint interval in epochs, fractions allowed; checkpoint 0 is the "
                               "initialisation", range="(0, 10000]")
    lr_decay_epochs: float = option(20, "'step' schedule: epochs between LR decays", range="(0, 10000]")
    train_record: str = option("eval", "train-set predictions from a separate eval pass, or from the training "
                               "pass itself as in Pliushch et al.'s code", choices=TRAIN_RECORDS)
    record_probs: bool = option(False, "also keep every class probability per checkpoint (float16 [E, M, K] per member "
                                "and split; the size is printed first)")
    probe: str | None = option(None, "out-of-sample probe: after training every member also labels these images ('noise' "
                               "for random pixels, or a dataset name whose test split is resized to this data); the report "
                               "gives their consensus beside a shuffled null (seed 000, Fig. 5)")
    out: str | None = option(None, "run directory", default_help="runs/<dataset>", writable_dir=True)
    score_memory: float = option(DEFAULT_MEMORY_MB, "MiB the score pass may hold: it reads the record once, "
                                 "in blocks that fit (the process itself adds about 100 MB)", range="[1, inf)")
    processes: str = option("auto", "on the CPU, the command starts this many processes of itself (one thread each) "
                            "and spreads the members over them: auto is one per usable core, at most one per member; "
                            "under torchrun / accelerate launch, or on a GPU, the launcher decides (1 or auto)")

    def validate(self) -> None:
        super().validate()
        if self.processes != "auto":
            if not (self.processes.isdecimal() and int(self.processes) >= 1):
                raise UserError(f"--processes must be auto or a whole number >= 1, got {self.processes}.")
            self.processes = str(int(self.processes))

    def record_settings(self) -> dict:
        """The settings that decide the record: a run directory holds one such setting only (the
        process count is not one: every process computes alike, see engine.make_accelerator)."""
        ignore = {"quiet", "out", "cpu", "processes", "score_memory"}
        return {k: v for k, v in to_dict(self).items() if k not in ignore}


@dataclass
class StatsConfig(Config):
    """Flags of ``curriculum stats``."""

    dataset: str = option("digits", "dataset name (`curriculum datasets` lists them)")
    run: str | None = option(None, "score run directory", default_help="runs/<dataset>", writable_dir=True)
    label_noise: float = option(0.0, "as given to `curriculum score`", range="[0, 1]")
    seed: int = option(0, "as given to `curriculum score`", range=SEED_RANGE)
    workers: int | None = option(None, "processes for the statistics", range="[1, inf)", default_help="every core")
    quiet: bool = option(False, "print nothing")


def pacing_option(param: str, help: str) -> Any:
    """A pacing parameter: its families and default come from :mod:`curriculum.pacing`, where
    the family checks its range; None leaves the family's default (a family's default of None
    is derived from the step budget when the pacing is built)."""
    families = [name for name, cls in PACINGS.items() if param in cls.params]
    defaults = {name: pacing_default(name, param) for name in families}
    if len(set(defaults.values())) == 1:
        default = next(iter(defaults.values()))
    else:
        default = ", ".join(f"{name} {value}" for name, value in defaults.items())
    return option(None, f"{'/'.join(families)}: {help}", default_help=default)


def pacing_default(family: str, param: str) -> str:
    """The default of pacing ``family``'s ``param`` as the help shows it."""
    value = inspect.signature(PACINGS[family].__init__).parameters[param].default
    return f"derived: all data open by {OPEN_BY:.0%} of the budget" if value is None else f"{value:g}"


@dataclass
class CurriculumConfig(TrainingConfig):
    """Flags of ``curriculum train`` (see ``curriculum train --help``)."""

    pacing: str = option("exp", "pacing family", choices=tuple(PACINGS))
    start: float | None = pacing_option("start", "starting fraction of the data")
    inc: float | None = pacing_option("inc", "growth factor per stage")
    step: int | None = pacing_option("step", "steps per stage")
    step_lengths: str | None = option(None, "varied-exp: comma-separated stage lengths in steps", comma=True,
                                      default_help="as --step")
    a: float | None = pacing_option("a", "fraction of the budget at which all data is open")
    b: float | None = pacing_option("b", "fraction of the data open at step 0")
    orders: str = option("curriculum,random,anti,none", "comma-separated orders", choices=ORDERS, comma=True)
    seeds: int = option(3, "seeds per order", range="[1, inf)")
    steps: int | None = option(None, "step budget", range="[1, inf)", default_help="20 epochs' worth of batches")
    eval_every: int | None = option(None, "steps between test evaluations", range="[1, inf)", default_help="budget / 20")
    lr_decay_steps: int | None = option(None, "'step' schedule: steps between LR decays", range="[1, inf)",
                                        default_help="budget / 4")
    scores: str | None = option(None, "score run to order by", default_help="runs/<dataset>")
    by: str = option("accessibility", f"score column to order by, its direction from the scores' metadata, "
                     f"or '{SELF_TAUGHT}'")
    scores_file: str | None = option(None, "order by an external per-example score file instead: a `curriculum "
                                     "export` file, a CSV/parquet 'score' column (or --by NAME), C-score .npz, "
                                     "forgetting .pkl, cartography td_metrics.jsonl or dynamics folder, cleanlab .npz; "
                                     "rows matched by id when the file has ids")
    scores_direction: str | None = option(None, "which --scores-file values are easier, when the file does not say "
                                          "(never assumed)", choices=("higher", "lower"))
    balanced: bool = option(True, "class-balanced interleaving of the order")
    target: float | None = option(None, "accuracy for 'steps to target'", range="(0, 1]",
                                  default_help="95% of the none control's final accuracy")
    out: str | None = option(None, "output directory", default_help="<score run>/curriculum/<pacing>",
                             writable_dir=True)

    def order_list(self) -> list[str]:
        """The orders to train, each once, in the given order."""
        return list(dict.fromkeys(o.strip() for o in self.orders.split(",") if o.strip()))

    def pacing_params(self) -> dict:
        params = {"start": self.start, "inc": self.inc, "step": self.step, "a": self.a, "b": self.b}
        if self.step_lengths is not None:
            try:
                params["steps"] = [int(v) for v in self.step_lengths.split(",")]
            except ValueError:
                raise UserError(f"--step-lengths must be comma-separated whole numbers, got '{self.step_lengths}'.") from None
        return {k: v for k, v in params.items() if v is not None}

    def validate(self) -> None:
        super().validate()
        # The pacing family checks its own parameters; building it on a stand-in size does that now.
        make_pacing(self.pacing, num_examples=1, batch_size=1, total_steps=1, **self.pacing_params())


@dataclass
class CompareConfig(Config):
    """Arguments of ``curriculum compare``."""

    runs: str = option("", "finished score runs to compare (two or more)", comma=True, positional="RUN")
    tol: float = option(0.01, "match checkpoints whose mean errors differ by at most this (seed 000: 1%)", range="[0, 1)")
    threshold: float = option(0.9, "an example is easy above this consistency (seed 000, Fig. 7b)", range="[0, 1)")
    out: str | None = option(None, "output directory", default_help="<first run>/compare", writable_dir=True)
    quiet: bool = option(False, "print nothing")

    def run_list(self) -> list[str]:
        return [r.strip() for r in self.runs.split(",") if r.strip()]

    def validate(self) -> None:
        super().validate()
        runs = self.run_list()
        if len(runs) < 2:
            raise UserError(f"Compare needs at least two score runs, got {len(runs)}; pass RUN_A RUN_B [...].")
        if len({Path(r).resolve() for r in runs}) < len(runs):
            raise UserError("A run is named twice; pass each score run once.")


LEARNERS = ("svm", "knn", "random-forest", "adaboost", "logistic", "decision-tree", "naive-bayes")


@dataclass
class LearnersConfig(Config):
    """Flags of ``curriculum learners``."""

    dataset: str = option("digits", "dataset name (`curriculum datasets` lists them)")
    learners: str = option("svm,knn,random-forest,adaboost,logistic", "learners, one member each (at least two)",
                           choices=LEARNERS, comma=True)
    fractions: str = option("0.05,0.1,0.2,0.4,0.7,1", "increasing fractions of the train set, one checkpoint each "
                            "(checkpoint 0 is the class prior)", comma=True)
    label_noise: float = option(0.0, "fraction of train labels replaced at random (1 = random labels)", range="[0, 1]")
    seed: int = option(0, "seed of the permutation that orders the train set, and of the learners", range=SEED_RANGE)
    out: str | None = option(None, "run directory, new or empty", default_help="runs/<dataset>-learners", writable_dir=True)
    quiet: bool = option(False, "print nothing")

    def learner_list(self) -> list[str]:
        return list(dict.fromkeys(n.strip() for n in self.learners.split(",") if n.strip()))

    def fraction_list(self) -> list[float]:
        try:
            values = [float(v) for v in self.fractions.split(",")]
        except ValueError:
            values = []
        if not values or any(not 0 < v <= 1 for v in values) or values != sorted(set(values)):
            raise UserError(f"--fractions must be increasing fractions of the train set in (0, 1], e.g. 0.1,0.5,1; got '{self.fractions}'.")
        return values

    def validate(self) -> None:
        super().validate()
        if len(self.learner_list()) < 2:
            raise UserError(f"--learners needs at least two distinct learners among {', '.join(LEARNERS)}.")
        self.fraction_list()


# --- files, flags and dicts ---------------------------------------------------------------------

def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of flag names (dashes or underscores) to values."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"Config file {path} does not exist; pass the path of a YAML file.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"Config file {path} is not valid YAML ({err.__class__.__name__}); fix its syntax.") from None
    if not isinstance(data, dict):
        raise UserError(f"Config file {path} must hold a mapping of flag names to values.")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_config(cls: type[C], file: str | Path | None = None, **flags: Any) -> C:
    """``cls`` from its defaults, then ``file``, then the flags that are not None; validated.

    Each value is checked where it comes from, so the error names the flag or the file's key."""
    names = specs(cls)
    values: dict[str, Any] = {}
    if file is not None:
        given = read_config_file(file)
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise UserError(
                f"Config file {file} has unknown key(s) {', '.join(unknown)}; "
                f"valid keys are {', '.join(sorted(names))}."
            )
        values = {k: check_value(cls, k, v, f"{k} in {file}") for k, v in given.items()}
    values.update({k: check_value(cls, k, v) for k, v in flags.items() if v is not None})
    config = with_recipe(cls(**values))
    config.validate()
    return config


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls`` (plus ``--config``). Every flag defaults to None, meaning
    "not given", so that a file's value is not overridden; values are converted and checked by
    :func:`build_config`, not by argparse, so the command line, YAML and Python share one check."""
    for spec in specs(cls).values():
        meta, default = spec.field.metadata, spec.field.default
        text = meta["help"]
        if meta["range"]:
            text += f", {Interval.parse(meta['range'])}"
        if meta["choices"] and meta["comma"]:
            text += f", among {', '.join(meta['choices'])}"
        if spec.kind is bool:
            default = "on" if default else "off"
        elif isinstance(default, float):
            default = f"{default:g}"
        default = meta["default_help"] or default
        if default is not None:
            text += f" (default: {default})"
        kwargs: dict[str, Any] = {"default": None, "help": text.replace("%", "%%")}
        if meta["positional"]:  # zero or more, so that a --config file may give them instead
            parser.add_argument(spec.field.name, nargs="*", metavar=meta["positional"], default=None, help=meta["help"])
            continue
        if spec.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta["choices"] and not meta["comma"]:
            kwargs["metavar"] = "{" + ",".join(meta["choices"]) + "}"
        parser.add_argument(spec.flag, **kwargs)
    parser.add_argument("--config", metavar="FILE",
                        help="YAML file of flag values (keys are the flag names, with - or _); flags on the command line win")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (paths and tuples become strings and lists)."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
