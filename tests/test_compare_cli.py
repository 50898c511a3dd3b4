"""`curriculum compare` end to end: every number checked against the metric functions applied to
the records directly, label-noise variants accepted, other data refused in one sentence."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SCORE, load_record, run_cli, run_clis

from scoring import Scores, agreement
from stats.distributions import spearman


def _correct(run, split):
    info = json.loads((run / "run.json").read_text())
    labels = Scores.load(run).split(split)["label"].to_numpy()
    return load_record(run, split, labels, info["members"], len(info["checkpoints"])).correct


@pytest.fixture(scope="module")
def runs(tmp_path_factory, score_run):
    tmp = tmp_path_factory.mktemp("compare")
    run_clis(
        [
            ["score", *SMALL_SCORE, "--seed", "1", "--out", tmp / "seed1"],
            ["score", *SMALL_SCORE, "--arch", "linear-small-st-vgg", "--out", tmp / "linear"],
        ],
        tmp,
    )
    first = tmp / "first"
    shutil.copytree(score_run, first)
    proc = run_cli(["compare", first, tmp / "seed1", tmp / "linear", "--out", tmp / "cmp"], tmp)
    return tmp, first, proc


def test_correlations_and_ceiling_match_the_records(runs):
    tmp, first, proc = runs
    table = pd.read_csv(tmp / "cmp" / "comparison.csv")
    assert len(table) == 3 * 2  # three pairs, both splits
    for row in table.itertuples():
        a, b = (first if row.run_a == "first" else tmp / row.run_a), tmp / row.run_b
        ca, cb = _correct(a, row.split), _correct(b, row.split)
        r, _ = agreement.accessibility_correlation(ca, cb)
        rho, _ = spearman(agreement.accessibility(ca), agreement.accessibility(cb))
        assert row.pearson_r == pytest.approx(r) and row.spearman_r == pytest.approx(rho)
        rel = [Scores.load(run).reliability.loc["accessibility", row.split] for run in (a, b)]
        assert row.ceiling == pytest.approx(np.sqrt(rel[0] * rel[1]))
        assert 0.3 < row.spearman_r < 1  # digits: collections learn in a related order
    assert "Spearman r of accessibility" in proc.stdout and "noise ceiling" in proc.stdout


def test_matched_checkpoints_are_within_the_tolerance_and_cross_consistency_is_the_merge(runs):
    tmp, first, _ = runs
    matched = pd.read_csv(tmp / "cmp" / "matched.csv")
    assert len(matched) and (matched.checkpoint_a > 0).all() and (matched.checkpoint_b > 0).all()
    assert ((matched.error_a - matched.error_b).abs() <= 0.01 + 1e-9).all()
    row = matched[matched.run_b == "seed1"].iloc[0]
    ia, ib = int(row.checkpoint_a), int(row.checkpoint_b)
    ca, cb = _correct(first, row.split), _correct(tmp / "seed1", row.split)
    assert 1 - ca[:, ia].mean() == pytest.approx(row.error_a)
    merged = np.concatenate([ca[:, ia], cb[:, ib]]).mean(0)
    assert row.at1_observed == pytest.approx(np.mean(merged == 1)) and row.at0_observed == pytest.approx(
        np.mean(merged == 0)
    )
    assert row.mean_cross_consistency == pytest.approx(merged.mean())


def test_easy_sets_compare_the_same_epochs(runs):
    tmp, first, _ = runs
    easy = pd.read_csv(tmp / "cmp" / "easy_sets.csv")
    rows = easy[(easy.run_a == "first") & (easy.run_b == "linear") & (easy.split == "test")]
    assert list(rows.epoch_a) == list(rows.epoch_b) == [0.5, 1.0, 1.5, 2.0]
    ca, cb = _correct(first, "test"), _correct(tmp / "linear", "test")
    last = rows.iloc[-1]
    a, b = ca[:, -1].mean(0) > 0.9, cb[:, -1].mean(0) > 0.9
    assert (last.both, last.only_a, last.only_b) == ((a & b).sum(), (a & ~b).sum(), (~a & b).sum())


def test_outputs_figures_and_report_sections(runs):
    tmp, first, _ = runs
    for stem in ("first_vs_seed1", "first_vs_linear", "seed1_vs_linear"):
        for kind in ("accessibility", "easy_sets"):
            assert (tmp / "cmp" / "figures" / f"{stem}_{kind}.png").stat().st_size > 10_000
    report = (first / "report.md").read_text()
    assert report.count("<!-- section: compare-seed1-linear -->") == 1 and "## Score run" in report
    assert "](compare/figures/" not in report and "first_vs_seed1_accessibility.png" in report
    run_cli(["compare", first, tmp / "seed1", tmp / "linear", "--out", tmp / "cmp", "--quiet"], tmp)
    assert (first / "report.md").read_text().count("<!-- section: compare-seed1-linear -->") == 1  # replaced, not added


def test_a_label_noise_variant_compares_by_its_images(runs, tmp_path):
    tmp, first, _ = runs
    run_cli(["score", *SMALL_SCORE, "--label-noise", "1", "--out", tmp_path / "noisy"], tmp_path)
    proc = run_cli(["compare", first, tmp_path / "noisy", "--out", tmp_path / "cmp"], tmp_path)
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv").set_index("split")
    assert not table.loc["train", "labels_equal"] and table.loc["test", "labels_equal"]
    assert abs(table.loc["train", "spearman_r"]) < 0.3  # random labels: no shared order on the train set
    assert "the labels differ" in proc.stdout


@pytest.mark.parametrize("case", ["other images", "one run", "missing run", "bad tol"])
def test_bad_input_is_one_sentence(runs, tmp_path, case):
    tmp, first, _ = runs
    other = tmp_path / "other"
    args = [first, other]
    if case == "other images":
        shutil.copytree(tmp / "seed1", other)
        info = json.loads((other / "run.json").read_text())
        info["dataset"].update(name="gabor", fingerprint="0" * 64, images={"train": "1" * 64, "test": "2" * 64})
        (other / "run.json").write_text(json.dumps(info))
    elif case == "one run":
        args = [first]
    elif case == "bad tol":
        args = [first, tmp / "seed1", "--tol", "2"]
    proc = run_cli(["compare", *args, "--out", tmp_path / "cmp"], tmp_path, check=False)
    assert proc.returncode == 2
    message = proc.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("curriculum compare: error:"), proc.stderr
    assert not (tmp_path / "cmp").exists()
    if case == "other images":
        assert "hold different images" in message[0]
