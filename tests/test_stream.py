"""The streaming score pass gives the scores, reliability and summary of the in-memory formulas
(experiments/bench_scoring.py keeps that way as the reference), whatever the memory setting."""

import numpy as np
import pytest
from conftest import bench_scoring

from scoring import agreement, stream
from scoring.errors import UserError
from scoring.records import MemberRecord, open_run, update_run
from scoring.stream import correct_counts, last_predictions, plan_memory, score_split
from scoring.summary import checkpoint_summary
from stats.distributions import bimodality

MEMBERS, CHECKPOINTS, EXAMPLES, CLASSES = 5, 7, 240, 4  # an odd number of members
EL2N_AT = 2


@pytest.fixture(scope="module")
def bench():
    return bench_scoring()


def histories(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and [N, E, M] pred / p_true / el2n with every case the scores treat apart: random
    learners, then examples always right with P = 1 (no spread), never right with P = 0, two
    identical histories (ties), right -> wrong -> right again (forgotten, then relearned), right
    at initialisation only, and the smallest float16 probability."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, EXAMPLES)
    skill = np.linspace(-2, 3, CHECKPOINTS)[None, :, None] - rng.normal(0, 1.5, EXAMPLES)[None, None, :]
    p_true = 1 / (1 + np.exp(-(skill + rng.normal(0, 1, (MEMBERS, CHECKPOINTS, EXAMPLES)))))
    p_true = np.round(p_true * 8) / 8  # few distinct values: many ties between examples
    correct = p_true > 0.5
    correct[:, :, 0], p_true[:, :, 0] = True, 1.0
    correct[:, :, 1], p_true[:, :, 1] = False, 0.0
    correct[:, :, 3], p_true[:, :, 3] = correct[:, :, 2], p_true[:, :, 2]
    labels[3] = labels[2]
    correct[:, :, 4] = [True, True, True, False, False, True, True]  # diverged, then fixed
    correct[:, :, 5] = [True, False, False, False, False, False, False]  # right at initialisation only
    p_true[:, :, 6] = 2.0**-24
    pred = np.where(correct, labels, (labels + 1) % CLASSES)
    el2n = np.sqrt(2) * (1 - p_true)
    return labels, {
        "pred": pred.astype(np.int16),
        "p_true": p_true.astype(np.float16),
        "el2n": el2n.astype(np.float16),
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run whose first attempt diverged (its garbage records are dropped when the fixed one
    starts) and whose second attempt wrote :func:`histories`."""
    run_dir = tmp_path_factory.mktemp("stream")
    info = {"dataset": {"fingerprint": "x"}, "settings": {}, "compute": {}}
    open_run(run_dir, info, write=True)
    broken = MemberRecord(run_dir, 0, {"train": EXAMPLES}, CHECKPOINTS)
    broken.append(
        {
            "train": {
                "pred": np.zeros(EXAMPLES),
                "p_true": np.full(EXAMPLES, np.nan),
                "el2n": np.zeros(EXAMPLES),
            }
        }
    )
    broken.commit()
    update_run(run_dir, status="diverged")
    open_run(run_dir, info, write=True)
    labels, arrays = histories()
    for n in range(MEMBERS):
        record = MemberRecord(run_dir, n, {"train": EXAMPLES}, CHECKPOINTS)
        for e in range(CHECKPOINTS):
            record.append({"train": {field: values[n, e] for field, values in arrays.items()}})
        record.commit()
    return run_dir, labels


def _plan(memory_mb: float) -> bool:
    try:
        return plan_memory(MEMBERS, CHECKPOINTS, EXAMPLES, memory_mb)[0] > 0
    except UserError:
        return False


def reference_summary(record, epochs) -> dict[str, np.ndarray]:
    """The per-checkpoint summary from the whole record (agreement's array formulas)."""
    correct = record.correct
    mean, std = agreement.accuracy_mean_std(correct)
    extremes = agreement.extreme_fractions(correct)
    class_at0, class_at1 = agreement.class_conditional_extremes(correct, record.labels)
    return {
        "acc_mean": mean,
        "acc_std": std,
        "tpa": agreement.tp_agreement(correct),
        "tpa_lower": agreement.tp_agreement_lower_bound(correct),
        "at0_observed": extremes.observed_at_0,
        "at0_independent": extremes.expected_at_0,
        "at0_class_null": class_at0,
        "at1_observed": extremes.observed_at_1,
        "at1_independent": extremes.expected_at_1,
        "at1_class_null": class_at1,
        "bimodality": bimodality(agreement.consistency(correct)),
    }


@pytest.mark.parametrize("small", [False, True], ids=["one-range", "ranges-and-row-blocks"])
def test_streaming_pass_equals_the_in_memory_scores(run, bench, small, monkeypatch):
    run_dir, labels = run
    memory_mb = 256
    if small:  # the smallest setting that holds a range of examples, and blocks of 2 rows
        monkeypatch.setattr(stream, "_MAX_ROWS", 2)
        memory_mb = next(m for m in np.arange(2.0, 8.0, 0.01) if _plan(m)) + 0.01
    chunk, rows = plan_memory(MEMBERS, CHECKPOINTS, EXAMPLES, memory_mb)
    assert (chunk < EXAMPLES and rows == 2) if small else (chunk, rows) == (EXAMPLES, CHECKPOINTS)
    result = score_split(run_dir, "train", labels, MEMBERS, CHECKPOINTS, EL2N_AT, memory_mb=memory_mb)
    record = bench.load_record(run_dir, "train", labels, MEMBERS, CHECKPOINTS)
    expected = bench.in_memory_columns(record, EL2N_AT)
    assert list(result.columns) == list(expected)
    for name, values in expected.items():  # float rounding only: a few ulps of values below 10
        np.testing.assert_allclose(result.columns[name], values, rtol=0, atol=1e-12, err_msg=name)
    assert result.columns["forgetting"][4] == 1 and result.columns["learned_checkpoint"][4] == 5
    assert (
        result.columns["variability"][0] == 0
        and result.columns["accessibility"][2] == result.columns["accessibility"][3]
    )
    # Reliability ranks half scores rounded to 12 decimals, so that values apart by float rounding
    # alone tie (confidence, a mean of per-member means, splits such ties in both ways); rounded
    # alike, the in-memory way's half scores give the same reliability.
    reliability = bench.in_memory_reliability(record, EL2N_AT, decimals=12)
    for name, values in reliability.items():
        for kind in ("half", "full"):
            np.testing.assert_allclose(result.reliability[name][kind], values[kind], rtol=0, atol=1e-12, err_msg=name)
    summary = checkpoint_summary({"train": result.counts}, list(range(CHECKPOINTS)))
    for column, values in reference_summary(record, range(CHECKPOINTS)).items():
        np.testing.assert_allclose(summary[column].to_numpy(), values, rtol=0, atol=1e-12, err_msg=column)


def test_the_few_rows_readers_match_the_record(run, bench):
    run_dir, labels = run
    record = bench.load_record(run_dir, "train", labels, MEMBERS, CHECKPOINTS)
    right, counts = correct_counts(run_dir, "train", labels, MEMBERS, CHECKPOINTS, [6, 0, 3])
    np.testing.assert_array_equal(right, record.correct.sum(0)[[6, 0, 3]])
    np.testing.assert_array_equal(counts.member_accuracy(), record.correct.mean(2)[:, [6, 0, 3]])
    full = score_split(run_dir, "train", labels, MEMBERS, CHECKPOINTS, EL2N_AT).counts
    np.testing.assert_array_equal(counts.histogram, full.histogram[[6, 0, 3]])
    np.testing.assert_array_equal(counts.class_correct, full.class_correct[:, [6, 0, 3]])
    np.testing.assert_array_equal(
        last_predictions(run_dir, "train", MEMBERS, CHECKPOINTS, EXAMPLES), record.pred[:, -1]
    )


def test_bad_probabilities_and_a_too_small_memory_setting_are_refused(run, tmp_path):
    run_dir, labels = run
    with pytest.raises(UserError, match=r"needs at least \d+ MiB; raise the memory setting"):
        score_split(run_dir, "train", labels, MEMBERS, CHECKPOINTS, EL2N_AT, memory_mb=0.01)
    _, arrays = histories()
    arrays["p_true"][0, 3, 7] = np.nan
    for n in range(2):
        record = MemberRecord(tmp_path, n, {"train": EXAMPLES}, CHECKPOINTS)
        for e in range(CHECKPOINTS):
            record.append({"train": {field: values[n, e] for field, values in arrays.items()}})
        record.commit()
    with pytest.raises(UserError, match="outside \\[0, 1\\] or NaN; record the member again"):
        score_split(tmp_path, "train", labels, 2, CHECKPOINTS, EL2N_AT)
