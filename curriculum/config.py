"""Configuration: dataclass defaults < YAML file (``--config``) < command-line flags.

Every stage has one dataclass whose fields are exactly its flags, so a config file, the CLI and a
Python call all speak the same names. Unknown keys in a file are an error rather than silently
ignored, because a misspelt key would otherwise run a different experiment than the one written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from scoring.errors import UserError

C = TypeVar("C")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of flag names (dashes or underscores) to values."""
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
    """Instantiate ``cls`` from its defaults, then ``file``, then the flags that are not None."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if file is not None:
        values = read_config_file(file)
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(
                f"Config file {file} has unknown key(s) {', '.join(unknown)}; "
                f"valid keys are {', '.join(sorted(names))}."
            )
    values.update({k: v for k, v in flags.items() if v is not None and k in names})
    return cls(**values)


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
