"""``curriculum score --processes N``: a plain command that uses every CPU core.

On the CPU every process computes with one thread, so that a record does not depend on the layout
(:func:`curriculum.training.engine.make_accelerator`); a plain run is then one process on one core. Members
are independent and the score stage already spreads them over launched processes, so all a plain
command needs is a launcher: :func:`launch` starts N workers of the same command with the env://
rendezvous ``torchrun`` sets up, and Accelerate joins them exactly as under ``torchrun``.

One voice: only rank 0 writes to the terminal. The stderr of another rank is kept and shown when
that rank failed with something rank 0 did not say (a traceback, or an error of its own members).
A signal to the launcher is passed on to every worker, and on Linux a worker dies with its launcher
even when that is killed outright, so no orphan keeps training into the run directory.

Torch-free, but for asking whether a GPU is present when that decides.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from curriculum.config.stages import ScoreConfig
from scoring.errors import UserError

GPU_DRIVERS = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # NVIDIA, AMD (ROCm), WSL: where torch.cuda may find one
PR_SET_PDEATHSIG = 1
GRACE_S = 3.0  # after a worker fails, how long the others may take to end on their own


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def processes_to_launch(config: ScoreConfig) -> int:
    """How many workers this command launches; 1: it trains in this process.

    ``auto`` is one worker per usable core, at most one per member, on the CPU and when no launcher
    started this process; under a launcher or on a GPU the launcher decides the layout, so an
    explicit count there is refused.
    """
    wanted = None if config.processes == "auto" else int(config.processes)
    if wanted == 1:
        return 1
    if "WORLD_SIZE" in os.environ:
        if wanted is not None:
            raise UserError(f"--processes {wanted} cannot be combined with a launcher (WORLD_SIZE is set); drop "
                            "--processes and give the process count to torchrun / accelerate launch.")
        return 1
    if _on_gpu(config):
        if wanted is not None:
            raise UserError(f"--processes {wanted} starts CPU processes; on GPUs launch with `accelerate launch "
                            f"--num_processes {wanted} -m curriculum score` or torchrun, or pass --cpu.")
        return 1
    return wanted or min(usable_cores(), config.members)


def _on_gpu(config: ScoreConfig) -> bool:
    """Whether the run would train on a GPU. Only where a GPU driver shows (on Linux, its device
    node) is torch, 2 s to import, asked."""
    if config.cpu or (sys.platform == "linux" and not any(map(os.path.exists, GPU_DRIVERS))):
        return False
    import torch

    return torch.cuda.is_available()


def free_port() -> int:
    """A TCP port nobody listens on now, for the rendezvous (a fixed one collides with other runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGTERM when the launcher dies (Linux ``PR_SET_PDEATHSIG``)."""
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def launch(processes: int, argv: Sequence[str]) -> int:
    """Run ``curriculum <argv>`` as ``processes`` workers and return the exit status: 0, or that of
    the first worker to fail. The workers see WORLD_SIZE, so their ``--processes auto`` leaves the
    layout to this launcher."""
    port = str(free_port())
    logs = [tempfile.TemporaryFile() for _ in range(processes - 1)]
    workers: list[subprocess.Popen] = []

    def forward(signum, frame):
        for worker in workers:
            worker.send_signal(signum)  # a no-op for one that has ended

    handlers = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for rank in range(processes):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes),
                   LOCAL_WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1")
        output = {} if rank == 0 else {"stdout": subprocess.DEVNULL, "stderr": logs[rank - 1]}
        # Its own session: a Ctrl-C reaches the launcher only, which passes it on once.
        workers.append(subprocess.Popen([sys.executable, "-m", "curriculum", *argv, "--processes", "auto"], env=env,
                                        start_new_session=True, **output,
                                        preexec_fn=_die_with_parent if sys.platform == "linux" else None))
    try:
        codes, first, stopped = _wait(workers)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    rank0 = None if 0 in stopped else codes[0]
    for rank, log in enumerate(logs, start=1):
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
        # Not what rank 0 said too: the same status without a traceback (an error all share, an interrupt).
        if codes[rank] and rank not in stopped and (codes[rank] != rank0 or "Traceback" in text):
            sys.stderr.write(text if text.strip() else f"curriculum score: process {rank} ended with status {codes[rank]}\n")
    code = 0 if first is None else codes[first]
    return 128 - code if code < 0 else code


def leave_process_group() -> None:
    """Destroy the process group this worker joined, before it exits on an error: left to the
    interpreter's exit, torch's teardown of its threads can abort the process (status 134)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _wait(workers: list[subprocess.Popen]) -> tuple[list[int], int | None, set[int]]:
    """Wait for every worker: their exit codes, the rank that failed first, and the ranks this
    stopped. Once one fails the rest are stopped, at once if it was rank 0 (which said what went
    wrong), else after ``GRACE_S``, so that a failure all ranks share ends rank 0 too, in its words."""
    first, deadline, stopped = None, None, set()
    while True:
        codes = [worker.poll() for worker in workers]
        if first is None and any(codes):
            first = next(rank for rank, code in enumerate(codes) if code)
            deadline = time.monotonic() + (0 if first == 0 else GRACE_S)
        if None not in codes:
            return codes, first, stopped
        if deadline is not None and time.monotonic() >= deadline:
            for rank, worker in enumerate(workers):
                if codes[rank] is None:
                    worker.terminate()
                    stopped.add(rank)
        time.sleep(0.05)
