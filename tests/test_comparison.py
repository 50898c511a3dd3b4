"""Comparison of training orders (curriculum.reporting.order_comparison) and the small-sample statistics it uses
(stats.distributions.mean_confidence_interval / paired_t_test), on hand-built curves whose
expected numbers are worked out in the comments.

Accuracies are multiples of 1/8 (8 test examples), so every sum below is exact in binary.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from curriculum.reporting.order_comparison import compare_orders, default_target, format_comparison, steps_to_target
from stats.distributions import mean_confidence_interval, paired_t_test

T_975_DF2 = 4.302653  # Student t quantile 0.975 with 2 degrees of freedom
STEPS = (10, 20, 40)  # uneven eval steps: span 30, trapezoid widths 10 and 20
CURVES = {  # order -> seed -> test accuracy at STEPS
    "none": {0: (0.5, 0.75, 0.75), 1: (0.25, 0.625, 0.875), 2: (0.5, 0.625, 0.625)},
    "random": {0: (0.5, 0.75, 0.875), 1: (0.75, 0.875, 1.0), 2: (0.25, 0.5, 0.75)},
    "curriculum": {0: (0.75, 0.875, 1.0), 1: (0.625, 0.75, 0.875), 2: (0.875, 0.875, 0.875)},
}
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])
WRONG = {  # order -> seed -> test examples wrong at the end (8 - |wrong| = 8 x final accuracy)
    "none": {0: [6, 7], 1: [7], 2: [5, 6, 7]},
    "random": {0: [0], 1: [], 2: [0, 1]},
    "curriculum": {0: [], 1: [3], 2: [3]},
}


def _curves(curves=CURVES, steps=STEPS) -> pd.DataFrame:
    rows = [
        {"order": o, "seed": s, "step": t, "test_accuracy": a}
        for o, by_seed in curves.items()
        for s, accs in by_seed.items()
        for t, a in zip(steps, accs)
    ]
    return pd.DataFrame(rows).sample(frac=1, random_state=0)  # row order must not matter


def _predictions(wrong=WRONG) -> dict:
    out = {}
    for order, by_seed in wrong.items():
        for seed, idx in by_seed.items():
            pred = LABELS.copy()
            pred[idx] = (LABELS[idx] + 1) % 3
            out[order, seed] = pred
    return out


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return compare_orders(_curves(), _predictions(), LABELS).set_index("order")


def test_final_accuracy_mean_and_t_interval(table):
    # none: finals 0.75, 0.875, 0.625 -> mean 0.75, sd = sqrt((0 + 0.125^2 + 0.125^2) / 2) = 0.125
    half = T_975_DF2 * 0.125 / math.sqrt(3)
    assert table.loc["none", "final_acc"] == 0.75
    assert table.loc["none", "ci95"] == pytest.approx(half, rel=1e-6)
    # random: finals 0.875, 1, 0.75: the same spread shifted by 1/8
    assert table.loc["random", "final_acc"] == 0.875
    assert table.loc["random", "ci95"] == pytest.approx(half, rel=1e-6)
    # curriculum: finals 1, 0.875, 0.875 -> mean 11/12; deviations 1/12, -1/24, -1/24:
    # var = (1/144 + 2/576) / 2 = 1/192, sem = sqrt(1/192 / 3) = 1/24
    assert table.loc["curriculum", "final_acc"] == pytest.approx(11 / 12)
    assert table.loc["curriculum", "ci95"] == pytest.approx(T_975_DF2 / 24, rel=1e-6)
    assert list(table.index) == list(dict.fromkeys(_curves()["order"]))  # first-seen order
    assert (table["seeds"] == 3).all()


def test_auc_is_the_trapezoid_over_the_eval_steps_divided_by_the_span(table):
    # area of (a, b, c) at steps 10, 20, 40 = (a + b) / 2 * 10 + (b + c) / 2 * 20; span 30
    # none:       6.25 + 15 = 21.25;  4.375 + 15 = 19.375;  5.625 + 12.5 = 18.125  -> 58.75
    # random:     6.25 + 16.25 = 22.5;  8.125 + 18.75 = 26.875;  3.75 + 12.5 = 16.25 -> 65.625
    # curriculum: 26.875;  6.875 + 16.25 = 23.125;  8.75 + 17.5 = 26.25             -> 76.25
    assert table.loc["none", "auc"] == pytest.approx(58.75 / 90)
    assert table.loc["random", "auc"] == pytest.approx(65.625 / 90)
    assert table.loc["curriculum", "auc"] == pytest.approx(76.25 / 90)
    # a single eval step has no span: the AUC is that accuracy
    one = compare_orders(
        _curves({"none": {0: (0.5,), 1: (0.75,)}}, steps=(7,)), {("none", 0): LABELS, ("none", 1): LABELS}, LABELS
    )
    assert one["auc"].iloc[0] == 0.625


def test_steps_to_the_default_target(table):
    # default target = 0.95 x final mean of none = 0.95 x 0.75 = 0.7125
    assert default_target(_curves()) == pytest.approx(0.7125)
    assert np.allclose(table["target"], 0.7125)
    # none: seed 0 at 20 (0.75), seed 1 at 40 (0.875), seed 2 never (max 0.625) -> NaN, 2 reached
    assert np.isnan(table.loc["none", "steps_to_target"]) and table.loc["none", "reached"] == 2
    # random: 20, 10, 40 -> 70 / 3;  curriculum: 10, 20, 10 -> 40 / 3
    assert table.loc["random", "steps_to_target"] == pytest.approx(70 / 3)
    assert table.loc["curriculum", "steps_to_target"] == pytest.approx(40 / 3)
    assert table.loc["random", "reached"] == table.loc["curriculum", "reached"] == 3


def test_explicit_target_and_steps_to_target_of_one_run():
    # target 1: only curriculum seed 0 (at 40) and random seed 1 (at 40) get there
    table = compare_orders(_curves(), _predictions(), LABELS, target=1.0).set_index("order")
    assert table["reached"].to_dict() == {"none": 0, "random": 1, "curriculum": 1}
    assert table["steps_to_target"].isna().all()
    run = pd.DataFrame({"step": [30, 10, 20], "test_accuracy": [0.9, 0.5, 0.8]})  # unsorted
    assert steps_to_target(run, 0.8) == 20  # reaching means >= target
    assert steps_to_target(run, 0.85) == 30
    assert np.isnan(steps_to_target(run, 0.95))


def test_default_target_without_none_uses_the_first_order():
    curves = _curves({"random": CURVES["random"], "curriculum": CURVES["curriculum"]})
    first = curves["order"].iloc[0]
    final = {"random": 0.875, "curriculum": 11 / 12}[first]
    assert default_target(curves) == pytest.approx(0.95 * final)


def test_agreement_among_the_seeds_of_each_order(table):
    # none: wrong {6,7}, {7}, {5,6,7}: all right on 0..4 (5), someone right on 0..6 (7)
    assert table.loc["none", "tpa"] == pytest.approx(5 / 7)
    # random: wrong {0}, {}, {0,1}: all right on 2..7 (6) of 8 some seed gets right
    assert table.loc["random", "tpa"] == pytest.approx(6 / 8)
    # curriculum: wrong {}, {3}, {3}: all right on 7 of 8
    assert table.loc["curriculum", "tpa"] == pytest.approx(7 / 8)
    # mean consistency = (right answers of all seeds) / (3 x 8): none (6 + 7 + 5) / 24 = 0.75;
    # it always equals the mean final accuracy when predictions and curves agree
    assert table.loc["none", "mean_consistency"] == 0.75
    assert np.allclose(table["mean_consistency"], table["final_acc"])


def test_paired_gains_and_p_values(table):
    # random - none = 0.125 for every seed: no spread, a constant shift -> p = 0 (documented)
    assert table.loc["random", "gain_vs_none"] == 0.125 and table.loc["random", "p_vs_none"] == 0.0
    assert table.loc["none", "gain_vs_random"] == -0.125 and table.loc["none", "p_vs_random"] == 0.0
    # curriculum - none = 0.25, 0, 0.25: mean 1/6, sd = sqrt((1/144 + 4/144 + 1/144) / 2) = sqrt(1/48),
    # sem = 1/12, t = 2; with 2 df the two-sided p is 1 - t / sqrt(t^2 + 2) = 1 - 2 / sqrt(6)
    assert table.loc["curriculum", "gain_vs_none"] == pytest.approx(1 / 6)
    assert table.loc["curriculum", "p_vs_none"] == pytest.approx(1 - 2 / math.sqrt(6))
    assert table.loc["curriculum", "p_vs_none"] == pytest.approx(2 * sps.t.sf(2.0, df=2))
    # curriculum - random = 0.125, -0.125, 0.125: mean 1/24, deviations 1/12, -1/6, 1/12, so the
    # same sd as above, sem = 1/12, t = 1/2 and p = 1 - 0.5 / sqrt(2.25) = 2/3
    assert table.loc["curriculum", "gain_vs_random"] == pytest.approx(1 / 24)
    assert table.loc["curriculum", "p_vs_random"] == pytest.approx(2 / 3)
    assert table.loc["curriculum", "p_vs_random"] == pytest.approx(2 * sps.t.sf(0.5, df=2))
    # an order is not compared with itself
    assert np.isnan(table.loc["none", "gain_vs_none"]) and np.isnan(table.loc["random", "gain_vs_random"])


def test_gains_pair_runs_by_seed_not_by_position():
    # curriculum trained seeds 1, 2 and none seeds 0, 1, 2: only seeds 1 and 2 pair up
    curves = _curves({"none": CURVES["none"], "curriculum": {s: CURVES["curriculum"][s] for s in (1, 2)}})
    table = compare_orders(curves, _predictions(), LABELS).set_index("order")
    # differences 0.875 - 0.875 = 0 and 0.875 - 0.625 = 0.25: mean 0.125, sd = sqrt(2 x 0.125^2) = 0.125 x sqrt2,
    # sem = 0.125, t = 1; with 1 df the two-sided p is 1 - 2 atan(t) / pi = 0.5
    assert table.loc["curriculum", "gain_vs_none"] == pytest.approx(0.125)
    assert table.loc["curriculum", "p_vs_none"] == pytest.approx(0.5)
    assert "gain_vs_random" not in table.columns


def test_format_comparison_prints_every_order_and_the_target(table):
    text = format_comparison(table.reset_index())
    lines = text.splitlines()
    assert (
        "steps to 0.712" in lines[0]
    )  # 0.95 x 0.75 is 0.71249999... in binary and "vs none (p)" in lines[0] and "vs random (p)" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == list(table.index)
    none_line = next(line for line in lines if line.startswith("none"))
    assert "0.7500 +- 0.3105" in none_line and "- (2/3)" in none_line
    assert "+0.1667 ( 0.18)" in next(line for line in lines if line.startswith("curriculum"))


def test_mean_confidence_interval_edge_cases():
    mean, half = mean_confidence_interval([0.2, 0.4, 0.9])
    # mean 0.5; deviations -0.3, -0.1, 0.4: var = (0.09 + 0.01 + 0.16) / 2 = 0.13
    assert mean == pytest.approx(0.5)
    assert half == pytest.approx(T_975_DF2 * math.sqrt(0.13 / 3), rel=1e-6)
    # 90 %: t quantile 0.95 with 2 df is 2.919986
    assert mean_confidence_interval([0.2, 0.4, 0.9], level=0.9)[1] == pytest.approx(
        2.919986 * math.sqrt(0.13 / 3), rel=1e-6
    )
    assert mean_confidence_interval([0.2, np.nan, 0.4, 0.9]) == (mean, half)  # NaN dropped
    one = mean_confidence_interval([0.7])
    assert one[0] == 0.7 and np.isnan(one[1])
    assert mean_confidence_interval([0.1, 0.1, 0.1]) == (0.1, 0.0)  # constant: exactly, no rounding
    for bad in ([], [np.nan, np.nan]):
        with pytest.raises(ValueError, match="at least one value"):
            mean_confidence_interval(bad)
    for level in (0, 1, 95):
        with pytest.raises(ValueError, match="level in"):
            mean_confidence_interval([0.1, 0.2], level=level)


def test_paired_t_test_edge_cases():
    # differences 1, 2, 4 -> mean 7/3, deviations -4/3, -1/3, 5/3: var = (16 + 1 + 25) / 9 / 2 = 7/3
    a, b = np.array([3.0, 5.0, 9.0]), np.array([2.0, 3.0, 5.0])
    t = (7 / 3) / math.sqrt(7 / 3 / 3)
    gain, p = paired_t_test(a, b)
    assert gain == pytest.approx(7 / 3) and p == pytest.approx(2 * sps.t.sf(t, df=2))
    assert paired_t_test(b, a) == (pytest.approx(-7 / 3), pytest.approx(p))
    assert paired_t_test([0.5, 0.75], [0.5, 0.75]) == (0.0, 1.0)  # every difference 0
    assert paired_t_test([3.0, 4.0, 5.0], [1.0, 2.0, 3.0]) == (2.0, 0.0)  # constant shift
    # 0.85 - 0.8, 0.95 - 0.9, 0.75 - 0.7 differ in the last bits only: still a constant shift
    gain, p = paired_t_test([0.85, 0.95, 0.75], [0.8, 0.9, 0.7])
    assert gain == pytest.approx(0.05) and p == 0.0
    gain, p = paired_t_test([0.9], [0.6])
    assert gain == pytest.approx(0.3) and np.isnan(p)
    gain, p = paired_t_test([], [])
    assert np.isnan(gain) and np.isnan(p)
    for a, b in (([1.0, 2.0], [1.0]), ([[1.0, 2.0]], [[1.0, 2.0]])):
        with pytest.raises(ValueError, match="equal length"):
            paired_t_test(a, b)
