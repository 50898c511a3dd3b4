"""Shared fixtures: a subprocess runner for the CLI and one small finished score run on digits."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL_SCORE = ["--dataset", "digits", "--members", "3", "--epochs", "2", "--eval-every", "0.5", "--quiet"]


def cli_env(tmp: Path) -> dict:
    """One thread per process (so records do not depend on the thread count) and a private cache."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CURRICULUM_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    """A TCP port nobody listens on now, for torchrun's rendezvous (a fixed one collides with
    other test runs on the same machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(args, tmp: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "curriculum", *map(str, args)],
        cwd=tmp, env=cli_env(tmp), capture_output=True, text=True, timeout=600, **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def score_run(tmp_path_factory) -> Path:
    """A finished 3-member run on digits (2 epochs, a checkpoint every half epoch)."""
    tmp = tmp_path_factory.mktemp("score")
    run_cli(["score", *SMALL_SCORE, "--out", tmp / "run"], tmp)
    return tmp / "run"


@pytest.fixture(scope="session")
def probs_run(tmp_path_factory) -> Path:
    """A finished 2-member run on digits that keeps class probabilities (1 epoch, 3 checkpoints)."""
    tmp = tmp_path_factory.mktemp("probs")
    out = run_cli(["score", "--dataset", "digits", "--members", "2", "--epochs", "1", "--eval-every", "0.5", "--record-probs",
                   "--out", tmp / "run"], tmp)
    (tmp / "run" / "stdout.txt").write_text(out.stdout)
    return tmp / "run"
