"""experiments/record_agreement.py: the share of predicted labels two runs' members share, checked
on a copy of a real record whose labels were changed where the test knows."""

import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, cli_env

SCRIPT = ROOT / "experiments" / "record_agreement.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("record_agreement", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _changed_copy(score_run, tmp_path, member=1, checkpoint=2, examples=slice(0, 10)):
    """A copy of ``score_run`` in which one member's train labels at one checkpoint are all moved
    to the next class."""
    copy = tmp_path / "copy"
    shutil.copytree(score_run, copy)
    path = copy / "records" / f"member_{member:03d}" / "train.pred.npy"
    pred = np.load(path, mmap_mode="r+")
    pred[checkpoint, examples] = (pred[checkpoint, examples] + 1) % 10
    pred.flush()
    del pred
    return copy


def test_changed_labels_are_counted_where_they_were_changed(score_run, tmp_path, script):
    copy = _changed_copy(score_run, tmp_path)
    table = script.record_agreement(copy, score_run).set_index(["split", "checkpoint"])
    info = json.loads((score_run / "run.json").read_text())
    train = info["dataset"]["sizes"]["train"]
    assert len(table) == 2 * len(info["checkpoints"]) == 10
    changed = table.loc[("train", 2)]
    assert changed.agree_min == pytest.approx(1 - 10 / train)
    assert changed.agree_mean == pytest.approx(1 - 10 / (3 * train))
    unchanged = table.drop(index=("train", 2))
    assert (unchanged.agree_min == 1).all() and (unchanged.agree_mean == 1).all()

    p_true = np.load(score_run / "records" / "member_001" / "train.p_true.npy")[2]
    confident = p_true > 0.5
    assert changed.confident == pytest.approx(
        np.mean([np.load(score_run / "records" / f"member_{m:03d}" / "train.p_true.npy")[2] > 0.5 for m in range(3)])
    )
    assert changed.agree_confident_min == pytest.approx(1 - confident[:10].sum() / confident.sum())
    assert table.loc[("train", 0)].confident < 0.05  # the initialisation is confident of almost nothing


def test_the_script_prints_the_worst_checkpoint_and_refuses_other_data_in_one_sentence(score_run, tmp_path):
    copy = _changed_copy(score_run, tmp_path)

    def run(*args):
        return subprocess.run(
            [sys.executable, str(SCRIPT), *map(str, args)], env=cli_env(tmp_path), capture_output=True, text=True
        )

    done = run(copy, score_run)
    assert done.returncode == 0, done.stderr
    assert "worst trained checkpoint: " in done.stdout and "(checkpoint 2, epoch 1)" in done.stdout

    info = json.loads((copy / "run.json").read_text())
    info["dataset"]["fingerprint"] = "0" * 64
    (copy / "run.json").write_text(json.dumps(info))
    refused = run(copy, score_run)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"{copy} and {score_run} score different data; compare two runs of the same --dataset."
    )
    (copy / "run.json").unlink()
    refused = run(copy, score_run)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("give the --out of a `curriculum score` run.")
