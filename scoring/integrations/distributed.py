"""Recording on several processes, and the evaluation pass the training callbacks share.

:class:`DistributedRecorder` has :class:`scoring.Recorder`'s methods for a loop run by
``torchrun``, ``accelerate launch`` or any ``torch.distributed`` launcher: every rank calls
``update`` for the examples of its shard (by position or id), and ``checkpoint`` gathers the
shards on rank 0, which alone writes the run directory (on a filesystem every rank sees). The
record is the one a single process would write from the same outputs: the Recorder places each
row by its position or id, so neither the shard layout nor the order of arrival matters, and an
example given by two ranks (a ``DistributedSampler`` pads its last shard with repeats) is the
same row twice. Without an initialised process group it is a plain Recorder on one process.

:class:`Schedule` says at which training steps to record (every ``every`` epochs or steps), and
:class:`EvalPass` predicts every example of each split, this rank's shard only, in evaluation
mode and without gradients. :class:`RecordingCallback` is what the Hugging Face and Lightning
callbacks share (an EvalPass on a Schedule, started, stepped and finished); each adds only its
library's hooks and how that library hands over batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import UserError
from scoring.integrations import require
from scoring.recorder import Recorder, to_numpy
from scoring.scores import Scores

torch = require("torch", "distributed", "Recording a torch training loop")
UNITS = ("epoch", "step")


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 without a process group)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DistributedRecorder:
    """A :class:`scoring.Recorder` whose ``update`` calls come from every rank; see the module
    docstring. Arguments are the Recorder's; rank 0 builds it. Every method is collective:
    call it on every rank, in the same order (an error on rank 0 is raised on every rank)."""

    def __init__(self, run_dir: str | Path, labels: dict[str, Any] | None = None, **recorder_args: Any):
        self.run_dir = Path(run_dir)
        self.rank, self.world = rank_and_world()
        self._pending: dict[int, list[dict]] = {}
        self.recorder: Recorder | None = None
        self._on_rank0(lambda: setattr(self, "recorder", Recorder(run_dir, labels or {}, **recorder_args)))

    def _on_rank0(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` on rank 0 and give its result (or its error) to every rank."""
        result: list[Any] = [None, None]
        if self.rank == 0:
            try:
                result = [work(), None]
            except Exception as err:  # every rank must leave the collective, then raise it
                result = [
                    None,
                    err if isinstance(err, UserError) else RuntimeError(f"rank 0: {type(err).__name__}: {err}"),
                ]
                if self.world == 1:
                    raise
        if self.world > 1:
            torch.distributed.broadcast_object_list(result, src=0)
        if result[1] is not None:
            raise result[1]
        return result[0]

    def shard(self, size: int) -> np.ndarray:
        """The positions of a split of ``size`` examples this rank predicts (every world-th)."""
        return np.arange(self.rank, size, self.world)

    def update(
        self,
        member: int,
        split: str = "train",
        *,
        logits: Any = None,
        probs: Any = None,
        index: Any = None,
        ids: Any = None,
        labels: Any = None,
        online: bool = False,
    ) -> None:
        """:meth:`scoring.Recorder.update` for this rank's examples; kept until ``checkpoint``."""
        given = {"logits": logits, "probs": probs, "index": index, "ids": ids, "labels": labels}
        arrays = {key: to_numpy(value) for key, value in given.items() if value is not None}
        if (
            "logits" in arrays or "probs" in arrays
        ):  # float32, as the Recorder converts them, and half the bytes to send
            key = "logits" if "logits" in arrays else "probs"
            arrays[key] = arrays[key].astype(np.float32)
        self._pending.setdefault(member, []).append({"split": split, "online": online, **arrays})

    def checkpoint(self, member: int, epoch: float | None = None, step: int | None = None) -> int:
        """Gather every rank's updates of ``member`` on rank 0 and commit them as its next checkpoint."""
        mine = self._pending.pop(member, [])
        gathered = [None] * self.world if self.rank == 0 else None
        if self.world > 1:
            torch.distributed.gather_object(mine, gathered, dst=0)
        else:
            gathered = [mine]

        def commit() -> int:
            for updates in gathered:
                for update in updates:
                    self.recorder.update(member, **update)
            return self.recorder.checkpoint(member, epoch=epoch, step=step)

        return self._on_rank0(commit)

    def hold_out(self, member: int, split: str = "train", *, ids: Any = None, index: Any = None) -> None:
        """:meth:`scoring.Recorder.hold_out`: the examples ``member`` never trains on (same on every rank)."""
        self._on_rank0(lambda: self.recorder.hold_out(member, split, ids=ids, index=index))

    def checkpoints(self, member: int) -> int:
        """How many checkpoints ``member`` has committed."""
        return self._on_rank0(lambda: self.recorder.checkpoints(member))

    def rewind(self, member: int, step: int) -> int:
        """:meth:`scoring.Recorder.rewind` on rank 0; drops this rank's pending updates too."""
        self._pending.pop(member, None)
        return self._on_rank0(lambda: self.recorder.rewind(member, step))

    def finish(self) -> Scores:
        """Write the scores on rank 0; every rank gets them (read from the shared run directory)."""
        self._on_rank0(lambda: self.recorder.finish())
        return Scores.load(self.run_dir)


