"""The Scores table: what other projects import."""

import tempfile
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring import Scores, UserError
from scoring.records import MemberRecord
from scoring.scores import SCORE_DIRECTIONS
from scoring.stream import score_split


def _scores() -> Scores:
    # 2 members x 3 checkpoints x 3 examples, labels all 0; checkpoint 0 is initialisation
    pred = np.array(
        [
            [[1, 1, 1], [0, 1, 1], [0, 0, 1]],
            [[0, 1, 1], [0, 0, 1], [0, 0, 0]],
        ]
    )
    labels = np.zeros(3, dtype=np.int64)
    with tempfile.TemporaryDirectory() as run:
        for member, rows in enumerate(pred):
            record = MemberRecord(run, member, {"train": 3}, checkpoints=3)
            for row in rows:
                record.append({"train": {"pred": row, "p_true": np.full(3, 0.5), "el2n": np.ones(3)}})
            record.commit()
        result = score_split(run, "train", labels, members=2, checkpoints=3, el2n_checkpoint=1)
    return Scores.from_columns(
        {"train": result.columns},
        {"train": labels},
        {"train": result.reliability},
        dataset="toy",
        fingerprint="abc",
        el2n_checkpoint=1,
    )


def test_scores_match_hand_computation():
    table = _scores().split("train")
    # consistency per checkpoint: e0 [1/2, 0, 0], e1 [1, 1/2, 0], e2 [1, 1, 1/2]
    assert table["consistency"].tolist() == [1.0, 1.0, 0.5]
    # accessibility leaves checkpoint 0 (initialisation) out: mean of e1 and e2
    assert table["accessibility"].tolist() == pytest.approx([1.0, 0.75, 0.25])
    # member 0 stays right from checkpoint 1, 2, never (3); member 1 from 1, 1, 2
    assert table["learned_checkpoint"].tolist() == pytest.approx([1.0, 1.5, 2.5])
    assert table["forgetting"].tolist() == [
        0.0,
        0.0,
        1.0,
    ]  # member 0 never learns example 2 -> 2 checkpoints after init
    assert table["confidence"].tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_order_follows_the_metadata_direction_and_breaks_ties_by_index():
    scores = _scores()
    assert scores.order(by="accessibility").tolist() == [0, 1, 2]
    assert scores.order(by="learned_checkpoint").tolist() == [0, 1, 2]  # lower = easier
    assert scores.order(by="consistency").tolist() == [0, 1, 2]  # tie 1.0 vs 1.0: lower index first
    with pytest.raises(UserError, match="no easier direction"):
        scores.order(by="variability")
    assert scores.order(by="variability", easier="lower", balanced=False).tolist() == [0, 1, 2]
    with pytest.raises(UserError, match="Unknown score column 'nope'"):
        scores.order(by="nope")


def test_save_load_roundtrip_keeps_metadata_and_csv(tmp_path):
    scores = _scores()
    scores.add_columns("train", {"entropy": np.array([3.0, 1.0, 2.0])})
    path = scores.save(tmp_path)
    loaded = Scores.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.table, scores.table)
    assert loaded.fingerprint == "abc" and loaded.meta["el2n_checkpoint"] == 1
    assert loaded.directions["entropy"] is None and loaded.directions["accessibility"] == "higher"
    assert set(SCORE_DIRECTIONS) <= set(loaded.directions)
    csv = pd.read_csv(loaded.to_csv(tmp_path / "s.csv"))
    assert csv["entropy"].tolist() == [3.0, 1.0, 2.0] and path.name == "scores.parquet"


def test_attach_refuses_another_fingerprint():
    scores = _scores()
    assert len(scores.attach(types.SimpleNamespace(fingerprint="abc", name="toy"))["train"]) == 3
    with pytest.raises(UserError, match="fingerprints differ"):
        scores.attach(types.SimpleNamespace(fingerprint="zzz", name="other"))


def test_missing_scores_name_the_command(tmp_path):
    with pytest.raises(UserError, match="run `curriculum score` first"):
        Scores.load(tmp_path)


@pytest.mark.parametrize("column", [c for c, d in SCORE_DIRECTIONS.items() if d is not None])
def test_every_score_orders_easiest_first_by_its_documented_direction(score_run, column):
    scores = Scores.load(score_run)
    table = scores.split("train")
    values, labels = table[column].to_numpy(), table["label"].to_numpy()
    easiest = values.max if SCORE_DIRECTIONS[column] == "higher" else values.min
    order = scores.order(by=column, split="train")
    assert sorted(order.tolist()) == list(range(1347))
    # class-balanced: the first round holds every class's easiest example, the overall easiest first
    first_round = order[:10]
    assert sorted(labels[first_round].tolist()) == list(range(10))
    assert values[first_round[0]] == easiest()
    for i in first_round:
        in_class = values[labels == labels[i]]
        assert values[i] == (in_class.max() if SCORE_DIRECTIONS[column] == "higher" else in_class.min())
    # unbalanced: monotone in the documented direction
    flat = values[scores.order(by=column, split="train", balanced=False)]
    assert np.all(np.diff(flat) <= 0) if SCORE_DIRECTIONS[column] == "higher" else np.all(np.diff(flat) >= 0)
    with pytest.raises(UserError, match="not lower" if SCORE_DIRECTIONS[column] == "higher" else "not higher"):
        scores.order(by=column, easier="lower" if SCORE_DIRECTIONS[column] == "higher" else "higher")


def test_damaged_metadata_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"a": [1]}).replace_schema_metadata({b"curriculum": b"{not json"}), path)
    with pytest.raises(UserError, match="scores.parquet is truncated or corrupt; run `curriculum score` again"):
        Scores.load(path)


def test_carry_columns_keeps_what_a_later_stage_added():
    def both_splits():
        scores = _scores()
        scores.table = pd.concat([scores.table, scores.table.assign(split="test")], ignore_index=True)
        return scores

    previous = both_splits()
    previous.add_columns("train", {"entropy": np.array([3.0, 1.0, 2.0])})
    previous.add_columns("test", {"entropy": np.array([5.0, 6.0, 7.0])})
    fresh = both_splits()
    fresh.carry_columns(previous)
    assert fresh.split("train")["entropy"].tolist() == [3.0, 1.0, 2.0]
    assert fresh.split("test")["entropy"].tolist() == [5.0, 6.0, 7.0]
    assert fresh.directions["entropy"] is None and list(fresh.table.columns) == list(previous.table.columns)
