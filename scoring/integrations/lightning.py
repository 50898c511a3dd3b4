"""A Lightning ``Callback`` that records a training run as ``curriculum score`` does.

It works with ``lightning`` (``lightning.pytorch.Trainer``) and ``pytorch_lightning``, whichever
is installed (the class derives from the ``Callback`` of each). Each ``fit`` is one member::

    from scoring.integrations.lightning import RecorderCallback

    for member in range(3):
        callback = RecorderCallback("runs/my-pl", {"train": train_set, "test": test_set}, member=member)
        lightning.pytorch.Trainer(max_epochs=4, callbacks=[callback]).fit(Model(seed=member), train_loader)
    scores = callback.finish()

At the start of training (checkpoint 0) and every ``every`` epochs or steps (``unit``), the
callback predicts every example of every split with the module in evaluation mode and commits
one checkpoint. A split is a map-style dataset; its labels are ``labels[split]``, else the
dataset's ``targets``, else the second item of each example; its ids are ``ids[split]`` (default:
positions). ``forward(module, batch)`` gives the logits (default: ``module(batch[0])`` for an
``(x, y)`` batch). Under a DDP strategy each rank predicts its share and rank 0 writes; a
``fit(ckpt_path=...)`` that resumes training continues the record from the resumed step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import UserError
from scoring.integrations import require
from scoring.integrations.distributed import DistributedRecorder, RecordingCallback
from scoring.recorder import to_numpy

torch = require("torch", "lightning", "The Lightning callback")


def _callback_bases() -> tuple[type, ...]:
    """The ``Callback`` class of every Lightning package installed, so either Trainer accepts ours."""
    bases = []
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            bases.append(importlib.import_module(name).Callback)
        except ImportError:
            continue
    if not bases:
        require("lightning", "lightning", "The Lightning callback")
    return tuple(bases)


def dataset_labels(dataset: Any) -> np.ndarray:
    """Every label of a map-style dataset: its ``targets`` or ``labels``, a ``TensorDataset``'s last
    tensor, else the second item of each example."""
    for name in ("targets", "labels"):
        if hasattr(dataset, name):
            return to_numpy(getattr(dataset, name)).astype(np.int64).reshape(-1)
    if hasattr(dataset, "tensors"):
        return to_numpy(dataset.tensors[-1]).astype(np.int64).reshape(-1)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def _first_input(module: Any, batch: Any) -> Any:
    return module(batch[0] if isinstance(batch, (list, tuple)) else batch)


class RecorderCallback(RecordingCallback, *_callback_bases()):
    """Record member ``member`` of the run in ``run_dir`` from a Lightning ``Trainer``; see the
    module docstring. ``held_out``: per split, the ids of the examples this member never trains on
    (its fold), for out-of-sample cleanlab probabilities. ``record_probs`` and the remaining
    keyword arguments go to :class:`scoring.Recorder`."""

    how_to_train = "fit with it"

    def __init__(
        self,
        run_dir: str | Path,
        splits: dict[str, Any],
        *,
        member: int = 0,
        every: float = 1.0,
        unit: str = "epoch",
        labels: dict[str, Any] | None = None,
        ids: dict[str, Any] | None = None,
        forward: Callable[[Any, Any], Any] | None = None,
        batch_size: int = 256,
        collate_fn: Callable | None = None,
        record_probs: bool = False,
        held_out: dict[str, Any] | None = None,
        **recorder_args: Any,
    ):
        super().__init__(run_dir, splits, member, every, unit, held_out, record_probs, recorder_args)
        self.labels, self.ids = labels, ids
        self.forward = forward or _first_input
        self.batch_size, self.collate_fn = batch_size, collate_fn

    @property
    def state_key(self) -> str:
        return f"RecorderCallback[{self.run_dir}, member {self.member}]"

    def _batches(self, split: str, positions: np.ndarray):
        subset = torch.utils.data.Subset(self.splits[split], positions.tolist())
        loader = torch.utils.data.DataLoader(
            subset, batch_size=self.batch_size, shuffle=False, collate_fn=self.collate_fn
        )
        start = 0
        for batch in loader:
            count = len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch)
            yield positions[start : start + count], batch
            start += count

    def on_train_start(self, trainer, pl_module):
        if self.recorder is None:
            labels = {
                split: to_numpy(self.labels[split]) if self.labels and split in self.labels else dataset_labels(dataset)
                for split, dataset in self.splits.items()
            }
            self.recorder = DistributedRecorder(self.run_dir, labels, ids=self.ids, resume=True, **self.recorder_args)
        batches, accumulation = trainer.num_training_batches, trainer.accumulate_grad_batches
        if batches == float("inf"):
            if self.schedule.unit == "epoch":
                raise UserError(
                    "The training data has no length, so an epoch is unknown; record every N steps (unit='step')."
                )
            batches = accumulation
        self.start(pl_module, trainer.global_step, -(-int(batches) // accumulation), self._batches, self.forward)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after_step(pl_module, trainer.global_step)
