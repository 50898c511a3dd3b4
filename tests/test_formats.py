"""Scores that travel: ids and alignment, --record-probs, and every export format read back."""

import json
import pickle

import datasets
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SCORE, run_cli
from PIL import Image
from sklearn.datasets import load_digits

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
    table = pd.DataFrame(
        {
            "split": "train",
            "index": np.arange(len(before.train)),
            "id": before.train.ids,
            "content_hash": before.train.content_hashes,
            "score": np.arange(len(before.train), dtype=float),
        }
    )
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "c0" / "new.png")
    after = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert after.fingerprint != before.fingerprint
    aligned = Scores(table, {"directions": {"score": "higher"}}).align(after.train.ids)
    kept = [i for i in after.train.ids if i in set(before.train.ids)]
    assert aligned.count == len(kept) and all(i.startswith(("c0/", "c1/")) for i in after.train.ids)
    assert aligned.table.loc[aligned.matched, "id"].tolist() == kept


def test_record_probs_prints_its_size_and_matches_the_record(probs_run):
    assert (
        "The record takes 0.3 MiB on disk (2 members x 3 checkpoints x 1797 examples, 6 bytes an entry, of which "
        "0.2 MiB are the class probabilities of --record-probs)." in (probs_run / "stdout.txt").read_text()
    )
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
        values, easier, _ = load_external_scores(tmp_path / name, labels, ids=ids, column="learned_checkpoint")
        np.testing.assert_array_equal(values, scores.column("learned_checkpoint"))
        assert easier == "lower"
        with pytest.raises(
            UserError, match="says lower 'learned_checkpoint' is easier but the direction given is higher"
        ):
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
    values, easier, _ = load_external_scores(tmp_path / "c.npz", train["label"], ids=train["id"])
    np.testing.assert_array_equal(values, train["accessibility"])
    assert easier == "higher"
    with pytest.raises(UserError, match="higher = easier, but 'forgetting' is lower"):
        export(probs_run, tmp_path / "f.npz", "cscore", by="forgetting")
    export(probs_run, tmp_path / "f.pkl", "forgetting")
    with open(tmp_path / "f.pkl", "rb") as handle:
        raw = pickle.load(handle)
    assert np.all(np.diff(raw["forgetting counts"]) >= 0) and raw["indices"].dtype == np.int64
    assert sorted(raw["indices"]) == sorted(train["id"].astype(int))  # ids (load_digits indices), not positions
    values, easier, note = load_external_scores(tmp_path / "f.pkl", train["label"], ids=train["id"])
    np.testing.assert_array_equal(values, train["forgetting"])
    assert (
        easier == "lower"
        and note == f"{tmp_path / 'f.pkl'}: 1347 of 1347 scores matched the 1347 train examples by id."
    )
    # Toneva et al.'s own file holds positions in the train split, fewest forgetting events first
    order = np.argsort(train["forgetting"].to_numpy(), kind="stable")
    (tmp_path / "theirs.pkl").write_bytes(
        pickle.dumps({"indices": order, "forgetting counts": train["forgetting"].to_numpy()[order]})
    )
    values, _, note = load_external_scores(tmp_path / "theirs.pkl", train["label"], ids=train["id"])
    np.testing.assert_array_equal(values, train["forgetting"])
    assert note.endswith("1347 of 1347 scores matched the 1347 train examples by position in the split.")
    export(probs_run, tmp_path / "cl.npz", "cleanlab")
    with np.load(tmp_path / "cl.npz") as npz:
        pred_probs, labels = npz["pred_probs"], npz["labels"]
    np.testing.assert_allclose(pred_probs.sum(1), 1, rtol=1e-5)
    mean = (
        sum(np.load(probs_run / "records" / f"member_00{m}" / "test.probs.npy")[-1].astype(np.float64) for m in (0, 1))
        / 2
    )
    np.testing.assert_allclose(pred_probs, mean / mean.sum(1, keepdims=True), rtol=1e-5)
    assert pred_probs.shape == (450, 10) and labels.tolist() == test["label"].tolist()
    with np.load(tmp_path / "cl.npz") as npz:
        assert npz["ids"].tolist() == test["id"].astype(int).tolist() and str(npz["sample"]) == "out-of-sample"
    imported = read_scores(tmp_path / "cl.npz")
    assert imported.direction == "higher" and imported.column == "self_confidence"
    _, notes = export(probs_run, tmp_path / "cl-train.npz", "cleanlab", split="train")
    assert notes[0].startswith("pred_probs of the 1347 train examples are in-sample")


