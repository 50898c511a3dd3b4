"""Hacohen et al.'s other setups as commands: classical learners as a collection, train partitions and
out-of-sample probes; each run end to end in a real subprocess and checked against a direct
computation."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SCORE, load_record, run_cli, run_clis

from curriculum.data.datasets import load_dataset
from curriculum.data.probes import NOISE_IMAGES, probe_table
from scoring import Scores, agreement


def _pred(run, split):
    info = json.loads((run / "run.json").read_text())
    labels = Scores.load(run).split(split)["label"].to_numpy()
    return load_record(run, split, labels, info["members"], len(info["checkpoints"])).pred


def test_learners_are_a_collection_that_compares_with_networks(tmp_path, score_run):
    from sklearn.neighbors import KNeighborsClassifier

    run = tmp_path / "learners"
    run_cli(
        ["learners", "--learners", "knn,naive-bayes,logistic", "--fractions", "0.2,1", "--out", run, "--quiet"],
        tmp_path,
    )
    info = json.loads((run / "run.json").read_text())
    assert (
        info["status"] == "complete"
        and info["members"] == 3
        and [c["epoch"] for c in info["checkpoints"]] == [0, 0.2, 1]
    )
    data = load_dataset("digits")
    pred = _pred(run, "test")
    majority = np.bincount(data.train.labels).argmax()
    assert (pred[:, 0] == majority).all()  # checkpoint 0: the class prior
    x = data.train.images.reshape(len(data.train), -1) / 255
    part = np.random.default_rng(0).permutation(len(x))[: round(0.2 * len(x))]
    knn = KNeighborsClassifier(5).fit(x[part], data.train.labels[part])
    np.testing.assert_array_equal(pred[0, 1], knn.predict(data.test.images.reshape(len(data.test), -1) / 255))
    assert "of the train set" in (run / "report.md").read_text().split("\n")[2]
    run_cli(["compare", score_run, run, "--out", tmp_path / "cmp", "--quiet"], tmp_path)
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert list(table.split) == ["train", "test"] and (table.spearman_r > 0.2).all()


def test_unknown_learners_are_refused(tmp_path):
    proc = run_cli(["learners", "--learners", "svm,perceptron", "--out", tmp_path / "x"], tmp_path, check=False)
    assert proc.returncode == 2 and "perceptron" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_train_partitions_are_disjoint_and_compare_on_the_test_split(tmp_path):
    parts = [load_dataset(f"digits+part{k}of2") for k in range(2)]
    full = load_dataset("digits")
    assert not set(parts[0].train.ids) & set(parts[1].train.ids)
    assert sorted([*parts[0].train.ids, *parts[1].train.ids]) == sorted(full.train.ids)
    assert all(np.array_equal(p.test.images, full.test.images) for p in parts)
    run_clis(
        [["score", *TINY_SCORE, "--dataset", f"digits+part{k}of2", "--out", tmp_path / f"p{k}"] for k in range(2)],
        tmp_path,
    )
    run_cli(["compare", tmp_path / "p0", tmp_path / "p1", "--out", tmp_path / "cmp", "--quiet"], tmp_path)
    assert list(pd.read_csv(tmp_path / "cmp" / "comparison.csv").split) == ["test"]  # the train splits differ
    proc = run_cli(
        ["score", *TINY_SCORE, "--dataset", "digits+part2of2", "--out", tmp_path / "bad"], tmp_path, check=False
    )
    assert proc.returncode == 2 and "+part<k>of<P>" in proc.stderr


def test_probe_consensus_is_recorded_and_reported(tmp_path):
    run = tmp_path / "probe"
    run_cli(["score", *TINY_SCORE, "--probe", "noise", "--out", run], tmp_path)
    probe = np.stack([np.load(run / "records" / f"member_{m:03d}" / "probe.pred.npy") for m in range(2)])
    assert probe.shape == (2, NOISE_IMAGES) and probe.min() >= 0 and probe.max() < 10
    table = probe_table({"noise": probe})
    assert table.unanimous[0] == pytest.approx(np.mean(probe[0] == probe[1]))
    assert table.consensus[0] == pytest.approx(agreement.consensus(probe[:, None, :])[0].mean())
    assert f"the members give the same label to {table.unanimous[0]:.1%}" in (run / "report.md").read_text()
    assert (run / "figures" / "probe_consensus.png").stat().st_size > 10_000
    proc = run_cli(["score", *TINY_SCORE, "--probe", "no-such-set", "--out", tmp_path / "bad"], tmp_path, check=False)
    assert proc.returncode == 2 and not (tmp_path / "bad").exists()
