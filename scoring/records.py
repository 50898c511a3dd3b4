"""The prediction record on disk: one folder per member, written as checkpoints are produced.

Layout of ``runs/<name>/``::

    run.json                         config, dataset, checkpoints, versions, status
    records/member_007/progress.json {"checkpoints": k}   (k rows of every array below are valid)
    records/member_007/train.pred.npy    int16   [E, M_train]  predicted label (first k rows valid)
    records/member_007/train.p_true.npy  float16 [E, M_train]  P(true class)
    records/member_007/train.el2n.npy    float16 [E, M_train]  ||softmax - onehot||_2
    records/member_007/test.*.npy        the same for the test split
    records/member_007/train.probs.npy   float16 [E, M_train, K] class probabilities (only when
                                         asked for: --record-probs / Recorder(record_probs=True))

The arrays are allocated at their full size ``[checkpoints, M]`` when a member starts (every
byte reserved on disk, so a disk that fills up fails there, with an error, rather than in the
in-place write, where the memory map would kill the process) and filled one row per checkpoint in
place; ``progress.json`` (written atomically, after the rows are
flushed) says how many rows are complete, and readers and a resumed run use only those. Readers
take a block of rows at a time (:class:`RecordFile`), never a whole ``[members, checkpoints,
examples]`` array: :mod:`scoring.stream` scores a record in one such pass. A run
killed mid-row leaves that row uncommitted, to be rewritten on resume. Every other file is
written to a temporary name and moved into place (:mod:`scoring.files`), so no reader sees a
partial one. The ``.npy`` files can also be memory-mapped (``np.load(..., mmap_mode="r")``).
This module is numpy-only; the training state a resumed member needs is the engine's business.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import CorruptFileError, UserError
from scoring.files import LOCK_NAME, TEMP_SUFFIX, atomic_write_json, make_dir, preallocate, read_json, reading, writing

FIELDS = {"pred": np.int16, "p_true": np.float16, "el2n": np.float16}
PROBS = "probs"  # the optional [E, M, K] float16 field
SPLITS = ("train", "test")
SCHEMA_VERSION = 1


def default_run_dir(dataset_name: str) -> Path:
    """``runs/<dataset>``, with characters a path cannot hold replaced."""
    safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in dataset_name)
    return Path("runs") / safe


def member_dir(run_dir: Path, member: int) -> Path:
    return Path(run_dir) / "records" / f"member_{member:03d}"


def _recompute(folder: Path, member: int) -> str:
    return f"delete the folder {folder} and run the same command again to recompute member {member}"


def _corrupt(path: Path, member: int) -> UserError:
    return CorruptFileError(f"Record file {path} is truncated or corrupt; {_recompute(path.parent, member)}.")


def committed_checkpoints(folder: Path, member: int, checkpoints: int) -> int:
    """How many of the ``checkpoints`` rows of the member stored in ``folder`` are committed."""
    progress = folder / "progress.json"
    if not progress.exists():
        return 0
    with reading(progress, _recompute(folder, member), errors=(OSError, ValueError, KeyError, TypeError)):
        done = int(json.loads(progress.read_text())["checkpoints"])
        if not 0 <= done <= checkpoints:
            raise ValueError(f"{done} of {checkpoints} checkpoints")
    return done


def _check_npy(path: Path, member: int, shape: tuple[int, ...], dtype: type) -> None:
    """Refuse a ``.npy`` whose header or size is not that of a complete ``shape`` array (opening
    a short file for writing would silently pad it with zeros)."""
    with reading(path, _recompute(path.parent, member)):
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            header = read(handle)
            offset = handle.tell()
    stored_shape, _, stored_dtype = header
    complete = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    if stored_shape != shape or stored_dtype != np.dtype(dtype) or path.stat().st_size != complete:
        raise _corrupt(path, member)


def record_arrays(
    sizes: dict[str, int], checkpoints: int, num_classes: int | None = None
) -> dict[tuple[str, str], tuple[tuple[int, ...], type]]:
    """Shape and dtype of each ``(split, field)`` array of a member's record: [checkpoints, M], and
    [checkpoints, M, K] for the class probabilities kept when ``num_classes`` is given."""
    fields = {**FIELDS, **({PROBS: np.float16} if num_classes else {})}
    return {
        (split, field): ((checkpoints, size, num_classes) if field == PROBS else (checkpoints, size), dtype)
        for split, size in sizes.items()
        for field, dtype in fields.items()
    }


def check_records(run_dir: str | Path, info: dict) -> None:
    """Refuse, with the sentence a resumed run would give, a member record of the run described
    by ``info`` (its run.json) whose progress file is damaged or whose committed arrays are not
    whole: what a launcher checks once, before it starts the processes that would resume it."""
    checkpoints, sizes = len(info["checkpoints"]), info["dataset"]["sizes"]
    classes = len(info["dataset"]["classes"]) if info.get("settings", {}).get("record_probs") else None
    for member in range(int(info["members"])):
        folder = member_dir(Path(run_dir), member)
        if folder.is_dir() and committed_checkpoints(folder, member, checkpoints):
            for (split, field), (shape, dtype) in record_arrays(sizes, checkpoints, classes).items():
                _check_npy(folder / f"{split}.{field}.npy", member, shape, dtype)


def _open_array(path: Path, shape: tuple[int, ...], dtype: type, create: bool) -> np.ndarray:
    """Memory-map a record array, with every byte of it allocated on disk (see :func:`preallocate`)."""
    with writing(path):
        array = np.lib.format.open_memmap(path, mode="w+" if create else "r+", dtype=dtype, shape=shape)
        with open(path, "r+b") as handle:
            preallocate(handle.fileno(), path.stat().st_size)
    return array


class MemberRecord:
    """Record of one member: a preallocated [checkpoints, M] array per split and field (and
    [checkpoints, M, K] probabilities when ``num_classes`` is given), filled one row per
    checkpoint in place (O(M) bytes a checkpoint, whatever the number of checkpoints)."""

    def __init__(
        self, run_dir: str | Path, member: int, sizes: dict[str, int], checkpoints: int, num_classes: int | None = None
    ):
        self.member = member
        self.dir = member_dir(Path(run_dir), member)
        make_dir(self.dir)
        self.sizes = dict(sizes)
        self.rows = committed_checkpoints(self.dir, member, checkpoints)
        self._flushed = self.rows  # rows below this are on disk
        self.fields = {**FIELDS, **({PROBS: np.float16} if num_classes else {})}
        self.num_classes = num_classes
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        for (split, field), (shape, dtype) in record_arrays(self.sizes, checkpoints, num_classes).items():
            path = self._path(split, field)
            if self.rows:
                _check_npy(path, member, shape, dtype)
            self._arrays[split, field] = _open_array(path, shape, dtype, create=not self.rows)

    def _shape(self, checkpoints: int, split: str, field: str) -> tuple[int, ...]:
        return record_arrays(self.sizes, checkpoints, self.num_classes)[split, field][0]

    @property
    def capacity(self) -> int:
        """Checkpoints the files have room for."""
        return next(iter(self._arrays.values())).shape[0]

    def resize(self, checkpoints: int) -> None:
        """Reallocate every file to ``checkpoints`` rows, keeping the committed ones (for a
        writer that does not know the number of checkpoints in advance). Each file is swapped in
        atomically, so a reader sees the committed rows throughout."""
        if checkpoints < self.rows:
            raise ValueError(f"cannot shrink to {checkpoints} rows below the {self.rows} written")
        for (split, field), old in self._arrays.items():
            old.flush()
            path = self._path(split, field)
            tmp = path.with_name(f".{path.name}.resize{TEMP_SUFFIX}")  # a killed resize leaves it for the next owner
            new = _open_array(tmp, self._shape(checkpoints, split, field), old.dtype, create=True)
            step = max(1, (64 << 20) // max(1, old[:1].nbytes))  # rows of 64 MB at a time: memory stays bounded
            for first in range(0, self.rows, step):
                new[first : min(self.rows, first + step)] = old[first : min(self.rows, first + step)]
                new.flush()
            del new, old
            os.replace(tmp, path)
            self._arrays[split, field] = np.lib.format.open_memmap(path, mode="r+")

    def _path(self, split: str, field: str) -> Path:
        return self.dir / f"{split}.{field}.npy"

    def committed(self) -> int:
        """Number of checkpoints whose rows are complete on disk."""
        return committed_checkpoints(self.dir, self.member, self.capacity)

    def append(self, rows: dict[str, dict[str, np.ndarray]]) -> None:
        """Write the next checkpoint's row: ``rows[split][field]`` is a vector over that split's
        examples. It becomes visible to readers (and to a resumed run) only with :meth:`commit`."""
        if self.rows >= self.capacity:
            raise ValueError(f"member {self.member}: all {self.capacity} checkpoints are written")
        for (split, field), array in self._arrays.items():
            row = np.asarray(rows[split][field])
            if row.shape != array.shape[1:]:
                raise ValueError(f"{split}.{field} row has shape {row.shape}, expected {array.shape[1:]}")
            array[self.rows] = row
        self.rows += 1

    def commit(self) -> int:
        """Flush the rows written since the last commit to disk, then record how many are complete
        (written last, atomically). Only those rows' pages are synced, not the whole file."""
        for (split, field), array in self._arrays.items():
            with writing(self._path(split, field)):
                _flush_rows(array, self._flushed, self.rows)
        self._flushed = self.rows
        atomic_write_json(self.dir / "progress.json", {"checkpoints": self.rows})
        return self.rows