def test_cscores_over_the_sources_whole_original_order_and_file_names_align(probs_run, tmp_path):
    """The published C-score files list every example of the source in its original order (all
    1797 load_digits rows for the 1347-row train split); ImageNet's name them by file name."""
    train = Scores.load(probs_run).split("train")
    digits = load_digits()
    everything = np.linspace(0, 1, 1797)
    np.savez(tmp_path / "orig-order.npz", labels=digits.target, scores=everything)
    values, _, note = load_external_scores(tmp_path / "orig-order.npz", train["label"], ids=train["id"])
    np.testing.assert_array_equal(values, everything[train["id"].astype(int)])
    assert note.endswith(
        "1347 of 1797 scores matched the 1347 train examples by position in the source's original order "
        "(row r is the example whose id is r)."
    )
    ids = np.array([f"n0{k % 3}/img_{k}.JPEG" for k in range(6)])
    np.savez(
        tmp_path / "imagenet.npz",
        filenames=np.array([name.split("/")[1].encode() for name in ids[::-1]]),
        labels=np.arange(6)[::-1] % 3,
        scores=np.arange(6.0)[::-1],
    )
    values, _, note = load_external_scores(tmp_path / "imagenet.npz", np.arange(6) % 3, ids=ids)
    assert values.tolist() == list(range(6)) and note.endswith(
        "6 of 6 scores matched the 6 train examples by file name."
    )
    with pytest.raises(UserError, match="several files of the dataset share 1 of its names"):
        load_external_scores(tmp_path / "imagenet.npz", np.arange(6) % 3, ids=[*ids[:5], "other/img_0.JPEG"])


def test_a_noise_run_has_its_flipped_labels_and_a_file_of_it_names_its_dataset(tmp_path):
    run = tmp_path / "noise"
    run_cli(["score", *TINY_SCORE, "--dataset", "digits+noise0.2", "--record-probs", "--out", run], tmp_path)
    train = Scores.load(run).split("train")
    clean = load_dataset("digits").train.labels
    np.testing.assert_array_equal(train["clean_label"], clean)
    np.testing.assert_array_equal(train["label_flipped"], (clean != train["label"]).astype(float))
    assert 0.15 < train["label_flipped"].mean() < 0.2  # 20 % replaced, a tenth of those by their own class
    assert (
        Scores.load(run).directions["label_flipped"] is None
        and Scores.load(run).split("test")["label_flipped"].isna().all()
    )
    export(run, tmp_path / "noise_train.npz", "cscore")
    with pytest.raises(
        UserError,
        match=r"differ from the dataset's \(by id\); the file was scored on 'digits\+noise0.2' and "
        r"the labels are those of 'digits': pass --dataset digits\+noise0.2",
    ):
        load_external_scores(tmp_path / "noise_train.npz", clean, ids=train["id"], dataset="digits")


def _their_metrics(model_dir):
    """Swayamdipta et al.'s reading of one model's training_dynamics/ (written here after their
    read_training_dynamics and compute_train_dy_metrics): as many epochs as files in the folder,
    records keyed by guid, softmax P(gold), np.argmax correctness counted over epochs, forgetting
    events with 1000 for an example never right."""
    folder = model_dir / "training_dynamics"
    epochs = len([f for f in folder.iterdir() if f.is_file()])
    dynamics = {}
    for epoch in range(epochs):
        for line in (folder / f"dynamics_epoch_{epoch}.jsonl").read_text().splitlines():
            record = json.loads(line)
            dynamics.setdefault(record["guid"], {"gold": record["gold"], "logits": []})["logits"].append(
                record[f"logits_epoch_{epoch}"]
            )
    metrics = {}
    for guid, record in dynamics.items():
        logits = np.array(record["logits"], dtype=np.float32)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        right = [int(np.argmax(row) == record["gold"]) for row in logits]
        forgotten = sum(1 for a, b in zip(right, right[1:]) if a and not b)
        metrics[guid] = {
            "confidence": probs[:, record["gold"]].mean(),
            "variability": probs[:, record["gold"]].std(),
            "correctness": sum(right),
            "forgetfulness": forgotten if any(right) else 1000,
            "right": right,
        }
    return metrics