class Schedule:
    """Record every ``every`` epochs (rounded to whole optimizer steps, as ``curriculum score
    --eval-every`` does) or every ``every`` steps, and at step 0 (the initialisation)."""

    def __init__(self, every: float = 1.0, unit: str = "epoch"):
        if unit not in UNITS:
            raise UserError(f"The recording interval's unit is 'epoch' or 'step', got {unit!r}.")
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not math.isfinite(every) or every <= 0:
            raise UserError(f"Record every a positive number of {unit}s, got every={every!r}.")
        if unit == "step" and int(every) != every:
            raise UserError(f"Record every a whole number of steps, got every={every!r}; or pass unit='epoch'.")
        self.every, self.unit = every, unit
        self.steps_per_epoch: float | None = None

    def start(self, steps_per_epoch: float) -> None:
        """Set the optimizer steps in one epoch (known once the training data is loaded)."""
        if not steps_per_epoch > 0:
            raise UserError(f"The training run has {steps_per_epoch} optimizer steps per epoch; give it training data.")
        self.steps_per_epoch = float(steps_per_epoch)
        if self.unit == "epoch" and round(self.every * self.steps_per_epoch) < 1:
            raise UserError(
                f"Recording every {self.every:g} epochs is less than one of the "
                f"{self.steps_per_epoch:g} optimizer "
                "steps of an epoch; record less often."
            )

    def _interval(self) -> float:
        return self.every if self.unit == "step" else self.every * self.steps_per_epoch

    def due(self, step: int) -> bool:
        """Whether to record after optimizer step ``step`` (0: before training)."""
        k = round(step / self._interval())
        return round(k * self._interval()) == step

    def epoch(self, step: int) -> float:
        """The checkpoint's epoch: its number times ``every`` epochs, or steps / steps per epoch."""
        if self.unit == "epoch":
            return round(round(step / self._interval()) * self.every, 9)
        return round(step / self.steps_per_epoch, 9)


def to_device(batch: Any, device: Any) -> Any:
    """``batch`` (tensors in dicts, lists and tuples) moved to ``device``."""
    if hasattr(batch, "to") and callable(batch.to) and not isinstance(batch, type):
        return batch.to(device)
    if isinstance(batch, dict) or (hasattr(batch, "keys") and hasattr(batch, "__getitem__")):
        return (
            type(batch)({key: to_device(value, device) for key, value in batch.items()})
            if isinstance(batch, dict)
            else {key: to_device(batch[key], device) for key in batch.keys()}
        )
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


