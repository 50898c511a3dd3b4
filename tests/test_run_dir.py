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

from conftest import SMALL_SCORE, TINY_SCORE, cli_env, free_port, run_cli
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
    proc = subprocess.run([sys.executable, "-m", "curriculum", "score", *TINY_SCORE, "--out", str(tmp / "run")], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o027))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "run"


def test_outputs_follow_the_umask_and_record_one_thread(plain_run):
    files = [p for p in plain_run.rglob("*") if p.is_file()]
    assert {"run.json", "progress.json", "scores.parquet", "summary.csv", "report.md", "agreement_curve.png", "train.pred.npy"} <= {p.name for p in files}
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o640, path  # group may read, like any tool's files under umask 027
    assert json.loads((plain_run / "run.json").read_text())["compute"] == {"device": "cpu", "threads": 1}


def test_torchrun_run_killed_and_resumed_matches_a_plain_run(tmp_path, plain_run):
    """Killed under torchrun (2 CPU processes, one member each) after a state file was written,
    resumed under torchrun: the same record as the plain two-thread run."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "curriculum", "score", *TINY_SCORE, "--out", str(tmp_path / "run")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(tmp_path), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    states = tmp_path / "run" / "records"
    deadline = time.time() + 300
    while not list(states.glob("member_001/progress.json")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(states.glob("member_001/state_*.pt")), "killed too late to test a resume"
    resumed = subprocess.run(cmd, cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(tmp_path / "run", plain_run)


def test_three_processes_on_one_directory(tmp_path, score_run):
    args = [sys.executable, "-m", "curriculum", "score", *SMALL_SCORE, "--out", str(tmp_path / "run")]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
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
            train = run_cli(["train", "--scores", run, "--steps", "20", "--seeds", "1", "--quiet", "--out", tmp_path / "out"], tmp_path, check=False)
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
    proc = subprocess.run(["bash", "-c", f"ulimit -f 100; exec {command}"], cwd=tmp_path, env=cli_env(tmp_path),
                          capture_output=True, text=True, timeout=600)  # 100 KiB: records fit, a training state does not
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
