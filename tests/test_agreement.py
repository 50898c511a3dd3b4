"""Tests of scoring.agreement and scoring.dynamics on tiny hand-built records; expected values are worked out by hand."""

import numpy as np
import pytest

from scoring.agreement import (
    accessibility,
    accessibility_correlation,
    accuracy_mean_std,
    compare_easy_sets,
    consensus,
    consistency,
    consistency_histogram,
    cross_consistency,
    easy_set,
    extreme_fractions,
    learned_at_least_as_fast,
    learned_at_least_as_fast_from,
    match_checkpoints,
    statistic_over_agreed,
    tp_agreement,
    tp_agreement_lower_bound,
)
from scoring.dynamics import data_map, forgetting_events, learned_checkpoint, mean_el2n
from scoring.errors import UserError

# correct[n, e, i]: 3 members x 3 checkpoints x 4 examples.
#                 e0            e1            e2
CORRECT = np.array(
    [
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]],  # member 0
        [[0, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]],  # member 1
        [[0, 0, 0, 1], [1, 0, 1, 0], [1, 1, 1, 0]],  # member 2
    ],
    dtype=bool,
)
T = 1 / 3


def test_consistency():
    # column sums / 3 at each checkpoint
    expected = [[T, T, 0, T], [1, 2 * T, T, 0], [1, 2 * T, 1, 0]]
    np.testing.assert_allclose(consistency(CORRECT), expected)
    # integer 0/1 input is accepted and gives the same
    np.testing.assert_allclose(consistency(CORRECT.astype(np.int8)), expected)


def test_consensus_counts_agreement_whether_right_or_wrong():
    # pred[n, 0, i], one checkpoint: ex0 all say 0 -> 3/3; ex1 (1, 2, 1) -> 2/3;
    # ex2 (2, 3, 4) -> 1/3; ex3 (7, 7, 7) all agree on some (possibly wrong) label -> 1
    pred = np.array([[[0, 1, 2, 7]], [[0, 2, 3, 7]], [[0, 1, 4, 7]]])
    np.testing.assert_allclose(consensus(pred), [[1, 2 * T, T, 1]])
    # N = 4: two pairs (5, 7, 5, 7) -> 2/4; a run of three beats a pair (9, 1, 9, 9) -> 3/4
    pred4 = np.array([[[5, 9]], [[7, 1]], [[5, 9]], [[7, 9]]])
    np.testing.assert_allclose(consensus(pred4), [[0.5, 0.75]])
    assert consensus(pred[:1]).tolist() == [[1.0, 1.0, 1.0, 1.0]]  # one member: always 1
    with pytest.raises(UserError):
        consensus(pred.astype(float))


def test_accessibility_leaves_the_initialisation_out():
    # mean over checkpoints 1 and 2 of the consistency rows (checkpoint 0 is initialisation):
    # ex0 (1 + 1)/2 = 1, ex1 (2/3 + 2/3)/2 = 2/3, ex2 (1/3 + 1)/2 = 2/3, ex3 (0 + 0)/2 = 0
    np.testing.assert_allclose(accessibility(CORRECT), [1, 2 / 3, 2 / 3, 0])
    # with the initialisation: ex0 (1/3 + 1 + 1)/3 = 7/9, ex1 5/9, ex2 4/9, ex3 1/9
    np.testing.assert_allclose(accessibility(CORRECT, from_checkpoint=0), [7 / 9, 5 / 9, 4 / 9, 1 / 9])
    with pytest.raises(UserError, match="after initialisation"):
        accessibility(CORRECT[:, :1])


