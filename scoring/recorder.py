"""Record any training loop's predictions into a run directory, as ``curriculum score`` does.

The loop hands over what it has, as NumPy arrays or anything ``np.asarray`` reads (torch tensors,
on any device and with or without grad, and JAX arrays are converted here; this module imports
neither): which examples (positions ``index`` or ``ids``), optionally their labels (checked),
and logits or probabilities. Members and checkpoints need not be known in advance::

    from scoring import Recorder
    recorder = Recorder("runs/mine", labels={"train": y_train, "test": y_test})
    for member in range(5):
        ...                                            # a fresh model, its own seed
        for epoch in range(epochs + 1):                # checkpoint 0 = before training
            recorder.update(member, "train", logits=model(x_train), index=np.arange(len(y_train)))
            recorder.update(member, "test", logits=model(x_test))
            recorder.checkpoint(member, epoch=epoch)
            ...                                        # train one epoch
    scores = recorder.finish()                         # writes scores.parquet, returns Scores

Each ``checkpoint`` commits one row per split for the member: every example of every split must
have been given since the previous checkpoint, except examples given with ``online=True`` (the
training-mode outputs of the training batches, as Pliushch et al.'s code records the train set
and ``--train-record online`` does), which keep their latest value. As in ``curriculum score``
the first checkpoint is taken as the initialisation: scores of training dynamics (learned
checkpoint, forgetting, data map) start after it.

The run directory is the one ``curriculum score`` writes (records, ``run.json``,
``scores.parquet``), written through the same code (``MemberRecord``, ``scoring.run``), so the
same predictions give the same scores. Files grow by doubling while the loop runs and are cut to
size by :meth:`Recorder.finish`.

A recorder writes a new directory, or with ``resume=True`` continues the one it wrote before
(same labels and ids): every checkpoint is declared in ``run.json`` before its rows are
committed, so a loop that resumes from its own training checkpoint reopens the record, drops the
rows recorded after that training step (:meth:`Recorder.rewind`) and records them again. The
callbacks of :mod:`scoring.integrations` do this for Hugging Face ``Trainer``, Lightning and
loops on several processes.
"""

from __future__ import annotations

import hashlib
import io
import platform
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import UserError
from scoring.files import atomic_write_bytes, atomic_write_json
from scoring.ids import as_ids, content_hashes
from scoring.records import PROBS, MemberRecord, member_dir, read_run_info, update_run
from scoring.run import write_scores
from scoring.scores import Scores
from scoring.stream import DEFAULT_MEMORY_MB

FIRST_CAPACITY = 8
HELD_OUT = "heldout"  # records/member_XXX/<split>.heldout.npy: bool [M], examples the member never trained on


def to_numpy(values: Any) -> np.ndarray:
    """An array from numpy, torch (detached, moved to the CPU) or anything ``np.asarray`` reads."""
    if hasattr(values, "detach"):
        values = values.detach()
    if hasattr(values, "cpu"):
        values = values.cpu()
    if "bfloat16" in str(getattr(values, "dtype", "")) and hasattr(values, "float"):
        values = values.float()  # torch's bfloat16 has no numpy counterpart
    return np.asarray(values)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32."""
    shifted = logits.astype(np.float32) - logits.max(axis=1, keepdims=True).astype(np.float32)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def record_fields(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Predicted label, P(true class) and EL2N = ||probs - onehot(label)||_2 of [B, K]
    probabilities (the same formulas as ``curriculum.training.engine.outputs_to_record``)."""
    p_true = probs[np.arange(len(labels)), labels]
    el2n = np.sqrt(np.clip(np.square(probs).sum(1) - 2 * p_true + 1, 0, None))
    return {"pred": probs.argmax(1), "p_true": p_true, "el2n": el2n}