def test_cartography_export_is_what_their_reader_and_metrics_expect(probs_run, tmp_path):
    files, notes = export(probs_run, tmp_path / "carto", "cartography")
    member = tmp_path / "carto" / "member_000"
    first = (member / "training_dynamics" / "dynamics_epoch_0.jsonl").read_text().splitlines()[0]
    assert set(json.loads(first)) == {"guid", "logits_epoch_0", "gold"} and isinstance(json.loads(first)["guid"], int)
    assert sorted(p.name for p in (member / "training_dynamics").iterdir()) == [
        "dynamics_epoch_0.jsonl",
        "dynamics_epoch_1.jsonl",
    ]
    info = json.loads((probs_run / "run.json").read_text())
    mapping = json.loads((tmp_path / "carto" / "checkpoints.json").read_text())["files"]
    assert mapping["dynamics_epoch_1.jsonl"] == {
        "checkpoint": 2,
        "epoch": info["checkpoints"][2]["epoch"],
        "step": info["checkpoints"][2]["step"],
    }
    assert "checkpoints.json maps each file to its checkpoint" in notes[0]
    train = Scores.load(probs_run).split("train")
    metrics = {}
    for m in (0, 1):
        theirs = _their_metrics(tmp_path / "carto" / f"member_00{m}")
        assert list(theirs) == train["id"].astype(int).tolist()
        pred = np.load(probs_run / "records" / f"member_00{m}" / "train.pred.npy")[1:].astype(np.int64)
        right = np.array(
            [theirs[guid]["right"] for guid in theirs]
        ).T  # argmax of the logits is the recorded prediction, every cell
        np.testing.assert_array_equal(right, pred == train["label"].to_numpy())
        metrics[m] = pd.DataFrame(theirs).T.drop(columns="right").astype(float)
    mean = (metrics[0] + metrics[1]) / 2
    for column in (
        "confidence",
        "variability",
    ):  # float16 probabilities, their logs rounded to float16: within 2e-3
        assert np.abs(mean[column].to_numpy() - train[column].to_numpy()).max() <= 2e-3
    np.testing.assert_array_equal(mean["correctness"], train["correctness"] * 2)  # a count of the 2 trained checkpoints
    td = pd.read_json(tmp_path / "carto" / "td_metrics.jsonl", lines=True)
    np.testing.assert_array_equal(td["correctness"], mean["correctness"])
    np.testing.assert_array_equal(td["forgetfulness"], mean["forgetfulness"])
    assert (td["forgetfulness"] == 1000).any() and td["guid"].tolist() == train["id"].astype(int).tolist()
    record = sum(p.stat().st_size for p in (probs_run / "records").glob("*/train.*.npy"))
    dynamics = sum(p.stat().st_size for p in (tmp_path / "carto").glob("member_*/training_dynamics/*.jsonl"))
    assert dynamics <= 5 * record, (dynamics, record)  # float16 text, no 17-digit floats
    for column in ("confidence", "correctness", "variability"):
        imported = read_scores(
            tmp_path / "carto", column=column, direction="higher" if column == "variability" else None
        )
        assert imported.table["id"].tolist() == train["id"].tolist()
        gap = np.abs(imported.table["score"].to_numpy() - train[column].to_numpy())
        assert gap.max() <= (0 if column == "correctness" else 2e-3), column
    assert imported.note.startswith("read 2 run(s) x 2 epochs of 1347 examples keyed by guid")
    metrics = read_scores(tmp_path / "carto" / "td_metrics.jsonl", column="forgetfulness")
    assert metrics.direction == "lower"


