import numpy as np
import pandas as pd
import pytest

from scoring.errors import UserError
from scoring.formats import load_external_scores
from scoring.ordering import ORDERS, balance_by_class, order_examples, rank_easiest_first, uses_pacing

# Six examples, two classes; higher score = easier.
SCORES = np.array([0.9, 0.1, 0.5, 0.5, 0.7, 0.2])
LABELS = np.array([0, 0, 1, 1, 0, 1])


def test_curriculum_is_easiest_first_with_ties_by_index():
    # 0.9 (0), 0.7 (4), 0.5 (2), 0.5 (3: tie, higher index after), 0.2 (5), 0.1 (1)
    assert order_examples(SCORES, LABELS, "curriculum", easier="higher", balanced=False).tolist() == [0, 4, 2, 3, 5, 1]
    # lower is easier (e.g. a loss): the other way round, ties still by index
    assert order_examples(SCORES, LABELS, "curriculum", easier="lower", balanced=False).tolist() == [1, 5, 2, 3, 4, 0]


def test_anti_is_the_reverse_of_curriculum():
    assert order_examples(SCORES, LABELS, "anti", easier="higher", balanced=False).tolist() == [1, 5, 3, 2, 4, 0]


def test_balanced_interleaving_worked_by_hand():
    # ranking 0 4 2 3 5 1; class 0 in it: 0 4 1, class 1: 2 3 5.
    # round 0: {0 (place 0), 2 (place 2)}, round 1: {4 (1), 3 (3)}, round 2: {5 (4), 1 (5)}
    assert order_examples(SCORES, LABELS, "curriculum", easier="higher").tolist() == [0, 2, 4, 3, 5, 1]
    # equal class sizes: anti is exactly the reversed balanced curriculum
    assert order_examples(SCORES, LABELS, "anti", easier="higher").tolist() == [1, 5, 3, 4, 2, 0]


def test_balanced_interleaving_with_unequal_classes_loses_nothing():
    # class 0 has four examples, class 1 two; index = rank (scores fall with the index)
    scores = np.array([6.0, 5, 4, 3, 2, 1])
    labels = np.array([0, 1, 0, 0, 1, 0])
    # rounds: {0, 1}, {2, 4}, then class 1 has run out: {3}, {5}
    assert order_examples(scores, labels, "curriculum", easier="higher").tolist() == [0, 1, 2, 4, 3, 5]
    # anti balances the reversed ranking 5 4 3 2 1 0: rounds {5, 4}, {3, 1}, {2}, {0}
    assert order_examples(scores, labels, "anti", easier="higher").tolist() == [5, 4, 3, 1, 2, 0]


def test_all_ties_keep_index_order():
    scores = np.zeros(6)
    assert order_examples(scores, LABELS, "curriculum", easier="higher", balanced=False).tolist() == list(range(6))
    assert order_examples(scores, LABELS, "anti", easier="higher", balanced=False).tolist() == list(range(5, -1, -1))
    # balanced: round k = k-th example of each class by index: {0, 2}, {1, 3}, {4, 5}
    assert order_examples(scores, LABELS, "curriculum", easier="higher").tolist() == [0, 2, 1, 3, 4, 5]


def _prefix_class_counts(order, labels, k):
    return np.bincount(labels[order[:k]], minlength=labels.max() + 1)


@pytest.mark.parametrize("kind", ORDERS)
def test_every_kind_is_a_permutation_and_balanced_prefixes_hold_every_class(kind):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(5), 40)
    scores = rng.random(200)
    order = order_examples(scores, labels, kind, easier="higher", seed=3)
    assert sorted(order.tolist()) == list(range(200))
    for r in range(1, 41):
        assert _prefix_class_counts(order, labels, 5 * r).tolist() == [r] * 5
    if kind in ("curriculum", "anti"):
        # within each class, the balanced order keeps the ranking
        ranking = order_examples(scores, labels, kind, easier="higher", balanced=False)
        for c in range(5):
            assert order[labels[order] == c].tolist() == ranking[labels[ranking] == c].tolist()


def test_anti_with_equal_classes_reverses_the_balanced_curriculum_exactly():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 25)
    scores = rng.integers(0, 5, size=100).astype(float)  # many ties
    curriculum = order_examples(scores, labels, "curriculum", easier="higher")
    assert order_examples(scores, labels, "anti", easier="higher").tolist() == curriculum[::-1].tolist()


def test_random_is_seeded_and_none_uses_no_pacing():
    a = order_examples(SCORES, LABELS, "random", seed=0, balanced=False)
    assert a.tolist() == order_examples(SCORES, LABELS, "random", seed=0, balanced=False).tolist()
    big = np.zeros(100)
    assert (
        order_examples(big, None, "random", seed=0, balanced=False).tolist()
        != order_examples(big, None, "random", seed=1, balanced=False).tolist()
    )
    # scores are not needed for random / none
    assert (
        order_examples(None, LABELS, "random", seed=0).tolist()
        == order_examples(SCORES, LABELS, "random", seed=0).tolist()
    )
    assert (
        order_examples(None, LABELS, "none", seed=0).tolist() == order_examples(None, LABELS, "random", seed=0).tolist()
    )
    assert [uses_pacing(kind) for kind in ORDERS] == [True, True, True, False]


