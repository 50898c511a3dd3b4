"""Scores that travel: ids and alignment, --record-probs, and every export format read back."""

import json
import pickle

import datasets
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from conftest import run_cli
from curriculum.data.datasets import load_dataset
from scoring import Scores, UserError, content_hash
from scoring.formats import export, load_external_scores, read_scores


def test_digits_ids_are_load_digits_indices_and_hashes_its_pixels(score_run):
    scores = Scores.load(score_run)
    digits = load_digits()
    rows = scores.table.sample(20, random_state=0)
    for _, row in rows.iterrows():
        pixels = np.rint(digits.images[int(row["id"])] * 255 / 16).astype(np.uint8)
        assert digits.target[int(row["id"])] == row["label"]
        assert content_hash(pixels) == row["content_hash"]
    assert sorted(scores.table["id"].astype(int)) == list(range(1797))


def test_align_by_id_by_path_and_by_content_hash(score_run):
    scores = Scores.load(score_run)
    digits = load_digits()
    by_id = scores.align(np.arange(1797))  # the user's own load_digits() order
    assert by_id.count == 1797 and str(by_id) == "1797 of 1797 examples matched by id"
    expected = scores.table.set_index("id").loc[[str(i) for i in range(1797)], "accessibility"].to_numpy()
    np.testing.assert_array_equal(by_id.column("accessibility"), expected)
    images = np.rint(digits.images * 255 / 16).astype(np.uint8)
    by_hash = scores.align(images[:100], split="test")
    test_ids = set(scores.split("test")["id"])
    assert by_hash.matched.tolist() == [str(i) in test_ids for i in range(100)]
    assert by_hash.by == "content_hash" and by_hash.ambiguous == 0
    paths = scores.align([f"/home/me/digits/{i}" for i in (3, 9999)])
    assert paths.matched.tolist() == [True, False] and np.isnan(paths.column("accessibility")[1])


def test_folder_that_gains_a_file_is_remapped_by_path(tmp_path):
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for k in range(2):
        (root / f"c{k}").mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / f"c{k}" / f"{i}.png")
    before = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    table = pd.DataFrame({"split": "train", "index": np.arange(len(before.train)), "id": before.train.ids,
                          "content_hash": before.train.content_hashes, "score": np.arange(len(before.train), dtype=float)})
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "c0" / "new.png")
    after = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert after.fingerprint != before.fingerprint
    aligned = Scores(table, {"directions": {"score": "higher"}}).align(after.train.ids)
    kept = [i for i in after.train.ids if i in set(before.train.ids)]
    assert aligned.count == len(kept) and all(i.startswith(("c0/", "c1/")) for i in after.train.ids)
    assert aligned.table.loc[aligned.matched, "id"].tolist() == kept


def test_record_probs_prints_its_size_and_matches_the_record(probs_run):
    assert ("The record takes 0.3 MiB on disk (2 members x 3 checkpoints x 1797 examples, 6 bytes an entry, of which "
            "0.2 MiB are the class probabilities of --record-probs)." in (probs_run / "stdout.txt").read_text())
    folder = probs_run / "records" / "member_001"
    probs = np.load(folder / "test.probs.npy")
    assert probs.shape == (3, 450, 10) and probs.dtype == np.float16
    pred = np.load(folder / "test.pred.npy").astype(np.int64)
    # the predicted class has the largest probability (float16 rounding can tie it with another)
    np.testing.assert_array_equal(np.take_along_axis(probs, pred[..., None], 2)[..., 0], probs.max(2))
    labels = Scores.load(probs_run).split("test")["label"].to_numpy()
    np.testing.assert_array_equal(probs[:, np.arange(450), labels], np.load(folder / "test.p_true.npy"))


def test_tables_export_and_import_with_their_directions(score_run, tmp_path):
    scores = Scores.load(score_run)
    labels = scores.split("train")["label"].to_numpy()
    ids = scores.split("train")["id"].to_numpy()
    for name in ("s.csv", "s.parquet"):
        export(score_run, tmp_path / name, name.split(".")[1])
        values, easier = load_external_scores(tmp_path / name, labels, ids=ids, column="learned_checkpoint")
        np.testing.assert_array_equal(values, scores.column("learned_checkpoint"))
        assert easier == "lower"
        with pytest.raises(UserError, match="says lower 'learned_checkpoint' is easier but the direction given is higher"):
            read_scores(tmp_path / name, column="learned_checkpoint", direction="higher")
    assert json.loads((tmp_path / "s.csv.json").read_text())["exported_from"] == str(score_run)
    assert read_scores(tmp_path / "s.csv").column == "accessibility"
    (tmp_path / "s.csv.json").unlink()
    with pytest.raises(UserError, match="does not say whether a higher or lower 'accessibility'"):
        read_scores(tmp_path / "s.csv", column="accessibility")


