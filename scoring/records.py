"""The prediction record on disk: one folder per member, written as checkpoints are produced.

Layout of ``runs/<name>/``::

    run.json                         config, dataset, checkpoints, versions, status
    records/member_007/progress.json {"checkpoints": k}   (k rows of every array below are valid)
    records/member_007/train.pred.npy    int16   [k, M_train]  predicted label
    records/member_007/train.p_true.npy  float16 [k, M_train]  P(true class)
    records/member_007/train.el2n.npy    float16 [k, M_train]  ||softmax - onehot||_2
    records/member_007/test.*.npy        the same for the test split

Every file is written to a temporary name and moved into place with ``os.replace``, so a reader
never sees a partial file. ``progress.json`` is written last: a run killed between two array
writes leaves arrays one row ahead of the progress count, and readers (and a resumed run) use only
the committed rows. The ``.npy`` files can be memory-mapped (``np.load(..., mmap_mode="r")``).
This module is numpy-only; the training state a resumed member needs is the engine's business.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import UserError

FIELDS = {"pred": np.int16, "p_true": np.float16, "el2n": np.float16}
SPLITS = ("train", "test")
SCHEMA_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getbuffer())


def member_dir(run_dir: Path, member: int) -> Path:
    return Path(run_dir) / "records" / f"member_{member:03d}"


def _corrupt(path: Path, member: int) -> UserError:
    return UserError(
        f"Record file {path} is truncated or corrupt; delete the folder {path.parent} and run the same "
        f"command again to recompute member {member}."
    )


def committed_checkpoints(folder: Path, member: int) -> int:
    """How many checkpoints of the member stored in ``folder`` are committed (0 if none)."""
    progress = folder / "progress.json"
    if not progress.exists():
        return 0
    try:
        return int(json.loads(progress.read_text())["checkpoints"])
    except (ValueError, KeyError, TypeError):
        raise _corrupt(progress, member) from None


def _load_array(path: Path, member: int, rows: int, mmap: bool) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError):
        raise _corrupt(path, member) from None
    if array.ndim != 2 or array.shape[0] < rows:
        raise _corrupt(path, member)
    return array[:rows]


class MemberRecord:
    """Append-only record of one member: one row per checkpoint and split."""

    def __init__(self, run_dir: str | Path, member: int, sizes: dict[str, int]):
        self.member = member
        self.dir = member_dir(Path(run_dir), member)
        self.sizes = dict(sizes)
        self._rows: dict[tuple[str, str], list[np.ndarray]] = {}
        committed = self.committed()
        for split, size in self.sizes.items():
            for field, dtype in FIELDS.items():
                rows: list[np.ndarray] = []
                if committed:
                    array = _load_array(self._path(split, field), member, committed, mmap=False)
                    if array.shape[1] != size:
                        raise _corrupt(self._path(split, field), member)
                    rows = list(array.astype(dtype))
                self._rows[split, field] = rows

    def _path(self, split: str, field: str) -> Path:
        return self.dir / f"{split}.{field}.npy"

    def committed(self) -> int:
        """Number of checkpoints whose rows are complete on disk."""
        return committed_checkpoints(self.dir, self.member)

    def append(self, rows: dict[str, dict[str, np.ndarray]]) -> None:
        """Add one checkpoint: ``rows[split][field]`` is a vector over that split's examples.

        Arrays are rewritten whole (O(checkpoints x M) bytes), which keeps each file a plain
        memory-mappable ``.npy``; call :meth:`commit` afterwards to make the row visible.
        """
        for split, size in self.sizes.items():
            for field, dtype in FIELDS.items():
                row = np.asarray(rows[split][field]).astype(dtype, copy=False)
                if row.shape != (size,):
                    raise ValueError(f"{split}.{field} row has shape {row.shape}, expected ({size},)")
                self._rows[split, field].append(row)
                atomic_save_npy(self._path(split, field), np.stack(self._rows[split, field]))

    def commit(self) -> int:
        count = len(self._rows[next(iter(self._rows))])
        atomic_write_json(self.dir / "progress.json", {"checkpoints": count})
        return count


@dataclass(frozen=True)
class Record:
    """All members' predictions for one split: arrays of shape [N members, E checkpoints, M]."""

    pred: np.ndarray
    p_true: np.ndarray
    el2n: np.ndarray
    labels: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels[None, None, :]


def load_record(run_dir: str | Path, split: str, labels: np.ndarray, members: int, checkpoints: int) -> Record:
    """Read the committed record of every member; a missing or short member is an error."""
    run_dir = Path(run_dir)
    arrays: dict[str, list[np.ndarray]] = {field: [] for field in FIELDS}
    for member in range(members):
        folder = member_dir(run_dir, member)
        done = committed_checkpoints(folder, member)
        if done < checkpoints:
            raise UserError(
                f"Member {member} of {run_dir} has {done} of {checkpoints} checkpoints; run the score "
                f"command again with --out {run_dir} to finish it."
            )
        for field in FIELDS:
            array = _load_array(folder / f"{split}.{field}.npy", member, checkpoints, mmap=True)
            if array.shape[1] != len(labels):
                raise _corrupt(folder / f"{split}.{field}.npy", member)
            arrays[field].append(array)
    return Record(
        pred=np.stack(arrays["pred"]).astype(np.int64),
        p_true=np.stack(arrays["p_true"]).astype(np.float32),
        el2n=np.stack(arrays["el2n"]).astype(np.float32),
        labels=np.asarray(labels, dtype=np.int64),
    )


def read_run_info(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path} is corrupt; delete {run_dir} or pass another --out.") from None


def open_run(run_dir: str | Path, info: dict, *, write: bool) -> dict:
    """Start a run directory, or check that an existing one holds the same dataset and settings.

    ``info`` must carry ``dataset`` (with ``fingerprint``) and ``settings``; a directory that holds
    a different one is refused rather than overwritten. Only one process should ``write``.
    """
    run_dir = Path(run_dir)
    existing = read_run_info(run_dir)
    if existing is None:
        if run_dir.exists() and any(run_dir.iterdir()) and not (run_dir / "records").exists():
            raise UserError(f"Output directory {run_dir} is not empty and holds no run; pass another --out.")
        if write:
            atomic_write_json(run_dir / "run.json", {**info, "schema": SCHEMA_VERSION, "status": "running"})
        return info
    old_data, new_data = existing.get("dataset", {}), info["dataset"]
    if old_data.get("fingerprint") != new_data["fingerprint"]:
        raise UserError(
            f"Output directory {run_dir} holds a run of dataset '{old_data.get('name')}' "
            f"(another fingerprint); pass another --out or delete {run_dir}."
        )
    changed = sorted(
        key for key in set(existing.get("settings", {})) | set(info["settings"])
        if existing.get("settings", {}).get(key) != info["settings"].get(key)
    )
    if changed:
        raise UserError(
            f"Output directory {run_dir} holds a run with other settings ({', '.join(changed)}); "
            f"pass another --out or repeat the original settings to resume it."
        )
    return existing


def update_run(run_dir: str | Path, **fields: Any) -> dict:
    info = read_run_info(run_dir) or {}
    info.update(fields)
    atomic_write_json(Path(run_dir) / "run.json", info)
    return info
