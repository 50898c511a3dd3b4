"""Shared fixtures: a subprocess runner for the CLI and one small finished score run on digits."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curriculum.training.launch import free_port  # noqa: F401 (for the tests that start torchrun)

ROOT = Path(__file__).resolve().parents[1]
# One process, as a plain run was before --processes: launching workers costs seconds on 2 shared cores.
SMALL_SCORE = [
    "--dataset",
    "digits",
    "--members",
    "3",
    "--epochs",
    "2",
    "--eval-every",
    "0.5",
    "--quiet",
    "--processes",
    "1",
]
TINY_SCORE = [
    "--dataset",
    "digits",
    "--members",
    "2",
    "--epochs",
    "1",
    "--eval-every",
    "0.5",
    "--quiet",
    "--processes",
    "1",
]


def bench_scoring():
    """experiments/bench_scoring.py, which keeps the in-memory way of scoring a record: the tests'
    reference (``load_record`` reads a whole small record into [N, E, M] arrays)."""
    spec = importlib.util.spec_from_file_location("bench_scoring", ROOT / "experiments" / "bench_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_record(run_dir, split, labels, members, checkpoints):
    """A small record as whole arrays (``pred``, ``p_true``, ``el2n``, ``labels``, ``correct``)."""
    return bench_scoring().load_record(run_dir, split, labels, members, checkpoints)


def cli_env(tmp: Path) -> dict:
    """One thread per process (so records do not depend on the thread count) and a private cache."""
    env = dict(
        os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CURRICULUM_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1"
    )
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(args, tmp: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "curriculum", *map(str, args)],
        cwd=tmp,
        env=cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_clis(commands, tmp: Path) -> list[subprocess.CompletedProcess]:
    """Several CLI runs at once (one thread each, so two fill the 2 cores); every one must succeed."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "curriculum", *map(str, args)],
            cwd=tmp,
            env=cli_env(tmp),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    done = [subprocess.CompletedProcess(proc.args, 0, *proc.communicate(timeout=600)) for proc in procs]
    for proc, result in zip(procs, done):
        if proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return done


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
    out = run_cli(["score", *[a for a in TINY_SCORE if a != "--quiet"], "--record-probs", "--out", tmp / "run"], tmp)
    (tmp / "run" / "stdout.txt").write_text(out.stdout)
    return tmp / "run"


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process ``pid`` started, and theirs (from /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def kill_all(pid: int, timeout: float = 60) -> None:
    """SIGKILL ``pid`` and every process it started, and wait until each has ended. A launcher's
    workers may live in sessions of their own (torchrun's do), so killing its process group misses
    them, and a rerun started before they are gone finds the run directory still in use."""
    pids = [pid, *descendants(pid)]
    for victim in pids:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while any(map(running, pids)):
        assert time.time() < deadline, f"processes {[p for p in pids if running(p)]} outlived SIGKILL"
        time.sleep(0.02)
