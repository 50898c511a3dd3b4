"""`curriculum train` end to end: real subprocesses on digits with a tiny step budget (20 steps of
100 examples), against the session's finished score run; bad input gives one sentence and exit
status 2."""

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from matplotlib import image as mpimg

from curriculum import cli
from scoring import Scores
from scoring.files import LOCK_NAME

ORDERS = ["curriculum", "random", "anti", "none"]
TINY = ["--steps", "20", "--eval-every-steps", "5", "--seeds", "2"]
COLUMNS = [
    "order",
    "seeds",
    "final_acc",
    "ci95",
    "auc",
    "target",
    "steps_to_target",
    "reached",
    "tpa",
    "mean_consistency",
    "gain_vs_none",
    "p_vs_none",
    "gain_vs_random",
    "p_vs_random",
]


def _outputs(out):
    return (
        pd.read_csv(out / "results.csv"),
        pd.read_csv(out / "curves.csv"),
        json.loads((out / "config.json").read_text()),
    )


@pytest.fixture(scope="module")
def full(score_run, tmp_path_factory):
    """Every default order, 2 seeds, with the printed summary."""
    tmp = tmp_path_factory.mktemp("train")
    proc = run_cli(["train", "--scores", score_run, *TINY, "--out", tmp / "out"], tmp)
    return proc, tmp / "out"


def test_results_table_has_one_row_per_order_recomputed_from_the_curves(full):
    _, out = full
    results, curves, _ = _outputs(out)
    assert list(results.columns) == COLUMNS
    assert list(results["order"]) == ORDERS and (results["seeds"] == 2).all()
    last = curves[curves["step"] == 20].groupby("order")["test_accuracy"].mean()
    results = results.set_index("order")
    assert np.allclose(results["final_acc"], last[results.index])
    for column in ("final_acc", "auc", "tpa", "mean_consistency"):
        assert results[column].between(0, 1).all(), column
    assert (results["ci95"] >= 0).all() and results["reached"].between(0, 2).all()
    # mean consistency over the test set is the mean accuracy of the seeds
    assert np.allclose(results["mean_consistency"], results["final_acc"])
    # default target: 95 % of none's final mean; gains: differences of final means
    assert np.allclose(results["target"], 0.95 * results.loc["none", "final_acc"])
    for control in ("none", "random"):
        others = results.index != control
        gains = results.loc[others, "final_acc"] - results.loc[control, "final_acc"]
        assert np.allclose(results.loc[others, f"gain_vs_{control}"], gains)
        assert results.loc[others, f"p_vs_{control}"].between(0, 1).all()
        assert np.isnan(results.loc[control, f"gain_vs_{control}"])


def test_curves_figure_and_config(full, score_run):
    _, out = full
    _, curves, config = _outputs(out)
    assert list(curves.columns) == ["order", "seed", "step", "test_accuracy"]
    assert list(dict.fromkeys(curves["order"])) == ORDERS
    for _, rows in curves.groupby("order"):
        assert sorted(zip(rows["seed"], rows["step"])) == [(s, t) for s in (0, 1) for t in (5, 10, 15, 20)]
    assert curves["test_accuracy"].between(0, 1).all()
    figure = out / "figures" / "learning_curves.png"
    assert figure.stat().st_size > 10_000
    pixels = mpimg.imread(figure)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels[..., :3].std() > 0.05
    assert config["order_source"] == f"'accessibility' of {score_run}"
    assert config["steps"] == 20 and config["seeds"] == 2 and config["pacing"] == "exp"
    assert config["dataset"] == {"name": "digits", "fingerprint": Scores.load(score_run).fingerprint}


def test_the_score_run_report_gains_a_training_section(full, score_run):
    _, out = full
    results = pd.read_csv(out / "results.csv").set_index("order")
    report = (score_run / "report.md").read_text()
    section = report.split("<!-- section: train-out -->")[1].split("<!-- end: train-out -->")[0]
    assert f"Easy-first training reaches {results.loc['curriculum', 'final_acc']:.4f} final test accuracy" in section
    assert f"{results.loc['curriculum', 'gain_vs_random']:+.4f} over random" in section
    figure = section.split("![learning curves](")[1].split(")")[0]
    assert (score_run / figure).resolve() == (out / "figures" / "learning_curves.png").resolve()


