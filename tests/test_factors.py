"""Known difficulty: a generated dataset's factors travel into the scores, the report relates the
scores and the image statistics to them, with the sign construction predicts."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from curriculum.config.recipes import base_name
from curriculum.data.datasets import load_dataset
from curriculum.data.factors import factor_columns, factor_correlations, factor_sentence, factor_table
from curriculum.stages.stats import dataset_statistics, statistics_vs_factors
from scoring import Scores
from stats.distributions import spearman


def test_expected_signs_follow_both_directions():
    table = pd.DataFrame(
        {
            "split": "train",
            "factor_size": [1.0, 2, 3, 4, 5],  # larger is easier
            "factor_noise": [5.0, 4, 3, 2, 1],  # less is easier
            "factor_x": [3.0, 1, 4, 1, 5],  # nuisance
            "accessibility": [0.1, 0.2, 0.3, 0.5, 0.4],  # higher is easier
            "learned_checkpoint": [5.0, 4, 3, 1, 2],  # lower is easier
        }
    )
    directions = {
        "factor_size": "higher",
        "factor_noise": "lower",
        "factor_x": None,
        "accessibility": "higher",
        "learned_checkpoint": "lower",
    }
    got = factor_correlations(table, ["accessibility", "learned_checkpoint"], directions).set_index(
        ["factor", "column"]
    )
    assert got.loc[("size", "accessibility"), "spearman_r"] == pytest.approx(0.9)  # ranks 1 2 3 5 4
    assert got.loc[("size", "accessibility"), "expected"] == "+"
    assert got.loc[("size", "learned_checkpoint"), "expected"] == "-"
    assert got.loc[("noise", "accessibility"), "expected"] == "-"
    assert got.loc[("noise", "learned_checkpoint"), "expected"] == "+"
    assert got["as_built"].drop([("x", "accessibility"), ("x", "learned_checkpoint")]).all()
    assert got.loc[("x", "accessibility"), "expected"] == "" and got.loc[("x", "accessibility"), "as_built"] is None
    text = factor_table(got.reset_index())
    assert "| size | +0.900 ✓ | -0.900 ✓ |" in text and "| x | " in text and "✓" not in text.split("| x |")[1]


def test_factor_columns_take_the_generator_directions():
    assert base_name("shapes:2000/400-seed1+noise0.1") == "shapes" and base_name("gabor-overlap") == "gabor-overlap"
    columns, ways = factor_columns({"size": np.arange(3), "x": np.ones(3)}, "shapes:300/60-seed2")
    assert columns["factor_size"].dtype == np.float64
    assert ways == {"factor_size": "higher", "factor_x": None}
    assert factor_columns({"margin": np.zeros(2)}, "gaussian")[1] == {"factor_margin": "higher"}


def test_image_statistics_track_what_the_generator_varies(tmp_path):
    """On shapes the statistics measure what they claim: DCT's count of important coefficients
    and local entropy rise with pixel noise, edge strength with background clutter, and the
    segment count with contrast; none follows the centre's position."""
    dataset = load_dataset("shapes:400/100")
    table = statistics_vs_factors(dataset, dataset_statistics(dataset, workers=1, cache_dir=tmp_path))
    r = table[table["split"] == "train"].set_index(["factor", "column"])["spearman_r"]
    assert r[("noise", "dct")] > 0.8 and r[("noise", "entropy")] > 0.5
    assert r[("clutter", "edges")] > 0.3
    assert r[("contrast", "segments")] > 0.25
    assert max(abs(r[("x", s)]) for s in ("segments", "entropy", "dct", "edges")) < 0.2


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shapes")
    run = tmp / "run"
    args = [
        "score",
        "--dataset",
        "shapes:200/100",
        "--arch",
        "small-st-vgg",
        "--members",
        "2",
        "--epochs",
        "1",
        "--eval-every",
        "0.5",
        "--processes",
        "1",
        "--out",
        run,
    ]
    return run, run_cli(args, tmp)


def test_a_score_run_carries_the_factors_and_relates_them(shapes_run):
    run, proc = shapes_run
    dataset = load_dataset("shapes:200/100")
    scores = Scores.load(run)
    for split in ("train", "test"):
        rows = scores.split(split)
        for name, values in dataset.split(split).factors.items():
            np.testing.assert_array_equal(rows[f"factor_{name}"].to_numpy(), values)
    assert scores.directions["factor_contrast"] == "higher" and scores.directions["factor_noise"] == "lower"
    assert scores.directions["factor_y"] is None
    # an order by a factor is an oracle curriculum: highest contrast first within each class
    order = scores.order(by="factor_contrast", balanced=False)
    assert (np.diff(scores.split("train")["factor_contrast"].to_numpy()[order]) <= 0).all()

    table = pd.read_csv(run / "factors.csv")
    row = table[(table.factor == "size") & (table.column == "accessibility") & (table.split == "test")].iloc[0]
    test = scores.split("test")
    assert row.spearman_r == pytest.approx(spearman(test["accessibility"], test["factor_size"])[0])
    assert set(table.column) == {"accessibility", "confidence"} and set(table.split) == {"train", "test"}
    report = (run / "report.md").read_text()
    assert "Known difficulty" in report and "(figures/factors.png)" in report
    assert factor_sentence(table.fillna({"expected": ""})) in report.split("\n")[2]  # the opening sentences
    assert "| size | " in report and "Known difficulty" in proc.stdout
    assert (run / "figures" / "factors.png").stat().st_size > 10_000


def test_stats_on_a_shapes_run_adds_the_factor_table(shapes_run, tmp_path):
    run, _ = shapes_run
    proc = run_cli(["stats", "--dataset", "shapes:200/100", "--run", run, "--workers", "1"], tmp_path)
    table = pd.read_csv(run / "statistics_factors.csv")
    scores = Scores.load(run).split("train")
    row = table[(table.factor == "noise") & (table.column == "dct") & (table.split == "train")].iloc[0]
    assert row.spearman_r == pytest.approx(spearman(scores["dct"], scores["factor_noise"])[0])
    section = (run / "report.md").read_text().split("<!-- section: stats -->")[1]
    assert "each factor that generated the examples" in section and "| noise |" in section
    assert "statistics_factors.csv" in proc.stdout


def test_the_factor_sentence_counts_one_split():
    rows = [
        (split, factor, r, "+", r > 0)
        for split in ("train", "test")
        for factor, r in (("size", 0.3 if split == "test" else 0.5), ("contrast", -0.1))
    ]
    table = pd.DataFrame(
        [
            {"column": "accessibility", "split": s, "factor": f, "spearman_r": r, "expected": e, "as_built": a}
            for s, f, r, e, a in rows
        ]
    )
    assert factor_sentence(table) == (
        "On the test examples, accessibility tracks 1 of the 2 difficulty factors the "
        "generator controls with the sign construction predicts; the strongest is size "
        "(Spearman r = +0.30)."
    )
