"""Tests of stats.distributions: every expected value is worked out by hand in the comments."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from stats.distributions import (
    bimodality,
    independent_null_consistency,
    pearson,
    poisson_binomial_pmf,
    spearman,
)

# ---------------------------------------------------------------------------------------------
# bimodality


@pytest.mark.parametrize("sample", [[0, 1], [0, 0, 0, 1], [0.2, 0.2, 0.2, 0.2, 0.9, 0.9]])
def test_bimodality_of_any_two_point_sample_is_zero(sample):
    # Two-point with weight p: skew^2 = (1-2p)^2 / (p(1-p)), kurtosis = (1 - 3p + 3p^2) / (p(1-p)),
    # so kurtosis - skew^2 = (p - p^2) / (p(1-p)) = 1 and the measure is 1 - 1 = 0.
    assert bimodality(sample) == pytest.approx(0.0, abs=1e-12)


def test_bimodality_by_hand_uses_non_excess_kurtosis_and_population_moments():
    # x = [0, 1, 2, 3]: mean 1.5, deviations -1.5, -0.5, 0.5, 1.5
    # m2 = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25;  m3 = 0 (symmetric)
    # m4 = (5.0625 + 0.0625 + 0.0625 + 5.0625) / 4 = 2.5625
    # kurtosis = 2.5625 / 1.25^2 = 1.64;  measure = 1.64 - 0 - 1 = 0.64
    # (excess kurtosis would give -2.36; ddof=1 moments another value)
    assert bimodality([0, 1, 2, 3]) == pytest.approx(0.64)


def test_bimodality_matches_the_scipy_formula_on_a_skewed_sample():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 2.5, 0.3])
    expected = sps.kurtosis(x, fisher=False) - sps.skew(x) ** 2 - 1
    assert bimodality(x) == pytest.approx(expected)
    assert isinstance(bimodality(x), float)


def test_bimodality_of_a_gaussian_is_about_two():
    # Gaussian: kurtosis 3, skew 0 -> 3 - 0 - 1 = 2.
    x = np.random.default_rng(0).normal(size=200_000)
    assert bimodality(x) == pytest.approx(2.0, abs=0.05)


def test_bimodality_along_an_axis():
    rows = np.array([[0, 1, 2, 3], [0, 0, 1, 1], [5, 5, 5, 5]], dtype=float)
    out = bimodality(rows, axis=1)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(0.64)
    assert out[1] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(out[2])  # constant row
    np.testing.assert_allclose(bimodality(rows.T, axis=0), out)


def test_bimodality_of_constant_input_is_nan_and_empty_input_raises():
    assert math.isnan(bimodality([0.3] * 7))
    assert math.isnan(bimodality([1.0]))
    assert math.isnan(bimodality([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError):
        bimodality([])
    with pytest.raises(ValueError):
        bimodality(np.zeros((3, 0)))


# ---------------------------------------------------------------------------------------------
# correlations


def test_pearson_by_hand_with_exact_p_value():
    # x = [1, 2, 3], y = [1, 3, 2]: dx = -1, 0, 1; dy = -1, 1, 0
    # r = sum(dx dy) / sqrt(sum dx^2 sum dy^2) = 1 / sqrt(2 * 2) = 0.5
    # n = 3: t = r sqrt((n-2) / (1 - r^2)) = 0.5 / sqrt(0.75) = 1/sqrt(3), df = 1 (Cauchy):
    # p = 1 - (2/pi) arctan(1/sqrt(3)) = 1 - (2/pi)(pi/6) = 2/3
    r, p = pearson([1, 2, 3], [1, 3, 2])
    assert r == pytest.approx(0.5)
    assert p == pytest.approx(2 / 3)


def test_pearson_drops_nan_pairs():
    # The pairs with a NaN on either side go; what is left is the hand example above.
    r, p = pearson([1, np.nan, 2, 7, 3], [1, 5, 3, np.nan, 2])
    assert (r, p) == pytest.approx((0.5, 2 / 3))


def test_spearman_by_hand():
    # ranks of y = [10, 30, 20, 40] are [1, 3, 2, 4]; d = [0, -1, 1, 0], sum d^2 = 2
    # rho = 1 - 6 * 2 / (4 * (16 - 1)) = 1 - 12/60 = 0.8
    rho, p = spearman([1, 2, 3, 4], [10, 30, 20, 40])
    assert rho == pytest.approx(0.8)
    assert p == pytest.approx(sps.spearmanr([1, 2, 3, 4], [10, 30, 20, 40]).pvalue)


def test_spearman_sees_monotone_relations_that_pearson_does_not():
    x = np.arange(1.0, 8.0)
    assert spearman(x, x**5)[0] == pytest.approx(1.0)
    assert pearson(x, x**5)[0] < 0.95


@pytest.mark.parametrize("fn", [pearson, spearman])
def test_correlations_reject_bad_input_and_give_nan_on_constant(fn):
    with pytest.raises(ValueError):
        fn([1, 2, 3], [1, 2])  # length mismatch
    with pytest.raises(ValueError):
        fn([1, 2], [3, 4])  # < 3 points
    with pytest.raises(ValueError):
        fn([1, 2, np.nan, 4], [1, 2, 3, np.nan])  # 2 pairs left after dropping
    r, p = fn([1, 2, 3, 4], [5, 5, 5, 5])
    assert math.isnan(r) and math.isnan(p)


# ---------------------------------------------------------------------------------------------
# Poisson-binomial and the independent null


def test_poisson_binomial_of_two_fair_coins():
    # P(0) = .5 * .5, P(1) = 2 * .5 * .5, P(2) = .5 * .5
    np.testing.assert_allclose(poisson_binomial_pmf([0.5, 0.5]), [0.25, 0.5, 0.25])


def test_poisson_binomial_by_hand_with_unequal_probabilities():
    # p = [0.2, 0.5, 1.0]. First two: P(0) = .8 * .5 = .4, P(1) = .8 * .5 + .2 * .5 = .5,
    # P(2) = .2 * .5 = .1. The certain third trial shifts everything by one: [0, .4, .5, .1].
    pmf = poisson_binomial_pmf([0.2, 0.5, 1.0])
    np.testing.assert_allclose(pmf, [0, 0.4, 0.5, 0.1], atol=1e-15)


def test_poisson_binomial_matches_brute_force_enumeration_and_binomial():
    p = np.array([0.1, 0.35, 0.5, 0.62, 0.9, 0.05])
    brute = np.zeros(p.size + 1)
    for outcome in itertools.product([0, 1], repeat=p.size):
        o = np.array(outcome)
        brute[o.sum()] += np.prod(np.where(o == 1, p, 1 - p))
    np.testing.assert_allclose(poisson_binomial_pmf(p), brute)
    np.testing.assert_allclose(poisson_binomial_pmf([0.3] * 5), sps.binom.pmf(np.arange(6), 5, 0.3))


def test_poisson_binomial_edges_and_validation():
    np.testing.assert_array_equal(poisson_binomial_pmf([]), [1.0])  # no trials: 0 successes
    for bad in ([0.5, 1.2], [-0.1], [np.nan]):
        with pytest.raises(ValueError):
            poisson_binomial_pmf(bad)
    with pytest.raises(ValueError):
        poisson_binomial_pmf([[0.5]])


def test_independent_null_consistency():
    # Accuracies [0.5, 0.5]: consistency 0, 1/2, 1 with pmf [.25, .5, .25].
    values, pmf = independent_null_consistency([0.5, 0.5])
    np.testing.assert_allclose(values, [0, 0.5, 1])
    np.testing.assert_allclose(pmf, [0.25, 0.5, 0.25])
    # The ends are prod(1 - a) and prod(a): a = [.9, .8, .5] -> .1*.2*.5 = .01 and .9*.8*.5 = .36
    values, pmf = independent_null_consistency([0.9, 0.8, 0.5])
    np.testing.assert_allclose(values, [0, 1 / 3, 2 / 3, 1])
    assert pmf[0] == pytest.approx(0.01)
    assert pmf[-1] == pytest.approx(0.36)
    assert pmf.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        independent_null_consistency([])
