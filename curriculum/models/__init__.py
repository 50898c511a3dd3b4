"""Models: architecture names, checked without torch (:mod:`.architectures`), and the torch
builders behind them (:mod:`.builders`).

    from curriculum.models import build_model
"""

from scoring.lazy import lazy_exports

_EXPORTS = {
    "auto_arch": "curriculum.models.architectures",
    "check_arch": "curriculum.models.architectures",
    "list_architectures": "curriculum.models.architectures",
    "build_model": "curriculum.models.builders",
    "linearize": "curriculum.models.builders",
    "architectures": "curriculum.models.architectures",
    "builders": "curriculum.models.builders",
}

__getattr__, __dir__, __all__ = lazy_exports("curriculum.models", _EXPORTS)
