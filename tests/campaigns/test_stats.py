"""The campaign statistics against statsmodels and scipy, which compute the same intervals and tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    power_proportions_2indep,
    proportions_ztest,
)

from crmtool.campaigns import stats

CASES = [  # (conversions, customers) of an arm, then of the holdout
    (120, 2000, 80, 2000),  # equal sizes, a real effect
    (300, 9000, 25, 1000),  # unequal sizes (a 10% holdout)
    (7, 45, 2, 40),  # small
    (0, 500, 3, 60),  # no conversion in the arm
    (12, 500, 0, 60),  # no conversion in the holdout
    (0, 300, 0, 30),  # nobody converted
    (50, 50, 10, 20),  # everybody in the arm converted
]


@pytest.mark.parametrize(("x1", "n1", "x0", "n0"), CASES)
def test_difference_interval_is_newcombe(x1: int, n1: int, x0: int, n0: int) -> None:
    low, high = stats.newcombe_diff(x1, n1, x0, n0)
    ref = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
    assert low == pytest.approx(ref[0], abs=1e-9)
    assert high == pytest.approx(ref[1], abs=1e-9)
    assert -1 <= low <= x1 / n1 - x0 / n0 <= high <= 1


@pytest.mark.parametrize(("x1", "n1", "x0", "n0"), CASES)
def test_p_value_is_the_pooled_z_test(x1: int, n1: int, x0: int, n0: int) -> None:
    p = stats.pooled_z_pvalue(x1, n1, x0, n0)
    if x1 + x0 in (0, n1 + n0):
        assert p == 1.0
        return
    _, ref = proportions_ztest([x1, x0], [n1, n0])
    assert p == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize(("x1", "n1", "x0", "n0"), CASES)
def test_ratio_interval_is_katz_log(x1: int, n1: int, x0: int, n0: int) -> None:
    got = stats.ratio_interval(x1, n1, x0, n0)
    if x1 == 0 or x0 == 0:
        assert got is None
        return
    ref = confint_proportions_2indep(x1, n1, x0, n0, method="log", compare="ratio")
    assert got == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize(("n1", "n0", "lift"), [(5000, 500, 1.5), (300, 2000, 0.0), (40, 35, 8.0)])
def test_welch_matches_scipy_on_skewed_revenue(n1: int, n0: int, lift: float) -> None:
    rng = np.random.default_rng(n1 + n0)
    # most customers spend nothing, the rest a log-normal amount: the shape of revenue per customer
    a = np.where(rng.random(n1) < 0.06, rng.lognormal(3.5, 1.0, n1) + lift, 0.0)
    b = np.where(rng.random(n0) < 0.05, rng.lognormal(3.5, 1.0, n0), 0.0)
    got = stats.welch(stats.Moments(n1, float(a.sum()), float((a * a).sum())),
                      stats.Moments(n0, float(b.sum()), float((b * b).sum())))
    ref = sps.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert got is not None
    assert got.diff == pytest.approx(a.mean() - b.mean(), rel=1e-9)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert got.df == pytest.approx(ref.df, rel=1e-6)
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high), rel=1e-6)


def test_welch_needs_two_customers_per_arm() -> None:
    assert stats.welch(stats.Moments(1, 5.0, 25.0), stats.Moments(10, 5.0, 25.0)) is None


@pytest.mark.parametrize(("baseline", "effect", "share"), [(0.03, 0.005, 0.10), (0.10, 0.02, 0.5), (0.2, -0.03, 0.2)])
def test_planned_holdout_reaches_the_power(baseline: float, effect: float, share: float) -> None:
    ratio = (1 - share) / share
    n0 = stats.holdout_size(baseline, effect, ratio=ratio, power=0.8)

    def power(holdout: int) -> float:  # statsmodels: nobs1 is the treated arm (rate baseline + effect)
        return float(power_proportions_2indep(effect, baseline, holdout * ratio, ratio=1 / ratio,
                                              return_results=False))

    assert 0.8 <= power(n0) < 0.801
    assert power(n0 - 2) < 0.8


def test_mde_is_the_effect_with_80_percent_power() -> None:
    m = stats.mde(0.05, 9000, 1000)
    assert m is not None
    got = power_proportions_2indep(m, 0.05, 9000, ratio=1 / 9, return_results=False)
    assert got == pytest.approx(0.8, abs=1e-6)
    assert stats.mde(0.0, 100, 10) is None
    assert stats.mde(0.05, 100, 0) is None


def test_no_effect_interval_covers_zero_about_95_percent() -> None:
    """400 simulated campaigns without effect: the share of intervals covering 0 has a standard error
    of sqrt(0.95 * 0.05 / 400) = 1.09 points, so 0.95 +/- 0.038 is a 3.5-sigma band (a false alarm
    about once in 2000 runs, and the seed is fixed); Newcombe's interval is known to be slightly
    conservative, which stays inside the band."""
    rng = np.random.default_rng(20261201)
    sims, n1, n0, p = 400, 3000, 400, 0.04
    x1 = rng.binomial(n1, p, sims)
    x0 = rng.binomial(n0, p, sims)
    covered = sum(low <= 0 <= high for low, high in (stats.newcombe_diff(int(a), n1, int(b), n0)
                                                     for a, b in zip(x1, x0, strict=True)))
    assert 0.912 <= covered / sims <= 0.988


def test_known_effect_interval_covers_the_truth_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    sims, n1, n0, p0, d = 400, 5000, 800, 0.05, 0.02
    x1 = rng.binomial(n1, p0 + d, sims)
    x0 = rng.binomial(n0, p0, sims)
    intervals = [stats.newcombe_diff(int(a), n1, int(b), n0) for a, b in zip(x1, x0, strict=True)]
    assert 0.912 <= sum(lo <= d <= hi for lo, hi in intervals) / sims <= 0.988
    # and the effect is found most of the time at these sizes (power well above one half)
    assert sum(lo > 0 for lo, _ in intervals) / sims > 0.5


def test_wilson_edges() -> None:
    assert stats.wilson(0, 10)[0] == 0.0
    assert stats.wilson(10, 10)[1] == pytest.approx(1.0)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    assert math.isclose(sum(stats.wilson(5, 10)), 1.0)
