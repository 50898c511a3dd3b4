"""`curriculum score` end to end, in real subprocesses: outputs, resume after SIGKILL, several
processes, and bad input."""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SCORE, TINY_SCORE, cli_env, free_port, run_cli

from scoring import Scores
from scoring.files import LOCK_NAME

DIGITS_SIZES = {"train": 1347, "test": 450}


def _records(run_dir):
    return {p.relative_to(run_dir).as_posix(): np.load(p) for p in sorted((run_dir / "records").glob("*/*.npy"))}


def test_score_writes_scores_summary_and_figures(score_run):
    info = json.loads((score_run / "run.json").read_text())
    assert info["status"] == "complete" and info["members"] == 3
    assert [c["step"] for c in info["checkpoints"]] == [0, 7, 14, 21, 28]  # 14 steps an epoch
    scores = Scores.load(score_run)
    assert scores.table.groupby("split").size().to_dict() == DIGITS_SIZES
    train = scores.split("train")
    # accessibility is consistency averaged over the 4 checkpoints after initialisation: steps of 1/12
    assert np.allclose(train["accessibility"] * 12, np.round(train["accessibility"] * 12), atol=1e-6)
    summary = pd.read_csv(score_run / "summary.csv")
    assert len(summary) == 2 * 5
    last = summary[(summary.split == "test") & (summary.checkpoint == 4)].iloc[0]
    assert last.acc_mean > 0.5  # digits is learnable in 2 epochs
    assert last.tpa_lower <= last.tpa + 1e-9
    for name in ("consistency_histograms.png", "agreement_curve.png"):
        assert (score_run / "figures" / name).stat().st_size > 10_000


def test_summary_is_printed(tmp_path):
    out = run_cli(
        ["score", *[a for a in SMALL_SCORE if a != "--quiet"], "--epochs", "1", "--out", tmp_path / "r"], tmp_path
    )
    assert "TPa" in out.stdout and "c=1 obs/ind" in out.stdout
    assert len([line for line in out.stdout.splitlines() if line.startswith(("train ", "test "))]) == 2 * 3


@pytest.mark.parametrize("stack", ["off", "on"])
def test_killed_run_resumes_to_the_same_record(tmp_path, score_run, stack):
    """Bit-exact for a given layout: one by one, and members stacked into one model."""
    (tmp_path / "stack.yaml").write_text(f'stack: "{stack}"\n')
    args = ["score", *SMALL_SCORE, "--config", tmp_path / "stack.yaml", "--out", tmp_path / "run"]
    reference = None
    if stack == "on":  # the uninterrupted stacked reference, on the other core meanwhile
        reference = subprocess.Popen(
            [sys.executable, "-m", "curriculum", *map(str, args[:-1]), tmp_path / "reference"],
            cwd=tmp_path,
            env=cli_env(tmp_path),
        )
        score_run = tmp_path / "reference"
    proc = subprocess.Popen([sys.executable, "-m", "curriculum", *map(str, args)], cwd=tmp_path, env=cli_env(tmp_path))
    progress = tmp_path / "run" / "records" / "member_001" / "progress.json"
    deadline = time.time() + 300
    while not (progress.exists() and json.loads(progress.read_text())["checkpoints"] >= 2):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    run_cli(args, tmp_path)
    assert reference is None or reference.wait(timeout=600) == 0
    resumed, reference = _records(tmp_path / "run"), _records(score_run)
    assert resumed.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
    assert not list((tmp_path / "run" / "records").glob("*/state_*.pt"))  # finished members keep no state


@pytest.fixture(scope="module")
def four_members(tmp_path_factory):
    """A one-process run of 4 members."""
    tmp = tmp_path_factory.mktemp("four")
    run_cli(["score", *SMALL_SCORE, "--members", "4", "--out", tmp / "run"], tmp)
    return tmp / "run"