def test_accessibility_correlation():
    # Same record twice -> r = 1. Swapping the two trained checkpoints keeps each mean: r = 1.
    r, _ = accessibility_correlation(CORRECT, CORRECT[:, [0, 2, 1]])
    assert r == pytest.approx(1.0)
    # 2 members, 3 checkpoints (the first, initialisation, is left out): on checkpoints 1-2
    # ex0 (1+1+1+1)/4 = 1, ex1 (1+0+1+0)/4 = 1/2, ex2 (0+1+0+0)/4 = 1/4, ex3 0.
    # x = 3 * [1, 2/3, 2/3, 0] = [3, 2, 2, 0], y = 4 * [1, 1/2, 1/4, 0] = [4, 2, 1, 0];
    # means 7/4 and 7/4: dx = [1.25, .25, .25, -1.75], dy = [2.25, .25, -.75, -1.75];
    # sum dxdy = 2.8125 + .0625 - .1875 + 3.0625 = 5.75; sum dx^2 = 1.5625 + .0625 + .0625
    # + 3.0625 = 4.75; sum dy^2 = 5.0625 + .0625 + .5625 + 3.0625 = 8.75
    other = np.array(
        [[[0, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]], dtype=bool
    )
    r, p = accessibility_correlation(CORRECT, other)
    assert r == pytest.approx(5.75 / np.sqrt(4.75 * 8.75))
    assert 0 <= p <= 1
    with pytest.raises(UserError):
        accessibility_correlation(CORRECT, CORRECT[:, :, :3])


def test_consistency_histogram():
    # counts of members right: e0 [1, 1, 0, 1], e1 [3, 2, 1, 0], e2 [3, 2, 3, 0]
    # fractions at k = 0, 1, 2, 3 (of 4 examples)
    expected = [[1 / 4, 3 / 4, 0, 0], [1 / 4, 1 / 4, 1 / 4, 1 / 4], [1 / 4, 0, 1 / 4, 2 / 4]]
    np.testing.assert_allclose(consistency_histogram(CORRECT), expected)


def test_accuracy_mean_std_is_population_std():
    # accuracies (of 4 examples): e0 all 1/4; e1 all 2/4; e2 3/4, 2/4, 3/4
    # e2 mean = 8/12 = 2/3; deviations 1/12, -1/6, 1/12; squares 1/144, 4/144, 1/144
    # ddof=0: var = (6/144)/3 = 1/72 -> std = sqrt(1/72) ~ 0.1179 (ddof=1 would be sqrt(1/48))
    mean, std = accuracy_mean_std(CORRECT)
    np.testing.assert_allclose(mean, [0.25, 0.5, 2 / 3])
    np.testing.assert_allclose(std, [0, 0, np.sqrt(1 / 72)], atol=1e-15)


def test_tp_agreement():
    # all right / any right: e0 0/3 (ex0, ex1, ex3 have someone right, none everyone)
    # e1: everyone right on ex0, someone on ex0, ex1, ex2 -> 1/3
    # e2: everyone right on ex0 and ex2, someone on ex0, ex1, ex2 -> 2/3
    np.testing.assert_allclose(tp_agreement(CORRECT), [0, T, 2 * T])


def test_tp_agreement_guards_an_empty_denominator():
    # Nobody right anywhere: 0 / max(1, 0) = 0, not NaN. Everyone right everywhere: 4/4 = 1.
    nobody = np.zeros((2, 2, 4), dtype=bool)
    np.testing.assert_array_equal(tp_agreement(nobody), [0.0, 0.0])
    np.testing.assert_array_equal(tp_agreement(~nobody), [1.0, 1.0])


def test_tp_agreement_lower_bound():
    # The fixture: summed errors e0 3 * 3/4 = 2.25, e1 3 * 1/2 = 1.5, e2 1/4 + 1/2 + 1/4 = 1,
    # all >= 1 -> bound 1 - min(., 1) = 0 at every checkpoint.
    np.testing.assert_allclose(tp_agreement_lower_bound(CORRECT), [0, 0, 0])
    # 3 members, 4 examples, each wrong on one different example: errors 1/4 each, sum 3/4
    # -> bound 1 - 3/4 = 1/4; only ex0 is right for all and 4 right for some -> TPa = 1/4 too
    # (the bound is tight). A second checkpoint with member 0 perfect: sum 1/2 -> bound 1/2.
    c = np.ones((3, 2, 4), dtype=bool)
    c[0, 0, 1] = c[1, 0, 2] = c[2, 0, 3] = False
    c[1, 1, 2] = c[2, 1, 3] = False
    np.testing.assert_allclose(tp_agreement_lower_bound(c), [0.25, 0.5])
    np.testing.assert_allclose(tp_agreement(c), [0.25, 0.5])


def test_statistic_over_agreed():
    # examples right for all: e0 none -> 0; e1 {ex0} -> 10; e2 {ex0, ex2} -> mean(10, NaN) = 10
    stat = np.array([10.0, 20.0, np.nan, 40.0])
    np.testing.assert_allclose(statistic_over_agreed(CORRECT, stat), [0, 10, 10])
    # all agreed examples NaN -> NaN
    out = statistic_over_agreed(CORRECT, np.array([np.nan, 1.0, 2.0, 3.0]))
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 2.0
    with pytest.raises(UserError):
        statistic_over_agreed(CORRECT, stat[:3])


def test_extreme_fractions():
    # observed at 0 (nobody right): e0 ex2, e1 ex3, e2 ex3 -> 1/4 each
    # observed at 1 (everyone right): e0 none, e1 ex0, e2 ex0, ex2 -> 0, 1/4, 2/4
    # expected at 0 = prod(1 - a): e0 (3/4)^3 = 27/64, e1 (1/2)^3 = 1/8, e2 1/4 * 1/2 * 1/4 = 1/32
    # expected at 1 = prod(a): e0 (1/4)^3 = 1/64, e1 1/8, e2 3/4 * 1/2 * 3/4 = 9/32
    f = extreme_fractions(CORRECT)
    np.testing.assert_allclose(f.observed_at_0, [0.25, 0.25, 0.25])
    np.testing.assert_allclose(f.observed_at_1, [0, 0.25, 0.5])
    np.testing.assert_allclose(f.expected_at_0, [27 / 64, 1 / 8, 1 / 32])
    np.testing.assert_allclose(f.expected_at_1, [1 / 64, 1 / 8, 9 / 32])


def test_easy_set_is_strictly_above_threshold():
    np.testing.assert_array_equal(easy_set([0.9, 0.95, 1.0, 0.5]), [False, True, True, False])
    # 9 of 10 members right -> c = 0.9 exactly, which is not easy
    c = np.zeros((10, 1, 1), dtype=bool)
    c[:9] = True
    assert not easy_set(consistency(c)[0]).any()
    np.testing.assert_array_equal(easy_set([0.5, 0.6], threshold=0.5), [False, True])
    with pytest.raises(UserError):
        easy_set([0.5], threshold=1.5)


def test_compare_easy_sets():
    # e0: A = {ex0, ex1}, B = {ex0, ex2}: both 1, only A 1, only B 1
    # e1: A = {}, B = {ex3} (0.9 is not > 0.9 in A): both 0, only A 0, only B 1
    cons_a = np.array([[1.0, 0.95, 0.0, 0.0], [0.5, 0.5, 0.5, 0.9]])
    cons_b = np.array([[1.0, 0.0, 0.95, 0.0], [0.5, 0.5, 0.5, 0.91]])
    both, only_a, only_b = compare_easy_sets(cons_a, cons_b)
    assert both.tolist() == [1, 0]
    assert only_a.tolist() == [1, 0]
    assert only_b.tolist() == [1, 1]
    with pytest.raises(UserError):
        compare_easy_sets(cons_a, cons_b[:, :3])


def test_learned_at_least_as_fast():
    # c[:, 0] = [1, 0, .5, 1], c[:, 1] = [0, .5, .5, .5]
    # c0 >= c1 per checkpoint: T, F, T (tie), T -> holds from checkpoint 2 on (not from 0)
    # c1 >= c0 per checkpoint: F, T, T, F -> fails at the last checkpoint: E = 4, False
    cons = np.array([[1, 0], [0, 0.5], [0.5, 0.5], [1, 0.5]])
    assert learned_at_least_as_fast_from(cons, 0, 1) == 2
    assert learned_at_least_as_fast(cons, 0, 1)
    assert learned_at_least_as_fast_from(cons, 1, 0) == 4
    assert not learned_at_least_as_fast(cons, 1, 0)
    assert learned_at_least_as_fast_from(cons, 0, 0) == 0  # every example vs itself
    with pytest.raises(UserError):
        learned_at_least_as_fast(cons, 0, 2)


def test_learned_checkpoint():
    # smallest e with correct at every e' >= e; E = 3 when wrong at the last checkpoint
    # m0: ex0 111 -> 0, ex1 011 -> 1, ex2 001 -> 2, ex3 000 -> 3
    # m1: ex0 011 -> 1, ex1 110 -> 3 (first right at 0, but forgotten), ex2 001 -> 2, ex3 -> 3
    # m2: ex0 011 -> 1, ex1 001 -> 2, ex2 011 -> 1, ex3 100 -> 3
    expected = [[0, 1, 2, 3], [1, 3, 2, 3], [1, 2, 1, 3]]
    np.testing.assert_array_equal(learned_checkpoint(CORRECT), expected)
    # right, wrong, right -> 2, not 0 (the first time right)
    assert learned_checkpoint(np.array([[[1], [0], [1]]], dtype=bool)).tolist() == [[2]]


def test_forgetting_events():
    # correct -> incorrect between consecutive checkpoints; never right -> E = 3
    # m0: ex0 111 -> 0, ex1 011 -> 0, ex2 001 -> 0, ex3 000 -> never -> 3
    # m1: ex0 011 -> 0, ex1 110 -> 1, ex2 001 -> 0, ex3 000 -> 3
    # m2: ex0 011 -> 0, ex1 001 -> 0, ex2 011 -> 0, ex3 100 -> 1 (right at init, then forgotten)
    expected = [[0, 0, 0, 3], [0, 1, 0, 3], [0, 0, 0, 1]]
    np.testing.assert_array_equal(forgetting_events(CORRECT), expected)
    # E = 5: 1 0 1 0 1 -> transitions 1->0 at (0,1) and (2,3): 2 events; 0 1 0 1 0 -> 2;
    # 1 1 1 1 0 -> 1; 0 0 0 0 0 -> never learned -> 5
    seqs = np.array([[1, 0, 1, 0, 1], [0, 1, 0, 1, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]]).T
    assert forgetting_events(seqs[None].astype(bool)).tolist() == [[2, 2, 1, 5]]


def test_data_map_averages_per_member_statistics():
    # One example, 2 members, 3 checkpoints.
    # member 0: p = [.2, .5, .8] -> mean .5, std sqrt((.09 + 0 + .09) / 3) = sqrt(.06)
    # member 1: p = [.6, .6, .6] -> mean .6, std 0
    # confidence (.5 + .6) / 2 = .55; variability sqrt(.06) / 2 ~ .1225
    # (std of the 6 pooled values would be sqrt(.0425) ~ .206; ddof=1 would give sqrt(.09)/2)
    # correctness: member 0 right at 2 of 3, member 1 at 3 of 3 -> (2/3 + 1) / 2 = 5/6
    p_true = np.array([[[0.2], [0.5], [0.8]], [[0.6], [0.6], [0.6]]])
    correct = np.array([[[0], [1], [1]], [[1], [1], [1]]], dtype=bool)
    confidence, variability, correctness = data_map(p_true, correct)
    np.testing.assert_allclose(confidence, [0.55])
    np.testing.assert_allclose(variability, [np.sqrt(0.06) / 2])
    np.testing.assert_allclose(correctness, [5 / 6])
    with pytest.raises(UserError):
        data_map(p_true[:, :2], correct)
    with pytest.raises(UserError):
        data_map(p_true + 0.5, correct)


def test_mean_el2n_averages_members_at_one_checkpoint():
    # el2n[n, e, i]; at checkpoint 1: ex0 (0.2 + 0.4) / 2 = 0.3, ex1 (1.0 + 0.0) / 2 = 0.5
    el2n = np.array([[[9.0, 9.0], [0.2, 1.0]], [[9.0, 9.0], [0.4, 0.0]]])
    np.testing.assert_allclose(mean_el2n(el2n, 1), [0.3, 0.5])
    np.testing.assert_allclose(mean_el2n(el2n, -1), [0.3, 0.5])
    with pytest.raises(UserError):
        mean_el2n(el2n, 2)
    with pytest.raises(UserError):
        mean_el2n(np.full((2, 2, 2), np.nan), 0)


def test_match_checkpoints():
    # a0 .9 -> b0 .9 (diff 0) keep; a1 .5 -> b2 .505 (diff .005) keep;
    # a2 .3 -> b3 .29 (diff .01, at the tolerance: kept despite float rounding);
    # a3 .2 -> b4 .25 (diff .05) dropped
    err_a = [0.9, 0.5, 0.3, 0.2]
    err_b = [0.9, 0.7, 0.505, 0.29, 0.25]
    assert match_checkpoints(err_a, err_b) == [(0, 0), (1, 2), (2, 3)]
    assert match_checkpoints(err_a, err_b, tol=0.005) == [(0, 0), (1, 2)]
    # exact nearest tie (.75 and .25 around .5) -> the earlier checkpoint of b
    assert match_checkpoints([0.5], [0.75, 0.25], tol=0.3) == [(0, 0)]
    with pytest.raises(UserError):
        match_checkpoints([], err_b)


def test_cross_consistency_merges_the_two_collections():
    # a: 2 members x 2 checkpoints, b: 1 member x 3 checkpoints, 3 examples
    a = np.array([[[1, 0, 0], [1, 1, 0]], [[0, 0, 0], [1, 1, 1]]], dtype=bool)
    b = np.array([[[0, 0, 1], [1, 0, 0], [1, 1, 1]]], dtype=bool)
    # pair (0, 2): a sums at e0 [1, 0, 0] + b at e2 [1, 1, 1] = [2, 1, 1] over 3 members
    # pair (1, 0): a sums at e1 [2, 2, 1] + b at e0 [0, 0, 1] = [2, 2, 2] over 3 members
    out = cross_consistency(a, b, [(0, 2), (1, 0)])
    np.testing.assert_allclose(out, [[2 / 3, 1 / 3, 1 / 3], [2 / 3, 2 / 3, 2 / 3]])
    assert cross_consistency(a, b, []).shape == (0, 3)
    with pytest.raises(UserError):
        cross_consistency(a, b, [(2, 0)])
    with pytest.raises(UserError):
        cross_consistency(a, b[:, :, :2], [(0, 0)])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((3, 4), dtype=bool),  # not [N, E, M]
        np.zeros((0, 2, 4), dtype=bool),  # no members
        np.full((2, 2, 2), 0.5),  # float
        np.full((2, 2, 2), 2),  # integer but not 0/1
    ],
)
def test_bad_correct_arrays_are_rejected(bad):
    with pytest.raises(UserError):
        consistency(bad)
    with pytest.raises(ValueError):  # UserError is a ValueError
        tp_agreement(bad)
