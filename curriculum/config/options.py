"""The option mechanism: a config dataclass whose fields are exactly its flags, read from flags,
a YAML file or Python, checked by one validator and turned into a command line.

A field says everything about its flag once (:func:`option`): name, type (the annotation),
default, help, range or choices (:mod:`curriculum.config.constraints`), and whether it decides a
run's results. :func:`add_arguments` builds the ``argparse`` flags, :func:`check_value` converts
and checks one value wherever it comes from, and ``Config.validate()`` checks a whole config
(plus the rules that tie fields together) before anything is written. Precedence: dataclass
defaults < YAML file (``--config``) < flags. Unknown keys in a file are an error, because a
misspelt key would otherwise run another experiment than the one written. A list field is a list
inside the program, parsed once from a comma-separated flag or a YAML list.

Torch-free: the command line builds its parser and refuses a bad value without paying for torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from curriculum.config.constraints import Interval, Options, shown, split_list
from scoring.errors import UserError

C = TypeVar("C")

log = logging.getLogger(__name__)

_RENAMED = "renamed:"  # argparse destination prefix of an old flag name


def option(
    default: Any,
    help: str,
    *,
    range: str | None = None,
    choices: tuple[str, ...] | None = None,
    default_help: str | None = None,
    writable_dir: bool = False,
    positional: str | None = None,
    setting: bool = True,
    renamed_from: str | None = None,
) -> Any:
    """A config field with everything its flag needs.

    ``range`` is an interval such as ``"(0, 10]"`` or ``"[2, inf)"``; ``choices`` the accepted
    names (for a ``list[...]`` field, of each item); ``default_help`` describes a default of
    None (one derived at run time); ``writable_dir`` checks that the path can be created and
    written before any work starts; ``positional`` makes a list field one or more positional
    arguments of that metavar, as ``curriculum compare RUN_A RUN_B`` takes its runs;
    ``setting=False`` marks a field that does not change a run's results (output paths,
    verbosity, the process count), so a rerun with another value may reuse the run;
    ``renamed_from`` keeps an old flag and file key working, with a warning.
    """
    metadata = {
        "help": help,
        "range": range,
        "choices": choices,
        "default_help": default_help,
        "writable_dir": writable_dir,
        "positional": positional,
        "setting": setting,
        "renamed_from": renamed_from,
    }
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Spec:
    """A field's flag: its base type (bool, int, float, str, or list of one of them), whether None
    is allowed, and the constraint each value (each item of a list) must meet."""

    field: dataclasses.Field
    kind: type
    item: type | None  # the item type of a list field
    optional: bool

    @property
    def flag(self) -> str:
        return "--" + self.field.name.replace("_", "-")

    @property
    def constraint(self) -> Interval | Options | None:
        meta, kind = self.field.metadata, self.item or self.kind
        if meta["choices"]:
            return Options(tuple(meta["choices"]))
        if meta["range"]:
            return Interval(meta["range"], whole=kind is int)
        if kind in (int, float):
            return Interval("(-inf, inf)", whole=kind is int)
        return None

    def expected(self) -> str:
        if self.kind is bool:
            return "true or false"
        constraint = self.constraint
        if self.item is not None:
            if isinstance(constraint, Options):
                return f"comma-separated names among {', '.join(constraint.names)}"
            noun = {int: "whole numbers", float: "numbers", str: "values"}[self.item]
            rule = f" {constraint}" if isinstance(constraint, Interval) and self.field.metadata["range"] else ""
            return f"comma-separated {noun}{rule}"
        if constraint is None:
            return "a string"
        if isinstance(constraint, Interval) and not self.field.metadata["range"]:
            return "a whole number" if constraint.whole else "a finite number"
        return constraint.expected()

    def convert(self, value: Any) -> Any:
        """``value`` as the field's type, or ValueError."""
        if value is None and self.optional:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if self.item is not None:
            items = [self._one(v, self.item) for v in split_list(value)]
            if not items and self.constraint is not None:
                raise ValueError(value)
            return items
        return self._one(value, self.kind)

    def _one(self, value: Any, kind: type) -> Any:
        constraint = self.constraint
        if constraint is not None:
            return constraint.convert(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value


@functools.cache
def specs(cls: type) -> dict[str, Spec]:
    """Every field of a config dataclass, by name, with its type resolved from the annotation."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
        kind = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        item = None
        if typing.get_origin(kind) is list:
            kind, item = list, typing.get_args(kind)[0]
        out[f.name] = Spec(f, kind, item, optional)
    return out


def renamed(cls: type) -> dict[str, str]:
    """``{old name: field name}`` for the fields that kept an old flag or file key working."""
    return {
        spec.field.metadata["renamed_from"]: name
        for name, spec in specs(cls).items()
        if spec.field.metadata["renamed_from"]
    }


def check_value(cls: type, name: str, value: Any, label: str | None = None) -> Any:
    """``value`` converted to field ``name``'s type and checked against its range and choices;
    otherwise a UserError naming ``label`` (default: the flag) and what is expected."""
    spec = specs(cls)[name]
    label = label or spec.flag
    try:
        value = spec.convert(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{label} must be {spec.expected()}, got {shown(value, label)}.") from None
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
        raise UserError(
            f"{label} {path}: cannot write into {existing} ({err.strerror}); "
            "pass a directory you can write to, or fix its permissions."
        ) from None


class Config:
    """Base of every stage's config dataclass."""

    def complete(self: C) -> C:
        """A copy whose fields left at None hold their derived defaults (a stage's recipe)."""
        return self

    def validate(self) -> None:
        """Convert and check every field against its metadata (subclasses add the rules that
        tie fields together). Called by every stage before it writes anything."""
        for name in specs(type(self)):
            setattr(self, name, check_value(type(self), name, getattr(self, name)))

    def settings(self) -> dict[str, Any]:
        """The fields that decide a run's results, JSON-ready: a run directory holds one such
        setting only, and a rerun with other settings is refused."""
        chosen = {name for name, spec in specs(type(self)).items() if spec.field.metadata["setting"]}
        return {key: value for key, value in to_dict(self).items() if key in chosen}


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


def _new_names(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` with renamed keys under their current names (a warning says so once)."""
    out = {}
    for key, value in values.items():
        new = renamed(cls).get(key)
        if new is not None:
            log.warning("%s: %s was renamed %s; the old name still works for now.", where, key, new)
            if new in values:
                raise UserError(f"{where} gives both {key} and its new name {new}; keep {new}.")
            key = new
        out[key] = value
    return out


def build_config(cls: type[C], file: str | Path | None = None, **flags: Any) -> C:
    """``cls`` from its defaults, then ``file``, then the flags that are not None; completed
    (derived defaults filled in) and validated.

    Each value is checked where it comes from, so the error names the flag or the file's key."""
    names = specs(cls)
    values: dict[str, Any] = {}
    if file is not None:
        given = _new_names(cls, read_config_file(file), f"Config file {file}")
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise UserError(
                f"Config file {file} has unknown key(s) {', '.join(unknown)}; "
                f"valid keys are {', '.join(sorted(names))}."
            )
        values = {k: check_value(cls, k, v, f"{k} in {file}") for k, v in given.items()}
    flags = _new_names(cls, {k: v for k, v in flags.items() if v is not None}, "The command line")
    values.update({k: check_value(cls, k, v) for k, v in flags.items()})
    config = cls(**values).complete()
    config.validate()
    return config


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls`` (plus ``--config``). Every flag defaults to None, meaning
    "not given", so that a file's value is not overridden; values are converted and checked by
    :func:`build_config`, not by argparse, so the command line, YAML and Python share one check."""
    for spec in specs(cls).values():
        meta, default = spec.field.metadata, spec.field.default
        if spec.item is not None and spec.field.default_factory is not dataclasses.MISSING:
            default = ",".join(str(v) for v in spec.field.default_factory())
        text = meta["help"]
        if meta["range"]:
            text += f", {Interval(meta['range'])}"
        if meta["choices"] and spec.item is not None:
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
        elif meta["choices"] and spec.item is None:
            kwargs["metavar"] = "{" + ",".join(meta["choices"]) + "}"
        if meta["renamed_from"]:  # the old flag keeps working (build_config warns), unlisted
            old = meta["renamed_from"]
            kwargs["help"] += f" (formerly --{old.replace('_', '-')})"
            parser.add_argument("--" + old.replace("_", "-"), dest=_RENAMED + old, default=None, help=argparse.SUPPRESS)
        parser.add_argument(spec.flag, **kwargs)
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of flag values (keys are the flag names, with - or _); flags on the command line win",
    )


def given_flags(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The flags of ``cls`` given on a parsed command line (old names of renamed ones included,
    for :func:`build_config` to map and warn about); an empty positional list counts as not given."""
    names = [*specs(cls), *(_RENAMED + old for old in renamed(cls))]
    values = {name.removeprefix(_RENAMED): getattr(args, name) for name in names}
    return {name: value for name, value in values.items() if value is not None and value != []}


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (paths become strings, tuples lists)."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