def _flush_rows(array: np.memmap, start: int, stop: int) -> None:
    """Sync rows ``start`` to ``stop - 1`` of a memory-mapped array to its file: the pages that
    hold them, not the whole mapping (whose sync costs grow with the file)."""
    if stop <= start:
        return
    handle = getattr(array, "_mmap", None)
    row = array.strides[0]
    if handle is None or not array.flags.c_contiguous:
        array.flush()
        return
    base = np.frombuffer(handle, dtype=np.uint8, count=0).__array_interface__["data"][0]
    first = array.__array_interface__["data"][0] - base + start * row  # byte offset in the mapping
    begin = first - first % mmap.PAGESIZE
    handle.flush(begin, first + (stop - start) * row - begin)


class RecordFile:
    """One member's committed ``[checkpoints, M(, K)]`` array of one split and field, read a block
    of rows (and a range of examples) at a time with plain file reads.

    Plain reads, not a memory map: the pages a map touches count towards the process's memory
    until it is unmapped, so reading a large record through one would hold all of it; here only
    the block asked for is in memory. Opening checks the header and the file size, so a
    truncated file is refused before any row is used.
    """

    def __init__(self, path: Path, member: int, checkpoints: int, examples: int | None):
        self.path, self.member, self.checkpoints = path, member, checkpoints
        with reading(path, _recompute(path.parent, member)):
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(handle)
                self.offset = handle.tell()
            size = path.stat().st_size
        if fortran or len(shape) not in (2, 3) or shape[0] < checkpoints or shape[1] != (examples or shape[1]):
            raise _corrupt(path, member)
        if size != self.offset + int(np.prod(shape)) * dtype.itemsize:
            raise _corrupt(path, member)
        self.dtype, self.width = dtype, shape[1]
        self.item_shape = tuple(shape[2:])  # (K,) for class probabilities
        self.item_bytes = int(np.prod(self.item_shape, dtype=np.int64)) * dtype.itemsize

    def read(self, start: int, stop: int, columns: slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` (committed checkpoints only) of the examples ``columns`` (a step-1
        slice), as a new array or into the first rows of ``out``."""
        if not 0 <= start <= stop <= self.checkpoints:
            raise IndexError(f"rows {start}:{stop} of {self.checkpoints} committed")
        first, last, _ = columns.indices(self.width)
        count = max(0, last - first)
        out = np.empty((stop - start, count, *self.item_shape), self.dtype) if out is None else out[: stop - start]
        row_bytes = self.width * self.item_bytes
        with (
            reading(self.path, _recompute(self.path.parent, self.member)),
            open(self.path, "rb", buffering=0) as handle,
        ):
            if count == self.width:  # whole rows: one contiguous read
                self._pread(handle.fileno(), out, self.offset + start * row_bytes)
            else:
                for i, row in enumerate(range(start, stop)):
                    self._pread(handle.fileno(), out[i], self.offset + row * row_bytes + first * self.item_bytes)
        return out

    def _pread(self, fd: int, target: np.ndarray, offset: int) -> None:
        view = memoryview(target).cast("B")
        done = 0
        while done < len(view):  # a large read may return in parts
            got = os.preadv(fd, [view[done:]], offset + done)
            if got <= 0:
                raise _corrupt(self.path, self.member)
            done += got


def check_complete(run_dir: str | Path, members: int, checkpoints: int) -> None:
    """Refuse a record in which a member is missing or has fewer committed checkpoints."""
    run_dir = Path(run_dir)
    for member in range(members):
        done = committed_checkpoints(member_dir(run_dir, member), member, checkpoints)
        if done < checkpoints:
            raise UserError(
                f"Member {member} of {run_dir} has {done} of {checkpoints} checkpoints; run the score "
                f"command again with --out {run_dir} to finish it."
            )


def open_field(run_dir: str | Path, split: str, field: str, member: int, checkpoints: int, examples: int) -> RecordFile:
    """The committed rows of one member's ``split.field.npy`` (check the record with
    :func:`check_complete` first)."""
    return RecordFile(member_dir(Path(run_dir), member) / f"{split}.{field}.npy", member, checkpoints, examples)


def open_probs(
    run_dir: str | Path, split: str, member: int, checkpoints: int, examples: int | None = None
) -> RecordFile:
    """One member's committed class probabilities of ``split``: float16 rows [M, K] (of
    ``examples`` examples, when given, else as many as the file holds)."""
    path = member_dir(Path(run_dir), member) / f"{split}.{PROBS}.npy"
    if not path.exists():
        raise UserError(
            f"{Path(run_dir)} holds no class probabilities; run `curriculum score` with "
            "--record-probs (or Recorder(record_probs=True)) to keep them."
        )
    probs = RecordFile(path, member, checkpoints, examples)
    if len(probs.item_shape) != 1:
        raise _corrupt(path, member)
    return probs


def record_bytes(members: int, checkpoints: int, sizes: dict[str, int], num_classes: int | None = None) -> int:
    """Disk size of a whole run's record: 6 bytes an entry (int16 label, float16 P(true class)
    and EL2N), and 2 * K more with the class probabilities."""
    per_entry = sum(np.dtype(dtype).itemsize for dtype in FIELDS.values()) + (2 * num_classes if num_classes else 0)
    return per_entry * members * checkpoints * sum(sizes.values())


def _size(count: float) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def plan_disk(
    run_dir: str | Path,
    members: int,
    checkpoints: int,
    sizes: dict[str, int],
    num_classes: int,
    record_probs: bool,
) -> str:
    """The sentence that states the record's size on disk before anything is trained; refuses
    (one sentence, nothing written) when the disk under ``run_dir`` cannot hold what is not
    allocated yet (the files of a run being resumed are allocated already)."""
    run_dir = Path(run_dir)
    base = record_bytes(members, checkpoints, sizes)
    probs = record_bytes(members, checkpoints, sizes, num_classes) - base
    total = base + (probs if record_probs else 0)
    shape = f"{members} members x {checkpoints} checkpoints x {sum(sizes.values())} examples"
    statement = (
        f"The record takes {_size(total)} on disk ({shape}, 6 bytes an entry"
        + (
            f", of which {_size(probs)} are the class probabilities of --record-probs"
            if record_probs
            else f"; --record-probs would add {_size(probs)} for the {num_classes} class probabilities"
        )
        + ")."
    )
    held = (
        sum(f.stat().st_blocks * 512 for f in (run_dir / "records").glob("member_*/*.npy"))
        if (run_dir / "records").is_dir()
        else 0
    )
    existing = next(p for p in (run_dir, *run_dir.absolute().parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if total - held > free:
        raise UserError(
            f"{statement[:-1]}, but {existing} has {_size(free)} free; free space, pass another --out, or "
            "record fewer members or checkpoints (--eval-every)"
            + (" or drop --record-probs" if record_probs else "")
            + "."
        )
    return statement


def read_run_info(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return None
    return read_json(path, f"delete {run_dir} (its records cannot be trusted without it) or pass another --out")


def _describe(compute: dict | None) -> str:
    return (
        ", ".join(f"{key} {value}" for key, value in sorted(compute.items()))
        if compute
        else "an unrecorded device and thread count"
    )


def open_run(run_dir: str | Path, info: dict, *, write: bool) -> dict:
    """Start a run directory, or check that an existing one holds the same dataset and settings.

    ``info`` must carry ``dataset`` (with ``fingerprint``), ``settings`` and ``compute`` (device
    and thread count, which change the numbers); a directory that holds a different one is refused
    rather than overwritten or mixed, except a run marked diverged, which starts afresh under the
    new settings. Only one process should ``write``.
    """
    run_dir = Path(run_dir)
    existing = read_run_info(run_dir)
    diverged = existing is not None and existing.get("status") == "diverged"
    if diverged and write:
        # A diverged run's records end in the step that broke; nothing in it is worth resuming.
        shutil.rmtree(run_dir / "records", ignore_errors=True)
    if existing is None or diverged:
        if not diverged:
            check_new_run_dir(run_dir)
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
        key
        for key in set(existing.get("settings", {})) | set(info["settings"])
        if existing.get("settings", {}).get(key) != info["settings"].get(key)
    )
    if changed:
        raise UserError(
            f"Output directory {run_dir} holds a run with other settings ({', '.join(changed)}); "
            f"pass another --out or repeat the original settings to resume it."
        )
    if existing.get("compute") != info["compute"]:
        raise UserError(
            f"Run {run_dir} was recorded with {_describe(existing.get('compute'))}, and finishing it with "
            f"{_describe(info['compute'])} would give a record that matches neither; resume it where it started "
            f"or pass another --out."
        )
    return existing


def check_new_run_dir(run_dir: Path) -> None:
    """Refuse to start a run in a directory that holds records without a run.json, or other files."""
    if (run_dir / "records").exists():
        raise UserError(
            f"Run directory {run_dir} holds records but no run.json, so the settings they were made with are "
            f"unknown; delete {run_dir / 'records'} (or pass another --out) and run the command again."
        )
    if run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise UserError(f"Output directory {run_dir} is not empty and holds no run; pass another --out.")


def update_run(run_dir: str | Path, **fields: Any) -> dict:
    info = read_run_info(run_dir) or {}
    info.update(fields)
    atomic_write_json(Path(run_dir) / "run.json", info)
    return info
