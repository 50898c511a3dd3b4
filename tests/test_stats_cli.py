"""`curriculum stats`: statistics become score columns, their relation to learning order is saved,
and the second call reads the cache."""

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SCORE, load_record, run_cli

from curriculum.data.datasets import load_dataset
from scoring import Scores
from stats.distributions import spearman
from stats.images import compute_statistics


@pytest.fixture(scope="module")
def stats_run(tmp_path_factory, score_run):
    tmp = tmp_path_factory.mktemp("stats")
    run = tmp / "run"
    shutil.copytree(score_run, run)
    proc = run_cli(["stats", "--run", run], tmp)
    return tmp, run, proc


def test_statistics_become_columns_with_the_library_values(stats_run):
    _, run, proc = stats_run
    scores = Scores.load(run)
    train = scores.split("train")
    images = load_dataset("digits").train.images
    expected = compute_statistics(images[:20], window=8)  # digits are 8x8: the window shrinks to the image
    for name in ("segments", "entropy", "dct", "edges"):
        np.testing.assert_allclose(train[name].to_numpy()[:20], expected[name], err_msg=name)
        assert scores.directions[name] is None
        assert name in proc.stdout


def test_correlations_and_agreed_curves_match_a_direct_computation(stats_run):
    _, run, _ = stats_run
    train = Scores.load(run).split("train")
    table = pd.read_csv(run / "statistics.csv").set_index("statistic")
    r, p = spearman(train["entropy"], train["accessibility"])
    assert table.loc["entropy", "spearman_r"] == pytest.approx(r)
    assert table.loc["entropy", "p_value"] == pytest.approx(p)
    assert table.loc["edges", "mean"] == pytest.approx(train["edges"].mean())

    curves = pd.read_csv(run / "statistics_curves.csv")
    record = load_record(run, "train", train["label"].to_numpy(), members=3, checkpoints=5)
    agreed = record.correct[:, -1].all(axis=0)  # examples all 3 members get right at the last checkpoint
    last = curves[(curves.split == "train") & (curves.statistic == "dct") & (curves.checkpoint == 4)]
    assert last["agreed_mean"].item() == pytest.approx(train["dct"][agreed].mean())
    assert (run / "figures" / "statistics_vs_agreement.png").stat().st_size > 10_000


def test_report_gains_a_statistics_section(stats_run):
    _, run, _ = stats_run
    table = pd.read_csv(run / "statistics.csv")
    strongest = table.iloc[table["spearman_r"].abs().argmax()]
    section = (run / "report.md").read_text().split("<!-- section: stats -->")[1].split("<!-- end: stats -->")[0]
    assert f"Spearman r = {strongest.spearman_r:+.2f} with accessibility" in section
    assert "mean local entropy (bits)" in section and "(figures/statistics_vs_agreement.png)" in section


def test_second_call_reads_the_cache(stats_run):
    tmp, run, _ = stats_run
    [cache] = (tmp / "cache" / "statistics").glob("*.npz")
    with np.load(cache) as stored:
        values = dict(stored)
    values["train/edges"] = np.full_like(values["train/edges"], 7.0)  # a value only the cache can supply
    np.savez(cache, **values)
    run_cli(["stats", "--run", run, "--quiet"], tmp)
    assert np.all(Scores.load(run).split("train")["edges"] == 7.0)


def test_without_a_run_prints_the_table_and_the_command_to_run(tmp_path):
    proc = run_cli(["stats", "--dataset", "digits"], tmp_path)
    assert "entropy" in proc.stdout and "curriculum score --dataset digits" in proc.stdout


def test_a_missing_or_foreign_run_is_refused(tmp_path, score_run):
    proc = run_cli(["stats", "--run", tmp_path / "nowhere"], tmp_path, check=False)
    assert proc.returncode == 2 and "run `curriculum score --dataset digits" in proc.stderr
    proc = run_cli(["stats", "--dataset", "gabor", "--run", score_run], tmp_path, check=False)
    assert proc.returncode == 2 and "fingerprints differ" in proc.stderr and "Traceback" not in proc.stderr


def test_score_rerun_keeps_the_statistics_columns(stats_run, tmp_path):
    _, run, _ = stats_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = Scores.load(copy)
    run_cli(["score", *SMALL_SCORE, "--out", copy], tmp_path)  # finished: only the report is written again
    after = Scores.load(copy)
    pd.testing.assert_frame_equal(after.table, before.table)
    assert after.directions == before.directions


@pytest.mark.parametrize(
    "missing, message",
    [
        ("summary.csv", "has no summary.csv; run `curriculum score --dataset digits --out"),
        ("run.json", "holds scores but no run.json; delete"),
    ],
)
def test_a_run_missing_a_file_is_refused_before_anything_is_written(score_run, tmp_path, missing, message):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    (run / missing).unlink()
    parquet = (run / "scores.parquet").read_bytes()
    proc = run_cli(["stats", "--run", run], tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (run / "scores.parquet").read_bytes() == parquet


def test_a_truncated_cache_is_recomputed(stats_run):
    tmp, run, _ = stats_run
    [cache] = (tmp / "cache" / "statistics").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:200])
    proc = run_cli(["stats", "--run", run, "--quiet"], tmp)
    assert "is truncated or corrupt; it is recomputed" in proc.stderr
    with np.load(cache) as stored:
        assert len(stored.files) == 8


def test_the_statistics_figure_keeps_its_title(monkeypatch, tmp_path):
    """The suptitle names the run (a panel's label once overwrote it with the last statistic's)."""
    from curriculum.reporting import figures

    summary = pd.DataFrame({"split": "train", "epoch": [0.0, 1.0], "tpa": [0.3, 0.6], "acc_mean": [0.5, 0.8]})
    curves = pd.DataFrame(
        {
            "split": "train",
            "checkpoint": [0, 1] * 2,
            "epoch": [0.0, 1.0] * 2,
            "statistic": ["entropy"] * 2 + ["edges"] * 2,
            "agreed_mean": [1.0, 2.0, 3.0, 4.0],
            "tpa": [0.3, 0.6] * 2,
            "dataset_mean": [1.5] * 2 + [3.5] * 2,
            "dataset_std": [0.5] * 4,
        }
    )
    table = pd.DataFrame({"statistic": ["entropy", "edges"], "spearman_r": [0.1, -0.2], "p_value": [0.5, 0.1]})
    drawn = {}
    monkeypatch.setattr(figures, "save", lambda fig, path: drawn.setdefault("fig", fig))
    figures.statistics_figure(summary, curves, table, tmp_path / "s.png", "digits, 3 x small-st-vgg")
    fig = drawn["fig"]
    assert fig._suptitle.get_text().startswith("digits, 3 x small-st-vgg;")
    assert [ax.get_title() for ax in fig.axes[1:]] == ["mean local entropy", "edge strength (Sobel magnitude summed)"]