class EvalPass:
    """Predict every example of each split (this rank's shard) with a model and hand the outputs
    to a :class:`DistributedRecorder`: ``batches(split, positions)`` yields model inputs for
    those positions in order, ``forward(model, inputs)`` gives logits [B, K]."""

    def __init__(
        self,
        recorder: DistributedRecorder,
        sizes: dict[str, int],
        batches: Callable[[str, np.ndarray], Iterable[tuple[np.ndarray, Any]]],
        forward: Callable[[Any, Any], Any],
    ):
        self.recorder, self.sizes, self.batches, self.forward = recorder, sizes, batches, forward

    def record(self, model: Any, member: int, step: int, epoch: float) -> int:
        """One checkpoint of ``member`` after training step ``step``; returns its number."""
        training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        try:
            with torch.inference_mode():
                for split, size in self.sizes.items():
                    for positions, inputs in self.batches(split, self.recorder.shard(size)):
                        self.recorder.update(
                            member,
                            split,
                            logits=self.forward(model, to_device(inputs, device)),
                            index=positions,
                        )
        finally:
            model.train(training)
        return self.recorder.checkpoint(member, epoch=epoch, step=step)

    def begin(self, model: Any, member: int, step: int, schedule: Schedule) -> None:
        """At the start of training (or of its resumption at ``step``): keep the member's
        checkpoints up to ``step`` and record the initialisation if it has none."""
        kept = self.recorder.rewind(member, step)
        if kept == 0 and step > 0:
            raise UserError(
                f"Member {member}'s training resumes at step {step} but its record holds no checkpoint up to "
                "there; record it from the start of training (or give the callback a new directory)."
            )
        if kept == 0:
            self.record(model, member, 0, 0.0)


class RecordingCallback:
    """The part of a training callback that does not depend on its library: one member's record in
    ``run_dir``, its ``splits`` predicted on a :class:`Schedule`, and ``held_out`` examples (per
    split, the ids this member never trains on). A subclass builds :attr:`recorder` and calls
    :meth:`start` when training starts and :meth:`after_step` after every optimizer step."""

    how_to_train = "train with it"  # how the library trains with a callback, for finish()'s error

    def __init__(
        self,
        run_dir: str | Path,
        splits: dict[str, Any],
        member: int,
        every: float,
        unit: str,
        held_out: dict[str, Any] | None,
        record_probs: bool,
        recorder_args: dict[str, Any],
    ):
        if not splits:
            raise UserError("Give the callback the datasets to record, e.g. splits={'train': train, 'test': test}.")
        self.run_dir, self.splits, self.member = Path(run_dir), dict(splits), member
        self.schedule = Schedule(every, unit)
        self.held_out, self.recorder_args = held_out or {}, {"record_probs": record_probs, **recorder_args}
        self.recorder: DistributedRecorder | None = None
        self._pass: EvalPass | None = None
        self._last_step = -1

    def start(
        self,
        model: Any,
        step: int,
        steps_per_epoch: float,
        batches: Callable[[str, np.ndarray], Iterable[tuple[np.ndarray, Any]]],
        forward: Callable[[Any, Any], Any],
    ) -> None:
        """Training starts (or resumes) at optimizer step ``step``: keep the record up to there and
        record the initialisation if the member has none."""
        self.schedule.start(steps_per_epoch)
        self._pass = EvalPass(self.recorder, {split: len(d) for split, d in self.splits.items()}, batches, forward)
        for split, ids in self.held_out.items():
            self.recorder.hold_out(self.member, split, ids=ids)
        self._pass.begin(model, self.member, step, self.schedule)
        self._last_step = step

    def after_step(self, model: Any, step: int) -> None:
        """Record a checkpoint after optimizer step ``step`` if the schedule says so, once (a
        library may call its hook again for the same step, e.g. between accumulated batches)."""
        if step != self._last_step and self.schedule.due(step):
            self._pass.record(model, self.member, step, self.schedule.epoch(step))
            self._last_step = step

    def finish(self) -> Scores:
        """Write the scores of every member recorded in ``run_dir`` (call on every rank)."""
        if self.recorder is None:
            raise UserError(f"The callback has recorded nothing yet; {self.how_to_train} before finish().")
        return self.recorder.finish()
