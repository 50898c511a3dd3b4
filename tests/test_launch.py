"""`curriculum score --processes`: the layout a command resolves to, and its workers as one command
(one voice, and no worker outlives it)."""

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import cli_env, running

from curriculum.config.stages import ScoreConfig
from curriculum.training import launch
from scoring.errors import UserError
from scoring.files import locked


def _resolve(processes, monkeypatch, cores=2, launched=False, gpu=False, members=3):
    """How many workers ``--processes processes`` launches with ``cores`` cores, under a launcher or
    not, on a GPU machine or not (the device policy as CURRICULUM_DEVICE_POLICY says)."""
    monkeypatch.setattr(launch, "usable_cores", lambda: cores)
    monkeypatch.setattr(launch, "_on_gpu", lambda config: gpu)
    if launched:
        monkeypatch.setenv("WORLD_SIZE", "2")
    else:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    return launch.processes_to_launch(ScoreConfig(members=members, processes=processes))


def test_auto_is_one_process_a_core_at_most_one_a_member(monkeypatch):
    assert _resolve("auto", monkeypatch, cores=2) == 2
    assert _resolve("auto", monkeypatch, cores=8) == 3
    assert _resolve("3", monkeypatch, cores=2) == 3  # asked for: more processes than cores still works
    assert _resolve("1", monkeypatch, cores=8) == 1
    with pytest.raises(UserError, match="--processes 5 is more than the 3 members .* pass --processes 3 or fewer"):
        _resolve("5", monkeypatch, cores=8)  # but not more than members: a process would idle
    # No more than finish as soon: 12 members take 2 rounds on 6 to 11 processes.
    assert _resolve("auto", monkeypatch, cores=8, members=12) == 6
    assert _resolve("auto", monkeypatch, cores=4, members=10) == 4  # 3 rounds on 4 processes, 4 rounds on 3
    assert _resolve("8", monkeypatch, cores=8, members=12) == 8  # a count asked for is kept