def test_cartography_files_logged_in_sampler_order_read_by_guid(tmp_path):
    """Files as their run_glue.py writes them through log_training_dynamics: each epoch in its
    shuffled sampler order, integer guids, float32 logits, through pandas' to_json."""
    rng = np.random.default_rng(0)
    guids, gold = rng.choice(10**12, 50, replace=False), rng.integers(0, 3, 50)
    logits = rng.normal(size=(3, 50, 3)).astype(np.float32)
    folder = tmp_path / "model" / "training_dynamics"
    folder.mkdir(parents=True)
    for epoch in range(3):
        order = rng.permutation(50)
        pd.DataFrame(
            {
                "guid": list(guids[order]),
                f"logits_epoch_{epoch}": list(logits[epoch][order]),
                "gold": list(gold[order]),
            }
        ).to_json(folder / f"dynamics_epoch_{epoch}.jsonl", lines=True, orient="records")
    imported = read_scores(tmp_path / "model", column="confidence")
    probs = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    expected = probs[:, np.arange(50), gold].mean(0)
    table = imported.table.set_index("id").loc[[str(g) for g in guids]]  # in epoch 0's order, keyed by guid
    np.testing.assert_allclose(table["score"], expected, rtol=1e-6)  # their to_json keeps 10 digits
    assert table["label"].tolist() == gold.tolist() and len(imported.table) == 50
    lines = (folder / "dynamics_epoch_2.jsonl").read_text().splitlines()
    (folder / "dynamics_epoch_2.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(UserError, match="logs 49 examples and .* 50, with 1 of these missing"):
        read_scores(tmp_path / "model", column="confidence")
    (folder / "dynamics_epoch_1.jsonl").unlink()
    with pytest.raises(UserError, match="has no dynamics_epoch_1.jsonl"):
        read_scores(tmp_path / "model", column="confidence")


def test_hf_column_is_added_by_id_the_cli_exports_it_and_it_reads_back(score_run, tmp_path):
    ids = [str(i) for i in range(1797)]
    ds = datasets.DatasetDict(train=datasets.Dataset.from_dict({"id": ids, "x": list(range(1797))}))
    ds.save_to_disk(str(tmp_path / "hf"))
    proc = run_cli(
        [
            "export",
            score_run,
            "--format",
            "hf",
            "--hf-dataset",
            tmp_path / "hf",
            "--by",
            "accessibility",
            "--out",
            tmp_path / "hf-out",
        ],
        tmp_path,
    )
    assert "train: 1347 of 1797 examples matched by id in the train scores" in proc.stdout  # the part named train
    column = datasets.load_from_disk(str(tmp_path / "hf-out"))["train"]["accessibility"]
    table = Scores.load(score_run).table.set_index("id")
    train_ids = set(Scores.load(score_run).split("train")["id"])
    assert [v for i, v in zip(ids[:50], column[:50]) if i in train_ids] == table.loc[
        [i for i in ids[:50] if i in train_ids], "accessibility"
    ].tolist()
    assert all(v is None for i, v in zip(ids, column) if i not in train_ids)
    imported = read_scores(tmp_path / "hf-out")  # a hf folder is not a cartography folder
    assert imported.direction == "higher" and imported.column == "accessibility" and len(imported.table) == 1347
    scores = Scores.load(score_run)
    values, _, note = load_external_scores(
        tmp_path / "hf-out", scores.split("train")["label"], ids=scores.split("train")["id"]
    )
    np.testing.assert_array_equal(values, scores.split("train")["accessibility"])
    # one Dataset holding both splits' rows: refused unless a split is named
    datasets.Dataset.from_dict({"id": ids}).save_to_disk(str(tmp_path / "both"))
    bad = run_cli(
        ["export", score_run, "--format", "hf", "--hf-dataset", tmp_path / "both", "--out", tmp_path / "o"],
        tmp_path,
        check=False,
    )
    assert (
        bad.returncode == 2
        and "match examples of 2 splits (450 test, 1347 train)" in bad.stderr
        and "--split test" in bad.stderr
    )
    ok = run_cli(
        [
            "export",
            score_run,
            "--format",
            "hf",
            "--hf-dataset",
            tmp_path / "both",
            "--split",
            "test",
            "--out",
            tmp_path / "o",
        ],
        tmp_path,
    )
    assert "dataset: 450 of 1797 examples matched by id in the test scores" in ok.stdout
    bad = run_cli(["export", score_run, "--format", "cartography", "--out", tmp_path / "c"], tmp_path, check=False)
    assert bad.returncode == 2 and "--record-probs" in bad.stderr
    with pytest.raises(UserError, match="neither an 'id' column nor a split name .* --match content_hash"):
        scores.align(datasets.Dataset.from_dict({"x": [1, 2]}))
