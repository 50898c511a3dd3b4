"""The record on disk: atomic rows, commit semantics, and clear errors on damage."""

import json

import numpy as np
import pytest

from scoring.errors import UserError
from scoring.records import MemberRecord, check_complete, member_dir, open_field, open_run, plan_disk, record_bytes

SIZES = {"train": 4, "test": 3}


def _rows(value: int) -> dict:
    return {
        split: {"pred": np.full(m, value), "p_true": np.full(m, value / 10), "el2n": np.full(m, 1 - value / 10)}
        for split, m in SIZES.items()
    }


def test_rows_become_visible_only_when_committed(tmp_path):
    record = MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    record.append(_rows(1))
    assert record.committed() == 0  # written but not committed: a resumed run ignores it
    record.commit()
    record.append(_rows(2))  # a run killed here leaves arrays one row ahead of progress.json
    reopened = MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    assert reopened.committed() == 1
    reopened.append(_rows(3))
    reopened.commit()
    pred = np.load(member_dir(tmp_path, 0) / "train.pred.npy")
    assert pred.dtype == np.int16 and pred[:, 0].tolist() == [1, 3]  # the uncommitted row was rewritten


def test_record_files_read_blocks_of_rows_and_examples(tmp_path):
    for member in range(2):
        record = MemberRecord(tmp_path, member, SIZES, checkpoints=3)
        for value in (0, member + 1):
            record.append(_rows(value))
            record.commit()
    check_complete(tmp_path, members=2, checkpoints=2)
    pred = open_field(tmp_path, "train", "pred", 1, checkpoints=2, examples=4)
    assert pred.read(0, 2).tolist() == [[0, 0, 0, 0], [2, 2, 2, 2]]
    assert pred.read(1, 2, slice(1, 3)).tolist() == [[2, 2]]
    with pytest.raises(IndexError):
        pred.read(0, 3)  # the third row is not committed
    p_true = open_field(tmp_path, "train", "p_true", 1, checkpoints=2, examples=4).read(1, 2)
    assert p_true.dtype == np.float16 and p_true[0, 0] == pytest.approx(0.2, abs=1e-3)


@pytest.mark.parametrize("reader", ["open_field", "resume"])
def test_truncated_file_is_a_user_error_naming_the_fix(tmp_path, reader):
    record = MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    record.append(_rows(1))
    record.commit()
    path = member_dir(tmp_path, 0) / "test.p_true.npy"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(UserError, match="test.p_true.npy is truncated or corrupt; delete the folder"):
        if reader == "open_field":
            open_field(tmp_path, "test", "p_true", 0, checkpoints=1, examples=3)
        else:
            MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    assert path.stat().st_size == size - 3  # refused, not padded back to size


def test_unfinished_member_is_reported(tmp_path):
    MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    with pytest.raises(UserError, match="has 0 of 2 checkpoints"):
        check_complete(tmp_path, members=1, checkpoints=2)


def test_open_run_refuses_other_dataset_or_settings(tmp_path):
    info = {
        "dataset": {"name": "a", "fingerprint": "f1"},
        "settings": {"lr": 0.1},
        "compute": {"device": "cpu", "threads": 1},
    }
    open_run(tmp_path / "run", info, write=True)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    assert open_run(tmp_path / "run", info, write=False)["dataset"]["name"] == "a"
    with pytest.raises(UserError, match="holds a run of dataset 'a'"):
        open_run(tmp_path / "run", {**info, "dataset": {"name": "b", "fingerprint": "f2"}}, write=True)
    with pytest.raises(UserError, match=r"other settings \(lr\)"):
        open_run(tmp_path / "run", {**info, "settings": {"lr": 0.2}}, write=True)
    with pytest.raises(
        UserError, match="recorded with device cpu, threads 1, and finishing it with device cpu, threads 4"
    ):
        open_run(tmp_path / "run", {**info, "compute": {"device": "cpu", "threads": 4}}, write=True)


def test_records_without_run_json_are_refused(tmp_path):
    MemberRecord(tmp_path / "run", 0, SIZES, checkpoints=2)
    info = {"dataset": {"name": "a", "fingerprint": "f1"}, "settings": {}, "compute": {}}
    with pytest.raises(UserError, match="holds records but no run.json"):
        open_run(tmp_path / "run", info, write=True)
    assert not (tmp_path / "run" / "run.json").exists()


def test_progress_beyond_the_arrays_is_corrupt(tmp_path):
    record = MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    record.append(_rows(1))
    record.commit()
    (member_dir(tmp_path, 0) / "progress.json").write_text('{"checkpoints": 3}')
    with pytest.raises(UserError, match="progress.json is truncated or corrupt; delete the folder"):
        MemberRecord(tmp_path, 0, SIZES, checkpoints=2)
    with pytest.raises(UserError, match="progress.json is truncated or corrupt"):
        check_complete(tmp_path, members=1, checkpoints=2)


def test_record_files_are_allocated_on_disk(tmp_path):
    """Not sparse: an in-place row write into a hole could fault (SIGBUS) when the disk is full."""
    MemberRecord(tmp_path, 0, {"train": 100_000}, checkpoints=4)
    path = member_dir(tmp_path, 0) / "train.pred.npy"
    assert path.stat().st_blocks * 512 >= path.stat().st_size > 800_000


def test_the_record_size_is_stated_and_a_disk_too_small_refused_before_any_write(tmp_path):
    sizes = {"train": 50_000, "test": 10_000}
    assert record_bytes(10, 41, sizes) == 6 * 10 * 41 * 60_000
    assert record_bytes(10, 41, sizes, num_classes=10) == (6 + 20) * 10 * 41 * 60_000
    statement = plan_disk(tmp_path / "run", 10, 41, sizes, 10, record_probs=False)
    assert statement == (
        "The record takes 140.8 MiB on disk (10 members x 41 checkpoints x 60000 examples, 6 bytes "
        "an entry; --record-probs would add 469.2 MiB for the 10 class probabilities)."
    )
    with pytest.raises(
        UserError,
        match=r"The record takes [\d.]+ GiB on disk .* free; free space, pass another --out, or "
        r"record fewer members or checkpoints \(--eval-every\) or drop --record-probs\.$",
    ):
        plan_disk(tmp_path / "run", 10**6, 561, sizes, 10, record_probs=True)
    assert not (tmp_path / "run").exists()
