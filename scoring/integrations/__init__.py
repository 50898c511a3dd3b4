"""Recording where users train: thin adapters over :class:`scoring.Recorder`, one record format and
one code path to the scores.

* :mod:`scoring.integrations.distributed`: :class:`DistributedRecorder` for a plain, ``torchrun``
  or Accelerate loop on several processes (each rank records its shard; rank 0 writes), and the
  evaluation pass the callbacks share (``pip install 'agreement-curriculum[distributed]'``).
* :mod:`scoring.integrations.hf`: a ``transformers.TrainerCallback``
  (``pip install 'agreement-curriculum[hf]'``).
* :mod:`scoring.integrations.lightning`: a Lightning ``Callback`` for ``lightning`` or
  ``pytorch_lightning`` (``pip install 'agreement-curriculum[lightning]'``).

Each module imports its library when it is imported, and says in one sentence which extra to
install when it is missing; ``import scoring`` and ``from scoring import Scores`` never import
this package, so they stay free of torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or fail with the install command of ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{feature} needs the '{module.split('.')[0]}' package; install it with "
            f"pip install 'agreement-curriculum[{extra}]'."
        ) from None