class _Row:
    """One member's next checkpoint row of one split, filled batch by batch."""

    def __init__(self, size: int, num_classes: int | None):
        self.values = {
            "pred": np.zeros(size, np.int64),
            "p_true": np.zeros(size, np.float32),
            "el2n": np.zeros(size, np.float32),
        }
        if num_classes:
            self.values[PROBS] = np.zeros((size, num_classes), np.float32)
        self.filled = np.zeros(size, bool)
        self.online = np.zeros(size, bool)

    def fill(self, index: np.ndarray, fields: dict[str, np.ndarray], online: bool) -> None:
        for name, target in self.values.items():
            target[index] = fields[name]
        self.filled[index] = True
        self.online[index] = online

    def next_checkpoint(self) -> None:
        """Online values stay until overwritten; every other example must be given again."""
        self.filled = self.online.copy()


def load_held_out(run_dir: str | Path, member: int, split: str) -> np.ndarray | None:
    """The examples of ``split`` that ``member`` held out (:meth:`Recorder.hold_out`), or None."""
    path = member_dir(Path(run_dir), member) / f"{split}.{HELD_OUT}.npy"
    return np.load(path) if path.exists() else None


def _stored_capacity(run_dir: Path, member: int, split: str) -> int | None:
    """Rows the member's files were allocated with by an earlier Recorder (None: a new member)."""
    path = member_dir(run_dir, member) / f"{split}.pred.npy"
    if not (member_dir(run_dir, member) / "progress.json").exists() or not path.exists():
        return None
    try:
        return int(np.load(path, mmap_mode="r").shape[0])
    except (OSError, ValueError):
        return None  # MemberRecord names the damaged file


