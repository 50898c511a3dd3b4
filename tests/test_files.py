"""scoring.files: atomic writes with the umask, the directory lock, and I/O errors as sentences."""

import errno
import fcntl
import os
import socket
import subprocess
import sys

import pytest

from scoring.errors import CorruptFileError, UserError
from scoring.files import LOCK_NAME, atomic_write_bytes, locked, reading, umask, writing


def test_atomic_write_follows_the_umask_and_leaves_no_temporary(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "f.txt", b"hello")
    assert (tmp_path / "a" / "f.txt").read_bytes() == b"hello"
    assert (tmp_path / "a" / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask()
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.txt"]


def test_a_second_owner_is_refused_and_a_released_lock_is_taken_over(tmp_path):
    with locked(tmp_path / "d", "--out"):
        with pytest.raises(
            UserError, match=rf"d is in use by process {os.getpid()} on .*; wait for it .* or pass another --out"
        ):
            with locked(tmp_path / "d", "--out"):
                pass
    assert not (tmp_path / "d").exists()  # created by the lock and left empty: removed with it
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / LOCK_NAME).write_text("process 1 on gone\n")  # left by a killed owner: no OS lock
    with locked(tmp_path / "d", "--out"):
        assert (tmp_path / "d" / LOCK_NAME).read_text().startswith(f"process {os.getpid()} ")
    assert list((tmp_path / "d").iterdir()) == []


def test_without_flock_the_lock_file_is_the_lock(tmp_path, monkeypatch):
    """A filesystem that cannot flock (ENOLCK, as NFS without its lock daemon): the lock file,
    created exclusively, is the lock; one left by a dead process of this host is taken over, one
    of another host is refused with the file to delete."""

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    d = tmp_path / "d"
    with locked(d, "--out"):
        with pytest.raises(
            UserError,
            match=rf"in use by process {os.getpid()} on .*cannot lock files, so if that process "
            rf"has ended, delete {d / LOCK_NAME}\); wait for it",
        ):
            with locked(d, "--out"):
                pass
    assert not d.exists()
    d.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (d / LOCK_NAME).write_text(f"process {dead.pid} on {socket.gethostname()} (run 0123456789ab)\n")
    with locked(d, "--out"):
        assert (d / LOCK_NAME).read_text().startswith(f"process {os.getpid()} ")
    (d / LOCK_NAME).write_text("process 1 on another-host (run 0123456789ab)\n")
    with pytest.raises(UserError, match="in use by process 1 on another-host .*delete"):
        with locked(d, "--out"):
            pass
    assert (d / LOCK_NAME).exists()  # not ours to remove


def test_the_owner_removes_what_killed_writers_left(tmp_path):
    """Temporary files of atomic writes a kill interrupted, anywhere below the directory; nothing else."""
    d = tmp_path / "d"
    (d / "records" / "member_000").mkdir(parents=True)
    torn = [d / ".run.json.k2j3.tmp", d / "records" / "member_000" / ".state_0001.pt.x8f.tmp"]
    kept = [d / "run.json", d / "records" / "member_000" / "state_0001.pt", d / "notes.tmp"]
    for path in torn + kept:
        path.write_bytes(b"x")
    with locked(d, "--out"):
        pass
    assert [path.exists() for path in torn + kept] == [False, False, True, True, True]


def test_a_file_is_not_a_directory_to_own(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder; pass another --run"):
        with locked(tmp_path / "f", "--run"):
            pass


@pytest.mark.parametrize(
    "code, message",
    [
        (errno.ENOSPC, "the disk is full or a file-size limit was reached"),
        (errno.EFBIG, "the disk is full or a file-size limit was reached"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_write_errors_become_sentences(tmp_path, code, message):
    with pytest.raises(UserError, match=message):
        with writing(tmp_path / "x"):
            raise OSError(code, os.strerror(code))


def test_read_errors_tell_permission_from_damage(tmp_path):
    with pytest.raises(CorruptFileError, match="x is truncated or corrupt; delete it"):
        with reading(tmp_path / "x", "delete it"):
            raise ValueError("bad bytes")
    with pytest.raises(UserError, match="permission denied") as info:
        with reading(tmp_path / "x", "delete it"):
            raise PermissionError(errno.EACCES, "denied")
    assert not isinstance(info.value, CorruptFileError)
