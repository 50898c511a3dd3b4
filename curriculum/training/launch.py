"""``curriculum score --processes N``: a plain command that uses every CPU core, and speaks with one voice.

On the CPU every process computes with one thread, so that a record does not depend on the layout
(:func:`curriculum.training.engine.make_accelerator`); a plain run is then one process on one core. Members
are independent and the score stage already spreads them over launched processes, so all a plain
command needs is a launcher: :func:`launch` runs N workers of the same command under torch's own
elastic agent (:func:`torch.distributed.launcher.api.elastic_launch`, what ``torchrun`` runs), and
Accelerate joins them exactly as under ``torchrun``. The agent gives the rendezvous, each worker in a
session of its own, every worker stopped as soon as one fails, a signal to the command passed on to
every worker, and per-worker error files; this module adds what it does not:

- :func:`preflight`: what can be checked before any worker starts (the dataset and architecture
  names, the output directory, its lock, run.json and the integrity of every member's record) is
  checked once, here, with the sentence a worker would give; no worker starts for a bad command.
- One voice: a worker started here prints no error of its own. It writes what it would have said to
  the agent's error file (:func:`report_failure`) and exits; the launcher prints the sentence of the
  first worker that failed for a reason of its own (not one that only lost contact with it) and
  exits with that worker's status: 2 for a user error, 130 for an interrupt, 1 for a bug (with that
  worker's traceback, and no other's). Only rank 0's progress and summary reach the terminal.
- A worker dies with its launcher even when that is killed outright (Linux ``PR_SET_PDEATHSIG``, set
  by the worker itself: the agent does not), so no orphan keeps training into the run directory.

Torch-free until it launches, but for asking whether a GPU is present when that decides.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from curriculum.config.options import check_output_dir
from curriculum.config.stages import ScoreConfig
from curriculum.training.policy import fans_out
from scoring.errors import UserError

GPU_DRIVERS = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # NVIDIA, AMD (ROCm), WSL: where torch.cuda may find one
PR_SET_PDEATHSIG = 1
LAUNCHER = "CURRICULUM_LAUNCHER"  # in a worker started by launch(): the launching process's pid
PEER = "peer"  # a report's kind when a worker only lost contact with another one


class PeerFailed(Exception):
    """Another process of this run failed (or went away) where the processes act together; that
    process says why, so this one ends without a word of its own
    (:func:`curriculum.training.engine.agree`)."""


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def processes_to_launch(config: ScoreConfig) -> int:
    """How many workers this command launches; 1: it trains in this process.

    ``auto`` is one worker per usable core, at most one per member and no more than finish as
    soon (:func:`fewest_processes`), where the device policy fans out (the CPU's choice,
    :func:`curriculum.training.policy.fans_out`) and no launcher started this process. Under a
    launcher or on a GPU the launcher decides the layout, so an explicit count there is refused,
    and so is a count above the members (a process would idle).
    """
    wanted = None if config.processes == "auto" else int(config.processes)
    if wanted == 1:
        return 1
    if "WORLD_SIZE" in os.environ:
        if wanted is not None:
            raise UserError(
                f"--processes {wanted} cannot be combined with a launcher (WORLD_SIZE is set); drop "
                "--processes and give the process count to torchrun / accelerate launch."
            )
        return 1
    on_gpu = _on_gpu(config)
    if on_gpu and wanted is not None:
        raise UserError(
            f"--processes {wanted} starts CPU processes; on GPUs launch with `accelerate launch "
            f"--num_processes {wanted} -m curriculum score` or torchrun, or pass --cpu."
        )
    if wanted is None and not fans_out("cuda" if on_gpu else "cpu"):
        return 1
    if wanted is not None and wanted > config.members:
        raise UserError(
            f"--processes {wanted} is more than the {config.members} members (each process trains whole "
            f"members, so {wanted - config.members} would idle); pass --processes {config.members} or fewer."
        )
    return wanted or fewest_processes(config.members, usable_cores())


def fewest_processes(members: int, limit: int) -> int:
    """The fewest processes, at most ``limit``, that train ``members`` in as few rounds as ``limit``
    processes do (a process trains whole members: 12 members take 2 rounds on 6 to 11 processes)."""
    return math.ceil(members / math.ceil(members / limit))


def uneven_note(members: int, processes: int) -> str | None:
    """A line for a layout in which some processes train one member more than others, naming the
    counts that waste none; None for an even one."""
    extra = members % processes
    if extra == 0 or members < processes:
        return None
    per, fewest = math.ceil(members / processes), fewest_processes(members, processes)

    def train(count: int) -> str:
        return f"{count} train{'s' if count == 1 else ''}"

    as_soon = f"{fewest} processes would finish as soon, " if fewest < processes else ""
    return (
        f"Note: {members} members on {processes} processes: {train(extra)} {per} members and "
        f"{train(processes - extra)} {per - 1} (a process trains whole members); "
        f"{as_soon}{math.ceil(members / (per - 1))} would finish sooner."
    )


def _on_gpu(config: ScoreConfig) -> bool:
    """Whether the run would train on a GPU. Only where a GPU driver shows (on Linux, its device
    node) is torch, 2 s to import, asked."""
    if config.cpu or (sys.platform == "linux" and not any(map(os.path.exists, GPU_DRIVERS))):
        return False
    import torch

    return torch.cuda.is_available()


def free_port() -> int:
    """A TCP port nobody listens on now (for tests that start torchrun themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def preflight(config: ScoreConfig) -> None:
    """Raise, before any worker starts, the user error a worker would meet first: an unknown
    dataset or architecture, an output path that is a file or not writable, a run directory in
    use, holding something else, or whose run.json or member records are damaged. It reads no
    data and imports no torch; what needs them (the dataset's fingerprint against run.json's) is
    checked by the workers, together (:func:`curriculum.training.engine.agree`)."""
    from curriculum.data.datasets import dataset_name
    from curriculum.models.architectures import TORCHVISION_PREFIX, check_arch
    from scoring.files import locked
    from scoring.records import check_new_run_dir, check_records, default_run_dir, read_run_info

    name = dataset_name(
        config.dataset, label_noise=config.label_noise, noise_seed=config.seed, data_dir=config.data_dir
    )
    if config.arch != "auto" and TORCHVISION_PREFIX not in config.arch:  # torchvision's names cost its import
        check_arch(config.arch)
    run_dir = Path(config.out) if config.out else default_run_dir(name)
    check_output_dir(run_dir, "--out")
    if not run_dir.is_dir():
        return
    with locked(run_dir, "--out"):
        info = read_run_info(run_dir)
        if info is None:
            check_new_run_dir(run_dir)
        elif info.get("status") != "diverged":
            check_records(run_dir, info)


def launch(processes: int, argv: Sequence[str]) -> int:
    """Run ``curriculum <argv>`` as ``processes`` workers under torch's elastic agent and return
    the command's exit status (see the module docstring). The workers see WORLD_SIZE, so their
    ``--processes auto`` leaves the layout to this launcher."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException, Std
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logs = tempfile.mkdtemp(prefix="curriculum-workers-")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=uuid.uuid4().hex,
        role="curriculum",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.05,
        # rank 0's progress and summary reach the terminal; the others' output is kept apart
        logs_specs=DefaultLogsSpecs(
            log_dir=logs, redirects={rank: Std.ALL if rank else Std.NONE for rank in range(processes)}
        ),
    )
    saved = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", LAUNCHER)}
    os.environ.update({"OMP_NUM_THREADS": "1", LAUNCHER: str(os.getpid())})
    logging.disable(logging.CRITICAL)  # the agent's own log lines (its workers' pids, each stop) are not for the user
    try:
        elastic_launch(config, sys.executable)("-m", "curriculum", *argv, "--processes", "auto")
        return 0
    except ChildFailedError as err:
        return _speak(err.failures)
    except SignalException as err:  # the agent has passed the signal on and waited for every worker
        if err.sigval == signal.SIGINT:
            print(f"curriculum {argv[0]}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 128 + int(err.sigval)
    finally:
        logging.disable(logging.NOTSET)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(logs, ignore_errors=True)


def _speak(failures: dict) -> int:
    """Print the one sentence for the failed workers (torch's ProcessFailure by rank) and return
    the command's status: the first worker that failed for a reason of its own says it; a worker
    that ended without a report (killed by the system) is named; one that only lost contact with
    the others speaks last. Workers the agent stopped (SIGTERM) are not failures of their own."""
    reports = {rank: failure.error_file_data.get("curriculum") for rank, failure in failures.items()}
    own = [(report["time"], rank) for rank, report in reports.items() if report and report["kind"] != PEER]
    if own:
        report = reports[min(own)[1]]
        sys.stderr.write(report["text"])
        return int(report["status"])
    silent = [
        rank for rank, report in reports.items() if report is None and failures[rank].exitcode != -signal.SIGTERM
    ] or [rank for rank, report in reports.items() if report is None]
    if silent:
        rank = min(silent, key=lambda r: (failures[r].timestamp, r))
        code = failures[rank].exitcode
        how = f"by signal {signal.Signals(-code).name}" if code < 0 else f"with status {code}"
        print(
            f"curriculum score: error: process {rank} ended {how} before it could say why (the system may have "
            "stopped it, for example when memory ran out); run the same command again to resume.",
            file=sys.stderr,
        )
        return 128 - code if code < 0 else code
    report = reports[min(failures)]
    sys.stderr.write(report["text"])
    return int(report["status"])


def launched_here() -> bool:
    """Whether this process is a worker that :func:`launch` started (it then speaks through it)."""
    return LAUNCHER in os.environ and "WORLD_SIZE" in os.environ


def join_launcher() -> None:
    """In a worker that :func:`launch` started, before any work: SIGTERM when the launcher dies
    (Linux ``PR_SET_PDEATHSIG``; the agent starts workers in sessions of their own and sets none),
    and exit at once if it has died already."""
    if not launched_here() or sys.platform != "linux":
        return
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(os.environ[LAUNCHER]):
        os._exit(128 + signal.SIGTERM)


def report_failure(status: int, text: str, kind: str) -> None:
    """Write why this worker fails to the error file its agent gave it (``TORCHELASTIC_ERROR_FILE``,
    set by :func:`launch` and by ``torchrun``; torchrun shows it in its summary): ``text`` is what
    it would print, ``kind`` ``error``, ``interrupt``, ``bug`` or :data:`PEER`."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    now = time.time()
    report = {
        "message": text.rstrip(),
        "timestamp": int(now),
        "curriculum": {"status": status, "text": text, "kind": kind, "time": now},
    }
    try:
        Path(path).write_text(json.dumps(report))
    except OSError:  # the agent then reports the exit status alone
        pass


def leave_process_group() -> None:
    """Destroy the process group this worker joined, before it exits (on an error or not): left to
    the interpreter's exit, torch's teardown of its threads can abort the process (status 134,
    "terminate called without an active exception")."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