def test_an_uneven_layout_is_noted_with_the_counts_that_waste_no_process():
    assert launch.uneven_note(10, 8) == (
        "Note: 10 members on 8 processes: 2 train 2 members and 6 train 1 (a process trains whole "
        "members); 5 processes would finish as soon, 10 would finish sooner."
    )
    assert launch.uneven_note(12, 5) == (
        "Note: 12 members on 5 processes: 2 train 3 members and 3 train 2 (a process trains whole "
        "members); 4 processes would finish as soon, 6 would finish sooner."
    )
    assert launch.uneven_note(3, 2) == (
        "Note: 3 members on 2 processes: 1 trains 2 members and 1 trains 1 (a process trains whole "
        "members); 3 would finish sooner."
    )
    assert launch.uneven_note(12, 6) is None and launch.uneven_note(12, 1) is None and launch.uneven_note(3, 3) is None
    for members in range(1, 40):
        for limit in range(1, members + 1):
            fewest = launch.fewest_processes(members, limit)
            assert fewest <= limit and -(-members // fewest) == -(-members // limit)  # as many rounds
            assert fewest == 1 or -(-members // (fewest - 1)) > -(-members // limit)  # and no fewer would do


@pytest.mark.parametrize(
    ("where", "fix"),
    [
        ({"launched": True}, "give the process count to torchrun / accelerate launch"),
        ({"gpu": True}, "on GPUs launch with `accelerate launch --num_processes 2"),
    ],
)
def test_a_launcher_or_a_gpu_decides_the_layout(monkeypatch, where, fix):
    assert _resolve("auto", monkeypatch, cores=8, **where) == 1 and _resolve("1", monkeypatch, **where) == 1
    with pytest.raises(UserError, match=fix):
        _resolve("2", monkeypatch, **where)


def test_the_device_policy_decides_whether_auto_fans_out(monkeypatch):
    """The GPU's choices, run on the CPU, lay out as on a GPU (auto: one process; the launcher
    decides), while an explicit count still starts CPU processes, which is what the CPU runs."""
    monkeypatch.setenv("CURRICULUM_DEVICE_POLICY", "gpu")
    assert _resolve("auto", monkeypatch, cores=8) == 1
    assert _resolve("2", monkeypatch, cores=8) == 2
    monkeypatch.setenv("CURRICULUM_DEVICE_POLICY", "cpu")
    assert _resolve("auto", monkeypatch, cores=8) == 3
    monkeypatch.setenv("CURRICULUM_DEVICE_POLICY", "tpu")
    with pytest.raises(UserError, match="CURRICULUM_DEVICE_POLICY=tpu is not a device policy; set it to cpu or gpu"):
        _resolve("auto", monkeypatch)


def test_a_count_under_a_launcher_is_refused_in_one_sentence(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "curriculum", "score", "--processes", "2", "--out", str(tmp_path / "run")],
        cwd=tmp_path,
        env=dict(cli_env(tmp_path), WORLD_SIZE="2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--processes 2 cannot be combined with a launcher (WORLD_SIZE is set)" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; a worker dies with its launcher on Linux")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_to_the_command_stops_every_worker(tmp_path, sig):
    """Ctrl-C and SIGTERM are passed on (rank 0 alone says so), and a launcher killed outright takes
    its workers along: the run directory is free for the rerun."""
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "curriculum",
        "score",
        "--dataset",
        "digits",
        "--members",
        "2",
        "--epochs",
        "50",
        "--quiet",
        "--processes",
        "2",
        "--out",
        str(run),
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while len(list(run.glob("records/member_00*/progress.json"))) < 2:  # both workers train
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be stopped"
        time.sleep(0.05)
    workers = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(workers) == 2
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)  # its end of stderr closes once rank 0 has ended
    deadline = time.time() + 60
    while any(map(running, workers)):
        assert time.time() < deadline, "a worker outlived its launcher"
        time.sleep(0.05)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and stderr.splitlines() == [
            "curriculum score: interrupted; run the same command again to resume."
        ], stderr
    elif sig == signal.SIGTERM:
        assert proc.returncode == 128 + sig and stderr == "", stderr
    with locked(run, "--out"):
        pass


def _failure(exitcode, report=None, timestamp=0):
    """What torch's agent hands the launcher for one failed worker (a ProcessFailure's fields)."""
    return SimpleNamespace(
        exitcode=exitcode,
        timestamp=timestamp,
        error_file_data={"message": "<NONE>"} if report is None else {"curriculum": report},
    )


def _report(kind, status, text, time):
    return {"kind": kind, "status": status, "text": text, "time": time}


def test_the_command_says_the_first_failure_of_a_worker_of_its_own(capsys):
    """A worker that only lost contact with the one that failed (even earlier) and workers the
    agent stopped stay silent; a worker killed without a word is named (by the system, or a
    SIGTERM not from the agent when no other worker failed); reports of lost contact alone speak last."""
    lost = _report(launch.PEER, 1, "curriculum score: error: another process of this run stopped ...\n", 1.0)
    failures = {
        0: _failure(1, lost),
        1: _failure(2, _report("error", 2, "curriculum score: error: member 1 diverged\n", 2.0)),
        2: _failure(2, _report("error", 2, "curriculum score: error: member 2 diverged\n", 3.0)),
        3: _failure(-signal.SIGTERM),
    }
    assert launch._speak(failures) == 2
    assert capsys.readouterr().err == "curriculum score: error: member 1 diverged\n"
    assert launch._speak({0: _failure(1, lost), 1: _failure(-signal.SIGKILL), 2: _failure(-signal.SIGTERM)}) == 128 + 9
    assert capsys.readouterr().err.startswith(
        "curriculum score: error: process 1 ended by signal SIGKILL before it could say why"
    )
    assert launch._speak({0: _failure(1, lost), 1: _failure(-signal.SIGTERM)}) == 128 + 15  # stopped by someone else
    assert capsys.readouterr().err.startswith("curriculum score: error: process 1 ended by signal SIGTERM")
    assert launch._speak({0: _failure(1, lost), 1: _failure(1, {**lost, "time": 0.5})}) == 1  # the connection broke
    assert capsys.readouterr().err == lost["text"]
