"""A Hugging Face ``transformers.TrainerCallback`` that records a training run as ``curriculum score`` does.

Each ``Trainer`` run is one member; give every member's callback the same run directory::

    from scoring.integrations.hf import RecorderCallback

    for member in range(3):
        callback = RecorderCallback("runs/my-hf", {"train": train, "test": test}, member=member, every=0.5)
        Trainer(model=new_model(member), args=TrainingArguments(..., seed=member), train_dataset=train,
                data_collator=collator, callbacks=[callback]).train()
    scores = callback.finish()

At the start of training (checkpoint 0, the initialisation) and every ``every`` epochs or steps
(``unit``), the callback predicts every example of every split in evaluation mode, as the
Trainer would feed them (the same column removal and data collator, ``per_device_eval_batch_size``),
and commits one checkpoint. Examples are keyed by the dataset's ``id_column`` (``id_column=None``:
``<split>/<row>``, the toolkit's id for a Hugging Face split) and labelled by ``label_column``.
Under ``torchrun`` or ``accelerate launch`` each rank predicts its share and rank 0 writes.
A training run resumed with ``trainer.train(resume_from_checkpoint=...)`` continues the record:
the checkpoints recorded after the resumed step are recorded again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import UserError
from scoring.integrations import require
from scoring.integrations.distributed import DistributedRecorder, RecordingCallback

transformers = require("transformers", "hf", "The Hugging Face Trainer callback")
torch = require("torch", "hf", "The Hugging Face Trainer callback")
LABEL_KEYS = ("labels", "label", "label_ids")


def split_labels_and_ids(splits: dict[str, Any], label_column: str, id_column: str | None) -> tuple[dict, dict]:
    """Per split, every example's label and id from a ``datasets.Dataset`` (or a mapping of columns)."""
    labels, ids = {}, {}
    for split, dataset in splits.items():
        columns = list(getattr(dataset, "column_names", None) or [])
        if label_column not in columns:
            raise UserError(
                f"The {split} dataset has no '{label_column}' column (it has {', '.join(columns)}); pass "
                "label_column= naming the column that holds the class labels."
            )
        labels[split] = np.asarray(dataset[label_column], dtype=np.int64)
        if id_column is None:
            ids[split] = [f"{split}/{row}" for row in range(len(dataset))]
        elif id_column in columns:
            ids[split] = [str(value) for value in dataset[id_column]]
        else:
            raise UserError(
                f"The {split} dataset has no '{id_column}' column to key its examples by; add one "
                f"(dataset.add_column('{id_column}', ...)) or pass id_column=None to key them by "
                f"'{split}/<row>'."
            )
    return labels, ids


class RecorderCallback(RecordingCallback, transformers.TrainerCallback):
    """Record member ``member`` of the run in ``run_dir`` from a ``Trainer``; see the module docstring.

    ``splits``: name -> ``datasets.Dataset`` to predict (e.g. ``{"train": train, "test": test}``).
    ``every``/``unit``: the interval in epochs (default, rounded to whole optimizer steps) or
    steps. ``collate_fn`` and ``batch_size`` default to the Trainer's. ``held_out``: per split,
    the ids of the examples this member never trains on (its fold), for out-of-sample cleanlab
    probabilities. ``record_probs`` and the remaining keyword arguments go to
    :class:`scoring.Recorder` (``dataset``, ``arch``, ...).
    """

    how_to_train = "train with it (trainer.train())"

    def __init__(
        self,
        run_dir: str | Path,
        splits: dict[str, Any],
        *,
        member: int = 0,
        every: float = 1.0,
        unit: str = "epoch",
        id_column: str | None = "id",
        label_column: str = "label",
        collate_fn: Callable | None = None,
        batch_size: int | None = None,
        record_probs: bool = False,
        held_out: dict[str, Any] | None = None,
        **recorder_args: Any,
    ):
        super().__init__(run_dir, splits, member, every, unit, held_out, record_probs, recorder_args)
        self.label_column, self.id_column = label_column, id_column
        self.collate_fn, self.batch_size = collate_fn, batch_size

    def _inputs(self, model: Any, args: Any) -> dict[str, Any]:
        """Each split as the Trainer feeds it: columns the model's forward does not take removed."""
        if not args.remove_unused_columns:
            return self.splits
        accepted = set(inspect.signature(model.forward).parameters) | set(LABEL_KEYS) | set(args.label_names or [])
        return {
            split: dataset.remove_columns([c for c in dataset.column_names if c not in accepted])
            if hasattr(dataset, "remove_columns")
            else dataset
            for split, dataset in self.splits.items()
        }

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if self.recorder is None:
            labels, ids = split_labels_and_ids(self.splits, self.label_column, self.id_column)
            self.recorder = DistributedRecorder(self.run_dir, labels, ids=ids, resume=True, **self.recorder_args)
        accumulation = args.gradient_accumulation_steps
        batches = len(train_dataloader)
        collate = self.collate_fn or getattr(train_dataloader, "collate_fn", None) or transformers.default_data_collator
        inputs = self._inputs(model, args)
        size = self.batch_size or args.per_device_eval_batch_size

        def batches_of(split: str, positions: np.ndarray):
            for start in range(0, len(positions), size):
                chosen = positions[start : start + size]
                yield chosen, collate([inputs[split][int(i)] for i in chosen])

        steps_per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
        self.start(model, state.global_step, steps_per_epoch, batches_of, _logits)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.after_step(model, state.global_step)


def _logits(model: Any, batch: dict[str, Any]) -> Any:
    """The model's logits for a collated batch, its labels left out (no loss is needed)."""
    outputs = model(**{key: value for key, value in batch.items() if key not in LABEL_KEYS})
    logits = getattr(outputs, "logits", None)
    return outputs[0] if logits is None else logits