@pytest.mark.parametrize("launcher", ["torchrun", "--processes"])
def test_two_processes_give_the_same_record(tmp_path, four_members, launcher):
    """The same record files, byte for byte, and the same scores: under torchrun, and launched by
    the command itself."""
    args = ["-m", "curriculum", "score", *SMALL_SCORE, "--members", "4", "--out", tmp_path / "run2"]
    if launcher == "torchrun":
        args = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", free_port(), *args]
    else:
        args += ["--processes", "2"]
    proc = subprocess.run(
        list(map(str, [sys.executable, *args])),
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run2, run1 = tmp_path / "run2", four_members
    names = [p.relative_to(run1) for p in sorted((run1 / "records").glob("*/*.npy"))]
    assert len(names) == 4 * 6
    for name in names:
        assert (run2 / name).read_bytes() == (run1 / name).read_bytes(), name
    assert (run2 / "scores.parquet").read_bytes() == (run1 / "scores.parquet").read_bytes()
    assert json.loads((run2 / "run.json").read_text())["processes"] == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dataset", "nope"], "curriculum datasets"),
        (["--arch", "nope"], "Unknown architecture"),
        (["--members", "1"], "--members must be a whole number >= 2, got 1."),
        (["--epochs", "0"], "--epochs must be a finite number in (0, 10000], got 0."),
        (["--processes", "0"], "--processes must be auto or a whole number >= 1, got 0."),
        (["--processes", "two"], "--processes must be auto or a whole number >= 1, got two."),
        (["--members", "100000000"], "GiB on disk (100000000 members x 5 checkpoints x 1797 examples"),
    ],
)
def test_bad_flags_exit_2_with_one_sentence(tmp_path, flags, message):
    proc = run_cli(["score", *SMALL_SCORE, *flags, "--out", tmp_path / "run"], tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "records").exists() and not (tmp_path / "run" / "run.json").exists()


def _snapshot(run_dir):
    """Every file's bytes, but the lock's (it names the last process that took it)."""
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def test_other_dataset_or_settings_in_out_dir_is_refused_untouched(tmp_path, score_run):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    before = _snapshot(run)
    for flags, message in [
        (["--dataset", "gabor"], "holds a run of dataset 'digits'"),
        (["--lr", "0.01"], "other settings (lr)"),
    ]:
        proc = run_cli(["score", *SMALL_SCORE, *flags, "--out", run], tmp_path, check=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert _snapshot(run) == before


def test_truncated_record_is_refused_untouched(tmp_path, score_run):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    victim = run / "records" / "member_002" / "train.pred.npy"
    victim.write_bytes(victim.read_bytes()[:100])
    before = _snapshot(run)
    proc = run_cli(["score", *SMALL_SCORE, "--out", run], tmp_path, check=False)
    assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr and "member_002" in proc.stderr
    assert _snapshot(run) == before


def test_config_file_supplies_flags_and_flags_win(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "members: 2\nepochs: 1\neval-every: 1\ndataset: digits\nquiet: true\nprocesses: 1\n"
    )
    run_cli(["score", "--config", tmp_path / "c.yaml", "--members", "3", "--out", tmp_path / "r"], tmp_path)
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["members"] == 3 and len(info["checkpoints"]) == 2
    (tmp_path / "bad.yaml").write_text("membres: 2\n")
    proc = run_cli(["score", "--config", tmp_path / "bad.yaml", "--out", tmp_path / "r2"], tmp_path, check=False)
    assert proc.returncode == 2 and "unknown key(s) membres" in proc.stderr


def test_a_diverging_member_stops_at_once_and_the_fixed_command_starts_afresh(tmp_path):
    out = tmp_path / "run"
    args = ["score", *TINY_SCORE, "--out", out]
    proc = run_cli([*args, "--lr", "10"], tmp_path, check=False)  # the largest --lr accepted
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Member 0 diverged at step" in lines[0] and "Lower --lr (now 10)" in lines[0]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "diverged" and info["diverged"]["member"] == 0
    # the initialisation row was committed before training; no committed row is non-finite
    progress = json.loads((out / "records" / "member_000" / "progress.json").read_text())
    rows = np.load(out / "records" / "member_000" / "train.p_true.npy")[: progress["checkpoints"]]
    assert progress["checkpoints"] == 1 and np.isfinite(rows).all()
    run_cli([*args, "--lr", "0.05"], tmp_path)  # other settings: accepted, started afresh
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and "diverged" not in info and info["settings"]["lr"] == 0.05
    assert np.isfinite(Scores.load(out).table["confidence"]).all()


def test_progress_names_the_members_a_process_trains():
    from curriculum.stages.score import member_names

    assert [member_names(g) for g in ([2], [0, 1, 2, 3], [0, 2], [1, 3, 5, 7, 9, 11])] == [
        "3",
        "1..4",
        "1, 3",
        "2, 4, ..., 12",
    ]
