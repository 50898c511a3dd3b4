"""File safety in one place: atomic writes, the directory lock, and one-sentence I/O errors.

- :func:`atomic_write` writes to a temporary name and renames it into place, so a reader
  sees the old file or the whole new one; the file gets the user's umask like any other tool's
  (``mkstemp`` alone would create it 0600, unreadable to a colleague sharing the run).
- :func:`locked` makes one process at a time the owner of a directory, through ``flock`` on
  ``<dir>/.lock`` (which names the holder): the OS drops the lock when its process dies, so a lock
  left by a killed run is taken over safely. On a filesystem without ``flock`` (some network
  mounts) the lock file itself is the lock, and one left by a dead process of this host is taken
  over. The new owner removes the temporary files a killed writer left (:func:`remove_leftovers`).
- :func:`updating` serialises a short read-modify-write of a file that several stages extend (a
  run's ``report.md``): it waits for ``flock`` on the directory itself, so it never collides
  with :func:`locked` (which refuses a second owner of the whole run instead of waiting).
- :func:`writing` and :func:`reading` turn an ``OSError`` into a :class:`UserError` that says what
  went wrong with which file and how to fix it: a full disk or file-size limit, a permission, or a
  damaged file. A full disk fails only that write; the caller's atomic writes and commit order
  keep every file whole, so a rerun after freeing space resumes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from scoring.errors import CorruptFileError, UserError

LOCK_NAME = ".lock"
TEMP_SUFFIX = ".tmp"  # every temporary name a writer here uses: .<name>.<random>.tmp
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}  # a filesystem that cannot flock
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_UMASK: int | None = None


def umask() -> int:
    """The process umask (read once: Python can only read it by setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Report a failed write to ``path`` as one sentence naming the cause and the fix."""
    try:
        yield
    except OSError as err:
        if err.errno in _NO_SPACE:
            raise UserError(
                f"Could not write {path}: the disk is full or a file-size limit was reached; free space "
                "(or raise the limit) and run the same command again to continue."
            ) from None
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise UserError(
                f"Could not write {path}: permission denied; fix the folder's permissions or choose another output."
            ) from None
        if err.errno in (errno.ENOTDIR, errno.EEXIST):
            raise UserError(
                f"Could not write {path}: part of the path is a file, not a folder; choose another output."
            ) from None
        raise


@contextmanager
def reading(
    path: Path, fix: str, errors: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError)
) -> Iterator[None]:
    """Report a failed read of ``path``: a permission problem says so; anything else in ``errors``
    means a damaged file, whose ``fix`` (e.g. "delete it and run ... again") the sentence names."""
    try:
        yield
    except UserError:
        raise
    except PermissionError:
        raise UserError(
            f"Could not read {path}: permission denied; ask its owner to make it readable to you (chmod g+r) or copy it."
        ) from None
    except errors:
        raise CorruptFileError(f"{path} is truncated or corrupt; {fix}.") from None


def make_dir(path: Path) -> None:
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path`` and rename it into place, so
    that readers see either the old file or the whole new one."""
    path = Path(path)
    make_dir(path.parent)
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o666 & ~umask())
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, fix: str) -> Any:
    """The JSON in ``path``; a damaged or unreadable file is a one-sentence error naming ``fix``."""
    with reading(path, fix):
        return json.loads(Path(path).read_text())


def preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes on disk for an open file, so that later in-place writes through a
    memory map cannot fault (SIGBUS) on a full disk: the disk fills here, as an ``OSError``."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    chunk = bytes(1 << 20)  # no fallocate (macOS): writing zeros allocates the blocks too
    for start in range(0, size, len(chunk)):
        os.pwrite(fd, chunk[: min(len(chunk), size - start)], start)


@contextmanager
def locked(directory: Path, option: str) -> Iterator[None]:
    """Own ``directory`` (created if needed) until the block ends or the process dies.

    A second owner is refused with one sentence naming the holder; ``option`` is the flag that
    chooses another directory. The lock file names the holder (:func:`holder`, read back by a
    launcher's other processes to check that they see the same directory). Taking the directory
    removes what a killed owner left half-written (:func:`remove_leftovers`). The lock file is
    removed on release (a killed owner leaves it behind, unlocked, for the next one to take over),
    and so is the directory if this call created it and nothing was written into it.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file, not a folder; pass another {option}.")
    created = not directory.exists()
    make_dir(directory)
    path = directory / LOCK_NAME
    line = f"process {os.getpid()} on {socket.gethostname()} (run {uuid.uuid4().hex[:12]})"
    fd, flocked = _lock_file(path, directory, option)
    try:
        with writing(path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{line}\n".encode(), 0)
        remove_leftovers(directory)
        yield
    finally:
        if flocked or holder(directory) == line:  # without flock: only a file that is still ours
            path.unlink(missing_ok=True)  # while still locked: a waiting opener sees the inode change
        os.close(fd)
        if created:
            try:
                directory.rmdir()
            except OSError:  # results were written: keep them
                pass


def holder(directory: Path) -> str | None:
    """Who owns ``directory`` by :func:`locked` (its lock file's line), or None."""
    try:
        return (Path(directory) / LOCK_NAME).read_text(errors="replace").strip() or None
    except OSError:
        return None


def remove_leftovers(directory: Path) -> None:
    """Remove the temporary files (``.<name>.<random>.tmp``) that writers killed in the middle of a
    write left in ``directory`` and below. Only the owner of the directory (:func:`locked`) may,
    and only while it also holds :func:`updating`, which the stages that add to a file of a
    directory they do not own (a run's report.md) take around their write."""
    with updating(directory):
        for path in directory.rglob(f".*{TEMP_SUFFIX}"):
            if path.is_file():
                path.unlink(missing_ok=True)


@contextmanager
def updating(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` for a read-modify-write of a file in it; a second
    process waits until the first has renamed its new version into place. On a filesystem
    without ``flock`` this serialises nothing (the owner's lock still keeps runs apart)."""
    with writing(directory):
        fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                raise
        yield
    finally:
        os.close(fd)


def _in_use(directory: Path, who: str, option: str, hint: str = "") -> UserError:
    return UserError(
        f"{directory} is in use by {who}{hint}; wait for it to finish (or stop it) and run the command "
        f"again, or pass another {option}."
    )


def _lock_file(path: Path, directory: Path, option: str) -> tuple[int, bool]:
    """An open descriptor of ``path`` that makes this process the owner, and whether ``flock``
    holds it. With ``flock``, retried when its owner removed the file between our open and our
    lock (we would hold a lock on a file nobody else can find). Without, the file is the lock:
    created here exclusively, or left by a process of this host that no longer runs."""
    while True:
        with writing(path):
            try:
                fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), True
            except FileExistsError:
                try:
                    fd, created = os.open(path, os.O_RDWR), False
                except FileNotFoundError:  # its owner just released it
                    continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise _in_use(directory, who, option) from None
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                os.close(fd)
                raise
            if created:
                return fd, False
            who = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            if _dead_here(who):
                path.unlink(missing_ok=True)
                continue
            raise _in_use(
                directory,
                who or "another process",
                option,
                f" (this filesystem cannot lock files, so if that process has ended, delete {path})",
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd, True
        except FileNotFoundError:
            pass
        os.close(fd)


def _dead_here(who: str) -> bool:
    """Whether a lock file's line names a process of this host that no longer runs."""
    parts = who.split()
    if len(parts) < 4 or parts[0] != "process" or parts[2] != "on" or not parts[1].isdigit():
        return False
    if parts[3] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