def test_balance_by_class_keeps_the_order_within_each_round():
    order = np.array([5, 4, 3, 2, 1, 0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    # examples 5 4 3 (class 1) come first, then 2 1 0 (class 0): rounds {5, 2}, {4, 1}, {3, 0}
    assert balance_by_class(order, labels).tolist() == [5, 2, 4, 1, 3, 0]
    assert rank_easiest_first([3, 1, 2], easier="higher").tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    "call,text",
    [
        (lambda: order_examples(SCORES, LABELS, "hardest"), "curriculum, anti, random, none"),
        (lambda: order_examples(SCORES, LABELS, "curriculum"), "easier='higher' or easier='lower'"),
        (lambda: order_examples(SCORES, LABELS, "anti", easier=True), "easier='higher' or easier='lower'"),
        (lambda: uses_pacing("vanilla"), "choose one of"),
        (lambda: order_examples(SCORES[:5], LABELS, "curriculum", easier="higher"), "5 scores for 6 labels"),
        (lambda: order_examples(np.r_[SCORES[:5], np.nan], LABELS, "curriculum", easier="higher"), "1 of 6"),
        (lambda: order_examples(None, LABELS, "curriculum", easier="higher"), "needs a score"),
        (lambda: order_examples(SCORES, None, "curriculum", easier="higher"), "balanced=False"),
    ],
)
def test_mistakes_raise_user_errors(call, text):
    with pytest.raises(UserError, match=text.replace("(", r"\(")):
        call()


# --- external score files -------------------------------------------------------------------


def test_csv_and_parquet_in_dataset_order(tmp_path):
    pd.DataFrame({"score": SCORES}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"score": SCORES, "label": LABELS}).to_parquet(tmp_path / "s.parquet")
    for name in ("s.csv", "s.parquet"):
        np.testing.assert_array_equal(load_external_scores(tmp_path / name, LABELS, direction="higher")[0], SCORES)
        with pytest.raises(UserError, match="does not say whether a higher or lower 'score' is easier"):
            load_external_scores(tmp_path / name, LABELS)


def test_csv_with_an_index_column_is_put_in_dataset_order(tmp_path):
    shuffled = np.array([3, 0, 5, 1, 4, 2])
    pd.DataFrame({"index": shuffled, "label": LABELS[shuffled], "score": SCORES[shuffled]}).to_csv(
        tmp_path / "s.csv", index=False
    )
    scores, easier, _ = load_external_scores(tmp_path / "s.csv", LABELS, direction="lower")
    np.testing.assert_array_equal(scores, SCORES)
    assert easier == "lower"


def test_npz_like_published_c_scores(tmp_path):
    np.savez(tmp_path / "cscores.npz", labels=LABELS, scores=SCORES.astype(np.float32))
    scores, easier, _ = load_external_scores(tmp_path / "cscores.npz", LABELS)  # the format says higher
    np.testing.assert_allclose(scores, SCORES, rtol=1e-6)
    assert easier == "higher"
    assert order_examples(scores, LABELS, "curriculum", easier=easier).tolist() == [0, 2, 4, 3, 5, 1]


def test_label_mismatch_names_the_count_and_the_fix(tmp_path):
    wrong = LABELS.copy()
    wrong[[0, 3]] = 1 - wrong[[0, 3]]
    np.savez(tmp_path / "c.npz", labels=wrong, scores=SCORES)
    pd.DataFrame({"score": SCORES, "label": wrong}).to_parquet(tmp_path / "c.parquet")
    for name in ("c.npz", "c.parquet"):
        with pytest.raises(
            UserError,
            match=r"2 of 6 labels .* differ from the dataset's \(by position "
            r"\(row order\)\); use the file made for this dataset",
        ):
            load_external_scores(tmp_path / name, LABELS, direction="higher")


@pytest.mark.parametrize(
    "write,text",
    [
        (
            lambda p: pd.DataFrame({"score": SCORES[:4]}).to_csv(p / "f.csv", index=False),
            "4 scores but the dataset has 6",
        ),
        (lambda p: pd.DataFrame({"value": SCORES}).to_csv(p / "f.csv", index=False), "no 'score' column"),
        (
            lambda p: pd.DataFrame({"index": [0, 0, 1, 2, 3, 4], "score": SCORES}).to_csv(p / "f.csv", index=False),
            "exactly once",
        ),
        (lambda p: np.savez(p / "f.npz", scores=SCORES), "no labels array"),
        (lambda p: (p / "f.txt").write_text("1\n"), "use .csv, .parquet, .npz"),
        (lambda p: (p / "f.parquet").write_text("not parquet"), "Cannot read scores"),
        (lambda p: (p / "f.npz").write_bytes(b"PK\x03\x04 truncated"), "Cannot read scores"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_score_files_raise_user_errors(tmp_path, write, text):
    write(tmp_path)
    path = next(iter(tmp_path.iterdir()), tmp_path / "missing.csv")
    with pytest.raises(UserError, match=text.replace("(", r"\(")):
        load_external_scores(path, LABELS, direction="higher")