def test_summary_is_printed_for_every_order(full):
    proc, out = full
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("order"))
    assert "steps to" in lines[header] and "vs none (p)" in lines[header] and "vs random (p)" in lines[header]
    assert [line.split()[0] for line in lines[header + 2 : header + 6]] == ORDERS
    assert str(out / "results.csv") in proc.stdout
    assert "Traceback" not in proc.stderr


def test_seeds_pair_the_controls(score_run, tmp_path):
    # b = 1 opens all data from step 0, so with seed s the random order trains exactly like none:
    # the same order, initial weights and batches
    run_cli(
        [
            "train",
            "--scores",
            score_run,
            "--pacing",
            "linear",
            "--b",
            "1",
            "--orders",
            "random,none",
            "--steps",
            "10",
            "--eval-every-steps",
            "5",
            "--seeds",
            "2",
            "--quiet",
            "--out",
            tmp_path / "out",
        ],
        tmp_path,
    )
    results, curves, _ = _outputs(tmp_path / "out")
    acc = {key: rows["test_accuracy"].to_numpy() for key, rows in curves.groupby(["order", "seed"])}
    assert np.array_equal(acc["random", 0], acc["none", 0]) and np.array_equal(acc["random", 1], acc["none", 1])
    assert not np.array_equal(acc["none", 0], acc["none", 1])  # the seed matters
    random = results.set_index("order").loc["random"]
    assert random["gain_vs_none"] == 0.0 and random["p_vs_none"] == 1.0


def test_scores_file_of_the_same_scores_repeats_the_run_exactly(full, score_run, tmp_path):
    """A CSV of the score run's accessibility (rows shuffled, with their index) orders the examples
    as the run does, so the curves of the orders trained again are identical to the full run's:
    the scores-file path works, a run is deterministic, and a run does not depend on the other
    orders trained beside it."""
    train = Scores.load(score_run).split("train")
    rows = train[["index", "label", "accessibility"]].rename(columns={"accessibility": "score"})
    rows.sample(frac=1, random_state=0).to_csv(tmp_path / "mine.csv", index=False)
    no_direction = run_cli(
        ["train", "--scores-file", tmp_path / "mine.csv", "--orders", "anti,none", *TINY, "--quiet"],
        tmp_path,
        check=False,
    )
    assert no_direction.returncode == 2 and "--scores-direction higher|lower" in no_direction.stderr
    run_cli(
        [
            "train",
            "--scores-file",
            tmp_path / "mine.csv",
            "--scores-direction",
            "higher",
            "--orders",
            "anti,none",
            *TINY,
            "--quiet",
            "--out",
            tmp_path / "out",
        ],
        tmp_path,
    )
    _, curves, config = _outputs(tmp_path / "out")
    _, before, _ = _outputs(full[1])
    before = before[before["order"].isin(["anti", "none"])]
    key = ["order", "seed", "step"]
    pd.testing.assert_frame_equal(
        curves.sort_values(key, ignore_index=True), before.sort_values(key, ignore_index=True)
    )
    assert config["order_source"] == (
        f"scores file {tmp_path / 'mine.csv'} (higher = easier; 1347 of 1347 scores "
        "matched the 1347 train examples by position in the split)"
    )


def test_self_taught_order_needs_no_score_run(tmp_path):
    proc = run_cli(
        [
            "train",
            "--by",
            "self-taught",
            "--orders",
            "curriculum,none",
            "--pacing",
            "single-step",
            "--start",
            "0.2",
            "--stage-length",
            "5",
            "--steps",
            "10",
            "--eval-every-steps",
            "5",
            "--seeds",
            "1",
            "--quiet",
        ],
        tmp_path,
    )
    assert proc.stdout == ""  # --quiet
    out = (
        tmp_path / "runs" / "digits" / "curriculum" / "single-step-self-taught"
    )  # no score run: the default place, named by the order source
    results, curves, config = _outputs(out)
    assert list(results["order"]) == ["curriculum", "none"] and len(curves) == 2 * 2
    assert config["order_source"] == "self-taught P(true class)"
    assert config["start"] == 0.2 and config["stage_length"] == 5


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("curriculum train: error: ")
    return lines[0]