class Recorder:
    """Writes the run directory ``run_dir`` from a user's training loop; see the module docstring.

    ``labels``: per split (e.g. ``"train"``, ``"test"``), the label of every example, in the
    positions ``index`` refers to. ``ids``: per split, the example ids (default: positions);
    ``images``: per split, uint8 images whose ``content_hash`` goes into the table.
    ``record_probs`` keeps the class probabilities (float16 [E, M, K] per member and split;
    needs ``num_classes`` or logits/probabilities wide enough to tell). ``dataset``,
    ``fingerprint`` and ``arch`` describe the run in ``run.json`` and the scores' metadata
    (default fingerprint: sha256 of the labels and ids). ``resume=True`` continues the run that
    a Recorder of the same labels, ids and settings wrote in ``run_dir`` (or starts it).
    """

    def __init__(
        self,
        run_dir: str | Path,
        labels: dict[str, Any],
        *,
        ids: dict[str, Any] | None = None,
        images: dict[str, Any] | None = None,
        num_classes: int | None = None,
        record_probs: bool = False,
        dataset: str = "custom",
        fingerprint: str | None = None,
        arch: str = "custom",
        resume: bool = False,
    ):
        self.run_dir = Path(run_dir)
        existing = read_run_info(self.run_dir)
        if existing is None and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise UserError(
                f"{self.run_dir} is not empty and holds no recorded run; give the Recorder a new directory."
            )
        if existing is not None and not resume:
            raise UserError(
                f"{self.run_dir} already holds a run; give the Recorder a new directory, "
                "or resume=True to continue the run recorded there."
            )
        if not labels:
            raise UserError("Give the Recorder the labels of at least one split, e.g. labels={'train': y_train}.")
        self.labels = {split: to_numpy(values).astype(np.int64).reshape(-1) for split, values in labels.items()}
        self.ids = {
            split: as_ids(ids[split]) if ids and split in ids else as_ids(np.arange(len(y)))
            for split, y in self.labels.items()
        }
        for split, split_ids in self.ids.items():
            if len(split_ids) != len(self.labels[split]) or len(set(split_ids)) != len(split_ids):
                raise UserError(
                    f"The {split} ids must be one distinct id per label ({len(self.labels[split])}); check ids['{split}']."
                )
        self._positions = {split: {key: i for i, key in enumerate(split_ids)} for split, split_ids in self.ids.items()}
        self.hashes = {
            split: content_hashes(to_numpy(images[split])) for split in self.labels if images and split in images
        }
        self.num_classes = num_classes or int(max(y.max(initial=-1) for y in self.labels.values())) + 1
        self.record_probs = record_probs
        self._members: dict[int, MemberRecord] = {}
        self._rows: dict[int, dict[str, _Row]] = {}
        self._epochs: list[float] = []
        self._steps: list[int | None] = []
        if fingerprint is None:
            digest = hashlib.sha256(b"curriculum-recorder-v1\n")
            for split in sorted(self.labels):
                digest.update(
                    split.encode()
                    + b"\n"
                    + self.labels[split].astype("<i8").tobytes()
                    + "\n".join(self.ids[split]).encode()
                )
            fingerprint = digest.hexdigest()
        sizes = {split: len(y) for split, y in self.labels.items()}
        self.info = {
            "dataset": {"name": dataset, "fingerprint": fingerprint, "sizes": sizes, "num_classes": self.num_classes},
            "settings": {"recorder": True, "record_probs": record_probs},
            "arch": arch,
            "members": 0,
            "checkpoints": [],
            "schema": 1,
            "status": "running",
            "versions": {"python": platform.python_version(), "numpy": np.__version__},
        }
        if existing is None:
            atomic_write_json(self.run_dir / "run.json", self.info)
        else:
            self._reopen(existing)

    def _reopen(self, existing: dict) -> None:
        """Continue the run in ``run.json`` ``existing``: the same data and settings, its declared
        checkpoints and every member's committed rows."""
        for key in ("dataset", "settings"):
            if existing.get(key) != self.info[key]:
                what = "data" if key == "dataset" else "settings"
                raise UserError(
                    f"{self.run_dir} holds a recorded run of other {what} ({key} differs: "
                    f"{existing.get(key)} here, {self.info[key]} now); pass the same labels, ids "
                    "and settings to resume it, or give a new directory."
                )
        self.info = {**existing, "status": "running"}
        for checkpoint in existing.get("checkpoints", []):
            self._epochs.append(float(checkpoint["epoch"]))
            self._steps.append(checkpoint["step"])
        for folder in sorted((self.run_dir / "records").glob("member_*")):
            if folder.name[len("member_") :].isdigit():
                self._member(int(folder.name[len("member_") :]))
        atomic_write_json(self.run_dir / "run.json", self.info)

    def _member(self, member: int) -> tuple[MemberRecord, dict[str, _Row]]:
        if isinstance(member, bool) or not isinstance(member, (int, np.integer)) or member < 0:
            raise UserError(f"A member is a non-negative integer, got {member!r}.")
        member = int(member)
        if member not in self._members:
            sizes = {split: len(y) for split, y in self.labels.items()}
            probs = self.num_classes if self.record_probs else None
            capacity = _stored_capacity(self.run_dir, member, next(iter(sizes))) or FIRST_CAPACITY
            record = MemberRecord(self.run_dir, member, sizes, capacity, num_classes=probs)
            if record.rows > len(self._epochs):
                raise UserError(
                    f"Member {member} of {self.run_dir} has {record.rows} checkpoints but "
                    f"run.json declares {len(self._epochs)}; delete {record.dir} and record "
                    "that member again."
                )
            self._members[member] = record
            self._rows[member] = {split: _Row(size, probs) for split, size in sizes.items()}
        return self._members[member], self._rows[member]

    def hold_out(self, member: int, split: str = "train", *, ids: Any = None, index: Any = None) -> None:
        """Declare the examples of ``split`` that ``member`` never trains on (its fold of a
        cross-validation), by ``ids`` or positions ``index``: the cleanlab export then gives every
        example out-of-sample probabilities, from the members that held it out."""
        if ids is None and index is None:
            raise UserError("Name the held-out examples by ids= or index=.")
        if split not in self.labels:
            raise UserError(f"The Recorder has no split '{split}'; it records {', '.join(self.labels)}.")
        count = len(to_numpy(index).reshape(-1)) if index is not None else 0
        mask = np.zeros(len(self.labels[split]), bool)
        mask[self._positions_of(split, index, ids, count)] = True
        record, _ = self._member(member)
        buffer = io.BytesIO()
        np.save(buffer, mask)
        atomic_write_bytes(record.dir / f"{split}.{HELD_OUT}.npy", buffer.getvalue())

    def checkpoints(self, member: int) -> int:
        """How many checkpoints ``member`` has committed (0 for a member not recorded yet)."""
        return self._member(member)[0].rows

    def rewind(self, member: int, step: int) -> int:
        """Drop ``member``'s checkpoints taken after training step ``step``, for a loop that resumes
        its training from a checkpoint saved at that step; returns how many checkpoints remain."""
        record, rows = self._member(member)
        keep = record.rows
        while keep and (self._steps[keep - 1] is None or self._steps[keep - 1] > step):
            if self._steps[keep - 1] is None:
                raise UserError(
                    f"Member {member}'s checkpoints were recorded without step=; a resumed "
                    "loop can only rewind checkpoints recorded with their training step."
                )
            keep -= 1
        if keep < record.rows:
            record.rows = keep
            record.commit()
        for row in rows.values():
            row.filled[:] = False
        return keep

    def _positions_of(self, split: str, index: Any, ids: Any, count: int) -> np.ndarray:
        size = len(self.labels[split])
        if index is not None and ids is not None:
            raise UserError("Pass either index= (positions) or ids=, not both.")
        if ids is not None:
            lookup = self._positions[split]
            keys = as_ids(to_numpy(ids))
            unknown = [key for key in keys if key not in lookup]
            if unknown:
                raise UserError(
                    f"{len(unknown)} ids are not among the {split} ids given to the Recorder (e.g. {unknown[0]!r}); "
                    "pass the ids the Recorder was built with."
                )
            return np.array([lookup[key] for key in keys], dtype=np.int64)
        position = np.arange(size) if index is None else to_numpy(index).astype(np.int64).reshape(-1)
        if len(position) != count:
            raise UserError(
                f"{count} outputs for {len(position)} examples of {split}; pass index= or ids= for every output row."
            )
        if len(position) and (position.min() < 0 or position.max() >= size):
            raise UserError(f"Positions must lie in 0..{size - 1} for split {split}; check index=.")
        return position

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
        """Outputs of ``member`` for some examples of ``split``: ``logits`` or ``probs`` [B, K] for
        the examples at positions ``index`` or with ``ids`` (default: all, in order). ``labels``,
        if given, must equal the Recorder's labels there (it catches misaligned batches)."""
        if (logits is None) == (probs is None):
            raise UserError("Pass exactly one of logits= or probs= to Recorder.update.")
        if split not in self.labels:
            raise UserError(f"The Recorder has no split '{split}'; it records {', '.join(self.labels)}.")
        outputs = to_numpy(logits if logits is not None else probs).astype(np.float32)
        if outputs.ndim != 2 or outputs.shape[1] > self.num_classes:
            raise UserError(
                f"Outputs must be [batch, classes] with at most {self.num_classes} classes, got {outputs.shape}; "
                "pass num_classes= to the Recorder if the labels do not show every class."
            )
        if outputs.shape[1] < self.num_classes:
            raise UserError(
                f"Outputs have {outputs.shape[1]} classes but the labels reach {self.num_classes - 1}; pass full outputs."
            )
        p = softmax(outputs) if logits is not None else outputs
        position = self._positions_of(split, index, ids, len(outputs))
        true = self.labels[split][position]
        if labels is not None:
            differ = int((to_numpy(labels).astype(np.int64).reshape(-1) != true).sum())
            if differ:
                raise UserError(
                    f"{differ} of {len(true)} labels differ from the {split} labels given to the Recorder; "
                    "pass the positions (index=) or ids= of these examples."
                )
        fields = record_fields(p, true)
        if self.record_probs:
            fields[PROBS] = p
        self._member(member)[1][split].fill(position, fields, online)

    def update_record(
        self,
        member: int,
        split: str,
        *,
        pred: Any,
        p_true: Any,
        el2n: Any,
        probs: Any = None,
        index: Any = None,
        online: bool = False,
    ) -> None:
        """Record fields a loop computed itself (as ``curriculum score`` does): predicted label,
        P(true class), EL2N and, with ``record_probs``, the probabilities [B, K]."""
        pred = to_numpy(pred).reshape(-1)
        fields = {"pred": pred, "p_true": to_numpy(p_true).reshape(-1), "el2n": to_numpy(el2n).reshape(-1)}
        if self.record_probs:
            if probs is None:
                raise UserError("This Recorder keeps probabilities (record_probs=True); pass probs= too.")
            fields[PROBS] = to_numpy(probs)
        self._member(member)[1][split].fill(self._positions_of(split, index, None, len(pred)), fields, online)

    def checkpoint(self, member: int, epoch: float | None = None, step: int | None = None) -> int:
        """Commit ``member``'s row of every split as its next checkpoint; returns its number.
        ``epoch`` (default: the checkpoint's number) must agree between members."""
        record, rows = self._member(member)
        missing = {split: int((~row.filled).sum()) for split, row in rows.items() if not row.filled.all()}
        if missing:
            text = ", ".join(f"{count} of {split}" for split, count in missing.items())
            raise UserError(
                f"Member {member} has no outputs for {text} examples since its last checkpoint; "
                "update every example of every split before Recorder.checkpoint."
            )
        k = record.rows
        epoch = float(k if epoch is None else epoch)
        if k < len(self._epochs) and max(other.rows for other in self._members.values()) <= k:
            del self._epochs[k:], self._steps[k:]  # declared by a rewound run: no member holds it now
        if k < len(self._epochs):
            if self._epochs[k] != epoch or (step is not None and self._steps[k] not in (None, step)):
                raise UserError(
                    f"Checkpoint {k} of member {member} is at epoch {epoch:g} (step {step}) "
                    f"but other members have it at epoch {self._epochs[k]:g} "
                    f"(step {self._steps[k]}); record every member at the same checkpoints."
                )
        else:
            self._epochs.append(epoch)
            self._steps.append(step)
            self._declare()
        if k == record.capacity:
            record.resize(2 * k)
        record.append({split: row.values for split, row in rows.items()})
        record.commit()
        for row in rows.values():
            row.next_checkpoint()
        return k

    def _checkpoint_list(self) -> list[dict]:
        pairs = enumerate(zip(self._steps, self._epochs))
        return [{"index": i, "step": step, "epoch": epoch} for i, (step, epoch) in pairs]

    def _declare(self) -> None:
        """Write the checkpoint list to ``run.json`` before a new checkpoint's rows are committed,
        so a resumed Recorder knows the epoch and step of every committed row."""
        self.info = update_run(self.run_dir, checkpoints=self._checkpoint_list())

    def finish(self, memory_mb: float = DEFAULT_MEMORY_MB) -> Scores:
        """Cut the record files to size, write ``run.json`` and ``scores.parquet``; return the
        scores. At least 2 members, each with the same number of checkpoints (at least 2).
        The scores come from one streaming pass over the record, whose arrays stay within
        ``memory_mb`` (:mod:`scoring.stream`)."""
        for folder in (self.run_dir / "records").glob("member_*"):  # members another Recorder recorded here
            if folder.name[len("member_") :].isdigit():
                self._member(int(folder.name[len("member_") :]))
        counts = {member: record.rows for member, record in self._members.items()}
        if len(counts) < 2:
            raise UserError(
                f"Agreement needs at least 2 members, got {len(counts)}; record another member before finish."
            )
        if sorted(counts) != list(range(len(counts))):
            raise UserError(f"Members must be numbered 0..N-1, got {sorted(counts)}; record every member from 0.")
        if len(set(counts.values())) != 1 or min(counts.values()) < 2:
            raise UserError(
                f"Every member needs the same number of checkpoints, at least 2 (initialisation and one "
                f"more); they have {counts}."
            )
        for record in self._members.values():
            record.resize(record.rows)
        rows = min(counts.values())
        checkpoints = self._checkpoint_list()[:rows]
        self.info = update_run(self.run_dir, members=len(counts), checkpoints=checkpoints)
        scores, _ = write_scores(
            self.run_dir, self.info, self.labels, self.ids, self.hashes or None, memory_mb=memory_mb
        )
        self.info = update_run(self.run_dir, status="complete")
        return scores
