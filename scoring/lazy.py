"""Lazy package exports (PEP 562): a name is imported from its module on first use, so importing
a package (``curriculum`` for ``--help``, ``scoring`` for ``UserError``) loads no heavy library."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` exporting ``{name: module}``;
    a name that is itself a submodule (``scoring.agreement``) is exported as the module."""
    names = sorted(exports)

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        return module if module.__name__ == f"{package}.{name}" else getattr(module, name)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