def test_scores_of_another_dataset_in_a_subprocess(score_run, tmp_path):
    # without --quiet: no progress bar may start before the error
    proc = run_cli(
        ["train", "--dataset", "gabor", "--scores", score_run, "--steps", "20", "--out", tmp_path / "out"],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert "These scores belong to dataset 'digits', not to 'gabor'" in _one_error_line(proc.stderr)
    assert not (tmp_path / "out").exists()


RUN = "{score run}"  # replaced by the session's score run


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pacing", "cubic"], "--pacing must be one of exp, varied-exp, single-step, linear"),
        ([], "No scores at runs/digits; run `curriculum score --dataset digits` first"),
        (["--scores", "nowhere"], "No scores at nowhere; run `curriculum score --dataset digits --out nowhere` first"),
        (
            ["--orders", "curriculum,easy"],
            "--orders must be comma-separated names among curriculum, anti, random, none, got curriculum,easy.",
        ),
        (["--orders", ","], "--orders must be comma-separated names among"),
        (["--scores", RUN, "--pacing", "linear", "--a", "11"], "--a must be a finite number in (0, 10], got 11."),
        (["--scores", RUN, "--pacing", "quad", "--b", "-0.1"], "--b must be a finite number in [0, 1], got -0.1."),
        (["--scores", RUN, "--a", "0.5"], "exp pacing takes the parameters start, inc, stage_length; it has no a."),
        (["--steps", "0"], "--steps must be a whole number >= 1, got 0."),
        (["--eval-every-steps", "0"], "--eval-every-steps must be a whole number >= 1, got 0."),
        (["--seeds", "0"], "--seeds must be a whole number >= 1, got 0."),
        (["--target", "1.5"], "--target must be a finite number in (0, 1], got 1.5."),
        (
            ["--scores", RUN, "--batch-size", "5000"],
            "--batch-size 5000 exceeds the 1347 train examples; use at most 1347.",
        ),
    ],
)
def test_bad_input(args, message, score_run, tmp_path, monkeypatch, capsys):
    """The same CLI entry point in this process (a subprocess per case would cost seconds each)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CURRICULUM_CACHE", str(tmp_path / "cache"))
    args = [str(score_run) if a == RUN else a for a in args]
    code = cli.main(["train", "--steps", "20", *args, "--out", str(tmp_path / "out")])
    assert code == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_a_diverging_run_exits_2_and_writes_nothing(score_run, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        ["train", "--scores", score_run, "--orders", "curriculum", *TINY, "--lr", "10", "--quiet", "--out", out],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "The curriculum run (seed 0) diverged at step" in lines[0]
        and "nothing was written" in lines[0]
    )
    assert not out.exists()


def test_an_output_of_other_settings_is_refused_untouched(full, score_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(full[1], out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != LOCK_NAME}
    proc = run_cli(["train", "--scores", score_run, *TINY, "--seeds", "1", "--out", out], tmp_path, check=False)
    assert proc.returncode == 2
    assert f"Output directory {out} holds results of other settings (seeds)" in _one_error_line(proc.stderr)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != LOCK_NAME} == before
    files = json.loads((out / "config.json").read_text())["files"]  # written last: it names the results it belongs to
    assert files == {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in files} and len(files) == 3


def test_stacked_runs_reach_the_accuracies_they_reach_one_by_one(full, score_run, tmp_path):
    """Every order x seed run stacked into one model (float reassociation only) against the same
    runs trained one by one (the CPU default)."""
    (tmp_path / "stack.yaml").write_text('stack: "on"\n')
    run_cli(
        [
            "train",
            "--scores",
            score_run,
            *TINY,
            "--quiet",
            "--config",
            tmp_path / "stack.yaml",
            "--out",
            tmp_path / "out",
        ],
        tmp_path,
    )
    alone, stacked = _outputs(full[1])[1], _outputs(tmp_path / "out")[1]
    both = alone.merge(stacked, on=["order", "seed", "step"], suffixes=("_alone", "_stacked"))
    assert len(both) == len(alone) == 4 * 2 * 4
    # float32 reassociation may tip a label near a tie (the grouped way, in channels_last as the
    # runs one by one, gave all 32 evaluations exactly equal here); runs mixed up between orders or
    # seeds differ by far more.
    difference = (both.test_accuracy_alone - both.test_accuracy_stacked).abs()
    assert difference.max() <= 0.005 and (difference == 0).mean() >= 0.5, both