def test_cscore_forgetting_and_cleanlab_round_trip(probs_run, tmp_path):
    scores = Scores.load(probs_run)
    train, test = scores.split("train"), scores.split("test")
    export(probs_run, tmp_path / "c.npz", "cscore")
    values, easier = load_external_scores(tmp_path / "c.npz", train["label"], ids=train["id"])
    np.testing.assert_array_equal(values, train["accessibility"])
    assert easier == "higher"
    with pytest.raises(UserError, match="higher = easier, but 'forgetting' is lower"):
        export(probs_run, tmp_path / "f.npz", "cscore", by="forgetting")
    export(probs_run, tmp_path / "f.pkl", "forgetting")
    with open(tmp_path / "f.pkl", "rb") as handle:
        raw = pickle.load(handle)
    assert np.all(np.diff(raw["forgetting counts"]) >= 0) and sorted(raw["indices"]) == list(range(1347))
    values, easier = load_external_scores(tmp_path / "f.pkl", train["label"])
    np.testing.assert_array_equal(values, train["forgetting"])
    assert easier == "lower"
    export(probs_run, tmp_path / "cl.npz", "cleanlab")
    with np.load(tmp_path / "cl.npz") as npz:
        pred_probs, labels = npz["pred_probs"], npz["labels"]
    np.testing.assert_allclose(pred_probs.sum(1), 1, rtol=1e-5)
    mean = sum(np.load(probs_run / "records" / f"member_00{m}" / "test.probs.npy")[-1].astype(np.float64) for m in (0, 1)) / 2
    np.testing.assert_allclose(pred_probs, mean / mean.sum(1, keepdims=True), rtol=1e-5)
    assert pred_probs.shape == (450, 10) and labels.tolist() == test["label"].tolist()
    imported = read_scores(tmp_path / "cl.npz")
    assert imported.direction == "higher" and imported.column == "self_confidence"


def test_cartography_dynamics_give_back_the_data_map(probs_run, tmp_path):
    export(probs_run, tmp_path / "carto", "cartography")
    first = (tmp_path / "carto" / "member_000" / "training_dynamics" / "dynamics_epoch_0.jsonl").read_text().splitlines()[0]
    assert set(json.loads(first)) == {"guid", "logits_epoch_0", "gold"}
    assert not (tmp_path / "carto" / "member_000" / "training_dynamics" / "dynamics_epoch_2.jsonl").exists()  # 2 trained checkpoints
    train = Scores.load(probs_run).split("train")
    for column in ("confidence", "correctness", "variability"):
        imported = read_scores(tmp_path / "carto", column=column, direction="higher" if column == "variability" else None)
        assert imported.table["id"].tolist() == train["id"].tolist()
        gap = np.abs(imported.table["score"].to_numpy() - train[column].to_numpy())
        if column == "correctness":  # where the top two probabilities round to the same float16, the exported argmax
            assert (gap > 2e-3).mean() < 0.005 and gap.max() <= 0.25  # may flip: one checkpoint of one member (1 / 4)
        else:
            assert gap.max() <= 2e-3  # float16 probabilities
    metrics = read_scores(tmp_path / "carto" / "td_metrics.jsonl", column="forgetfulness")
    assert metrics.direction == "lower" and metrics.table["score"].tolist() == train["forgetting"].tolist()


def test_hf_column_is_added_by_id_and_the_cli_exports_it(score_run, tmp_path):
    ids = [str(i) for i in range(1797)]
    ds = datasets.DatasetDict(train=datasets.Dataset.from_dict({"id": ids, "x": list(range(1797))}))
    ds.save_to_disk(str(tmp_path / "hf"))
    proc = run_cli(["export", score_run, "--format", "hf", "--hf-dataset", tmp_path / "hf", "--by", "accessibility",
                    "--out", tmp_path / "hf-out"], tmp_path)
    assert "1797 of 1797 examples matched by id" in proc.stdout
    column = datasets.load_from_disk(str(tmp_path / "hf-out"))["train"]["accessibility"]
    table = Scores.load(score_run).table.set_index("id")
    assert column[:50] == table.loc[ids[:50], "accessibility"].tolist()
    bad = run_cli(["export", score_run, "--format", "cartography", "--out", tmp_path / "c"], tmp_path, check=False)
    assert bad.returncode == 2 and "--record-probs" in bad.stderr
