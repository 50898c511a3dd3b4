"""The run directory survives concurrent use, launchers, damage, a full disk and a shared group:
real subprocesses of `curriculum`, tiny runs on digits."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SCORE, TINY_SCORE, cli_env, free_port, kill_all, run_cli

from scoring import Scores
from scoring.files import LOCK_NAME, locked


def _records(run_dir):
    return {p.relative_to(run_dir).as_posix(): np.load(p) for p in sorted((run_dir / "records").glob("*/*.npy"))}


def _assert_same_run(run, reference):
    ours, theirs = _records(run), _records(reference)
    assert ours.keys() == theirs.keys() and ours
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    pd.testing.assert_frame_equal(Scores.load(run).table, Scores.load(reference).table)
    assert (run / "summary.csv").read_bytes() == (reference / "summary.csv").read_bytes()


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def _one_error(proc, command="score"):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith(f"curriculum {command}: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """An uninterrupted plain run under umask 027 and a two-thread environment."""
    tmp = tmp_path_factory.mktemp("plain")
    env = dict(cli_env(tmp), OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-m", "curriculum", "score", *TINY_SCORE, "--out", str(tmp / "run")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "run"


def test_outputs_follow_the_umask_and_record_one_thread(plain_run):
    files = [p for p in plain_run.rglob("*") if p.is_file()]
    assert {
        "run.json",
        "progress.json",
        "scores.parquet",
        "summary.csv",
        "report.md",
        "agreement_curve.png",
        "train.pred.npy",
    } <= {p.name for p in files}
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o640, path  # group may read, like any tool's files under umask 027
    assert json.loads((plain_run / "run.json").read_text())["compute"] == {"device": "cpu", "threads": 1}


def test_torchrun_run_killed_and_resumed_matches_a_plain_run(tmp_path, plain_run):
    """Killed under torchrun (2 CPU processes, one member each) after a state file was written,
    resumed under torchrun: the same record as the plain two-thread run."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "curriculum",
        "score",
        *TINY_SCORE,
        "--out",
        str(tmp_path / "run"),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=cli_env(tmp_path),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    states = tmp_path / "run" / "records"
    deadline = time.time() + 300
    while not list(states.glob("member_001/progress.json")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    kill_all(proc.pid)  # the agent and its workers, which run in sessions of their own
    proc.wait()
    assert list(states.glob("member_001/state_*.pt")), "killed too late to test a resume"
    resumed = subprocess.run(cmd, cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(tmp_path / "run", plain_run)


def test_three_processes_on_one_directory(tmp_path, score_run):
    args = [sys.executable, "-m", "curriculum", "score", *SMALL_SCORE, "--out", str(tmp_path / "run")]
    procs = [
        subprocess.Popen(
            args, cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2, 2], results
    for code, stderr in results:
        if code == 2:
            assert f"{tmp_path / 'run'} is in use by process " in stderr and len(stderr.strip().splitlines()) == 1
    _assert_same_run(tmp_path / "run", score_run)


def test_stats_and_train_refuse_a_directory_another_process_owns(tmp_path, score_run):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    before = _snapshot(run)
    with locked(run, "--out"):
        stats = run_cli(["stats", "--run", run, "--quiet"], tmp_path, check=False)
        with locked(tmp_path / "out", "--out"):
            train = run_cli(
                ["train", "--scores", run, "--steps", "20", "--seeds", "1", "--quiet", "--out", tmp_path / "out"],
                tmp_path,
                check=False,
            )
    assert f"{run} is in use by process {os.getpid()} on " in _one_error(stats, "stats")
    assert f"{tmp_path / 'out'} is in use by process {os.getpid()} on " in _one_error(train, "train")
    assert _snapshot(run) == before and not (tmp_path / "out").exists()


def test_records_without_run_json_are_refused_untouched(tmp_path, score_run):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    (run / "run.json").unlink()
    before = _snapshot(run)
    proc = run_cli(["score", *SMALL_SCORE, "--lr", "0.01", "--out", run], tmp_path, check=False)
    assert "holds records but no run.json" in _one_error(proc)
    assert _snapshot(run) == before


def test_damaged_state_and_progress_files_get_one_sentence(tmp_path, score_run):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    member = run / "records" / "member_002"
    (member / "progress.json").write_text('{"checkpoints": 2}')
    (member / "state_0001.pt").write_bytes(b"PK\x03\x04 torn")
    proc = run_cli(["score", *SMALL_SCORE, "--out", run], tmp_path, check=False)
    assert f"{member / 'state_0001.pt'} is truncated or corrupt; delete the folder {member}" in _one_error(proc)
    (member / "progress.json").write_text('{"checkpoints": 9}')  # more than the run has
    proc = run_cli(["score", *SMALL_SCORE, "--out", run], tmp_path, check=False)
    assert f"{member / 'progress.json'} is truncated or corrupt" in _one_error(proc)


def test_file_size_limit_gives_one_sentence_and_a_rerun_finishes_the_same(tmp_path, plain_run):
    out = tmp_path / "run"
    command = " ".join([sys.executable, "-m", "curriculum", "score", *TINY_SCORE, "--out", str(out)])
    proc = subprocess.run(
        ["bash", "-c", f"ulimit -f 100; exec {command}"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )  # 100 KiB: records fit, a training state does not
    assert "the disk is full or a file-size limit was reached; free space" in _one_error(proc)
    assert not list(out.rglob("state_*.pt")) and not list(out.rglob("*.tmp"))
    run_cli(["score", *TINY_SCORE, "--out", out], tmp_path)
    _assert_same_run(out, plain_run)


def test_an_unreadable_scores_file_is_reported_as_a_permission_problem(score_run):
    """A real permission error: as root, a forked child drops to user nobody first."""
    folder = tempfile.mkdtemp()
    try:
        os.chmod(folder, 0o755)
        path = shutil.copy(score_run / "scores.parquet", folder)
        os.chmod(path, 0o600 if os.geteuid() == 0 else 0o000)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report the error and leave without running pytest's clean-up
            message = "no error"
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                Scores.load(path)
            except Exception as err:  # noqa: BLE001 (sent back to the parent, which checks it)
                message = f"{type(err).__name__}: {err}"
            os.write(write, message.encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        message = os.read(read, 4000).decode()
        assert message.startswith("UserError: Could not read") and "permission denied" in message, message
    finally:
        shutil.rmtree(folder)


def _garble_header(path):
    data = bytearray(path.read_bytes())
    data[10:40] = b"#" * 30  # inside the header's dict
    path.write_bytes(bytes(data))


DAMAGE = {  # what once printed another process's traceback, or exit 1, under --processes 2: (file, damage)
    "truncated train.pred.npy": ("train.pred.npy", lambda path: path.write_bytes(path.read_bytes()[:100])),
    "corrupt .npy header": ("train.el2n.npy", _garble_header),
    "corrupt test.p_true.npy": ("test.p_true.npy", lambda path: path.write_bytes(b"\x93NUMPY garbage" * 50)),
    "truncated progress.json": ("progress.json", lambda path: path.write_text('{"checkp')),
}


@pytest.mark.parametrize("case", [*DAMAGE, "unknown dataset"])
def test_under_processes_every_try_says_one_sentence(tmp_path, score_run, case):
    """Ten tries of each, at once, on copies of a finished run: the launching process finds these
    before any worker starts, so every try exits 2 with the one sentence and changes nothing."""
    runs = [tmp_path / f"run{i}" for i in range(10)]
    for run in runs:
        shutil.copytree(score_run, run)
        if case in DAMAGE:
            name, damage = DAMAGE[case]
            damage(run / "records" / "member_001" / name)
    before = [_snapshot(run) for run in runs]
    flags = ["--dataset", "no-such-data"] if case == "unknown dataset" else []
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "curriculum", "score", *SMALL_SCORE, *flags, "--processes", "2", "--out", str(run)],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    for proc, run, files in zip(procs, runs, before):
        stdout, stderr = proc.communicate(timeout=300)
        line = _one_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
        member = run / "records" / "member_001"
        expected = (
            "Unknown dataset 'no-such-data'"
            if case == "unknown dataset"
            else (
                f"{member / DAMAGE[case][0]} is truncated or corrupt; delete the folder {member} and run the same command again"
            )
        )
        assert expected in line, line
        assert _snapshot(run) == files


def test_a_failure_inside_a_worker_is_said_once_by_the_command(tmp_path, score_run):
    """What only a worker can find (a training state is read by the worker resuming it): process 1
    fails while process 0, with nothing left to train, waits for it. The command says process
    1's sentence, once, with status 2, and no process's traceback."""
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    member = run / "records" / "member_001"  # process 1's member under --processes 2
    (member / "progress.json").write_text('{"checkpoints": 2}')
    (member / "state_0001.pt").write_bytes(b"PK\x03\x04 torn")
    proc = run_cli(["score", *SMALL_SCORE, "--processes", "2", "--out", run], tmp_path, check=False)
    assert f"{member / 'state_0001.pt'} is truncated or corrupt; delete the folder {member}" in _one_error(proc)


KILL_AT_A_STATE_WRITE = """
import os, signal, sys
from scoring import files
write = files.atomic_write

def killed_halfway(path, fill):
    if path.name.startswith("state_") and path.name != "state_0000.pt":  # a state after some training
        def half(handle):
            handle.write(b"PK" * 1000)
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        write(path, half)
    write(path, fill)

files.atomic_write = killed_halfway
from curriculum.cli import main
sys.exit(main())
"""


def test_a_run_killed_at_a_state_write_leaves_nothing_behind_its_rerun(tmp_path, plain_run):
    """SIGKILL in the middle of writing a training state leaves its temporary file; the rerun that
    finishes the run removes it, and keeps no state: the directory holds what an uninterrupted
    run's holds."""
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_A_STATE_WRITE, "score", *TINY_SCORE, "--out", str(run)],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert list(run.rglob(".state_*.tmp")), "not killed at a state write"
    run_cli(["score", *TINY_SCORE, "--out", run], tmp_path)
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(plain_run).as_posix() for p in plain_run.rglob("*") if p.is_file()), files
    _assert_same_run(run, plain_run)


def _torchrun_node(rank, port, cwd, out, tmp):
    """One node of a two-node torchrun launch, simulated on this machine (one process per node)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--node_rank",
            str(rank),
            "--nproc_per_node",
            "1",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "curriculum",
            "score",
            *SMALL_SCORE,
            "--out",
            str(out),
        ],
        cwd=cwd,
        env=cli_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_nodes_record_what_one_process_records(tmp_path, score_run):
    """torchrun --nnodes 2 on 127.0.0.1 (node ranks 0 and 1): each node's first process reads the
    dataset, process 0 takes the lock and every process checks that it sees the same directory;
    the record is the one-process run's, byte for byte."""
    port = free_port()
    nodes = [_torchrun_node(rank, port, tmp_path, tmp_path / "run", tmp_path) for rank in (0, 1)]
    for node in nodes:
        _, stderr = node.communicate(timeout=600)
        assert node.returncode == 0, stderr[-3000:]
    _assert_same_run(tmp_path / "run", score_run)


def test_nodes_that_do_not_share_the_run_directory_are_refused(tmp_path):
    """A relative --out from a different folder on each node (as on two machines without a shared
    filesystem): process 1 does not see the lock file process 0 wrote, and every process stops,
    with the sentence said by process 0, before anything is written."""
    port, cwds = free_port(), [tmp_path / "node0", tmp_path / "node1"]
    for cwd in cwds:
        cwd.mkdir()
    nodes = [_torchrun_node(rank, port, cwd, "run", tmp_path) for rank, cwd in enumerate(cwds)]
    results = [node.communicate(timeout=600) for node in nodes]
    assert all(node.returncode != 0 for node in nodes), results
    said = [
        line for _, stderr in results for line in stderr.splitlines() if line.startswith("curriculum score: error:")
    ]
    assert len(said) == 1 and "does not see the directory run that process 0" in said[0], results
    assert "put --out on a filesystem every node shares" in said[0]
    assert not (cwds[0] / "run").exists() and not (cwds[1] / "run").exists()


def test_stacked_members_resume_only_with_their_process_count(tmp_path):
    """A stacked member's record depends on its group, and groups are per process: a resume with
    another count (on GPUs, another GPU count) is refused naming the count to launch; a run
    trained one by one resumes with any count."""
    from curriculum.stages.score import check_resumable
    from scoring.errors import UserError
    from scoring.records import open_run

    def info(layout):
        return {
            "dataset": {"name": "digits", "fingerprint": "f"},
            "settings": {"lr": 0.1, "layout": layout},
            "compute": {"device": "cuda", "gpu": "H200"},
        }

    stacked = "stacked in groups of up to 8, {} process(es)"
    open_run(tmp_path / "run", info(stacked.format(2)), write=True)
    check_resumable(tmp_path / "run", info(stacked.format(2)))
    with pytest.raises(
        UserError, match="stacked over 2 processes, and 4 processes would group them differently .*launch 2 "
    ):
        check_resumable(tmp_path / "run", info(stacked.format(4)))
    with pytest.raises(UserError, match=r"other settings \(layout\)"):
        check_resumable(tmp_path / "run", info("one by one"))
    open_run(tmp_path / "loop", info("one by one"), write=True)
    check_resumable(tmp_path / "loop", info("one by one"))
