"""Statistics of a campaign against its holdout, computed from per-arm aggregates only.

Every function here takes counts and sums (never customer rows), so the cost does not depend on
the number of customers or orders. Methods (see docs/decisions/0011-campaign-stats.md):

- difference of two conversion rates: Newcombe's hybrid score interval (method 10 of Newcombe
  1998: Wilson intervals of each rate combined), which stays inside [-1, 1] and behaves with zero
  conversions; p-value: the two-sided pooled z-test (score test) for equal rates;
- relative uplift (rate ratio minus one): the Katz log interval, undefined when an arm has no
  conversion;
- revenue per customer (skewed, many zeros): Welch's unequal-variance t interval and test on the
  per-customer means, from n, the sum and the sum of squares of each arm;
- minimum detectable effect and planned holdout size: the usual two-proportion power formula
  (normal approximation, pooled variance under no effect, unpooled under the effect), two-sided
  alpha and the chosen power.

The tests check these against statsmodels and scipy, which compute the same intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # standard normal quantile 0.975


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - level) / 2))


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``x / n`` (no continuity correction)."""
    if n <= 0:
        return (0.0, 1.0)
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_diff(x1: int, n1: int, x0: int, n0: int, level: float = 0.95) -> tuple[float, float]:
    """Interval of ``x1/n1 - x0/n0`` (Newcombe's hybrid score, from two Wilson intervals)."""
    z = _z(level)
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return (low, high)


def pooled_z_pvalue(x1: int, n1: int, x0: int, n0: int) -> float:
    """Two-sided p-value of the pooled z-test of equal proportions (1.0 when nobody or everybody converted)."""
    from scipy.stats import norm

    p = (x1 + x0) / (n1 + n0)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    zstat = (x1 / n1 - x0 / n0) / se
    return float(2 * norm.sf(abs(zstat)))


def ratio_interval(x1: int, n1: int, x0: int, n0: int, level: float = 0.95) -> tuple[float, float] | None:
    """Katz log interval of the rate ratio ``(x1/n1) / (x0/n0)``; None when either count is zero."""
    if x1 == 0 or x0 == 0:
        return None
    r = (x1 / n1) / (x0 / n0)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    z = _z(level)
    return (r * math.exp(-z * se), r * math.exp(z * se))


@dataclass(frozen=True)
class Moments:
    """Per-customer values of one arm summarised: count, sum and sum of squares."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def var(self) -> float:
        """Sample variance (n - 1 in the denominator); 0 with fewer than two customers."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class WelchResult:
    diff: float
    low: float
    high: float
    p_value: float
    df: float


def welch(a: Moments, b: Moments, level: float = 0.95) -> WelchResult | None:
    """Welch's t interval and two-sided test of ``mean(a) - mean(b)``; None when not computable."""
    from scipy.stats import t

    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.var / a.n, b.var / b.n
    diff = a.mean - b.mean
    se2 = va + vb
    if se2 == 0:
        return WelchResult(diff, diff, diff, 1.0 if diff == 0 else 0.0, float(a.n + b.n - 2))
    df = se2 * se2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))
    se = math.sqrt(se2)
    q = float(t.ppf(1 - (1 - level) / 2, df))
    p = float(2 * t.sf(abs(diff) / se, df))
    return WelchResult(diff, diff - q * se, diff + q * se, p, df)


def power(p0: float, effect: float, n1: int, n0: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided test of equal rates when the arm's rate is ``p0 + effect`` (normal
    approximation: pooled variance under no effect, unpooled under the effect)."""
    from scipy.stats import norm

    p1 = p0 + effect
    pbar = (n0 * p0 + n1 * p1) / (n0 + n1)
    null = math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n0))
    alt = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    return float(norm.cdf((abs(effect) - _z(1 - alpha) * null) / alt))


def mde(p0: float, n1: int, n0: int, *, alpha: float = 0.05, target: float = 0.8) -> float | None:
    """Smallest absolute uplift over ``p0`` that these sizes detect with power ``target``.

    Solved on :func:`power` by bisection; None when a size is zero, the baseline is 0 or 1, or
    even an arm converting everybody would not be detected."""
    if n1 <= 0 or n0 <= 0 or not 0 < p0 < 1:
        return None
    low, high = 0.0, 1 - p0 - 1e-12
    if power(p0, high, n1, n0, alpha=alpha) < target:
        return None
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if power(p0, mid, n1, n0, alpha=alpha) < target else (low, mid)
    return high


def holdout_size(baseline: float, effect: float, *, ratio: float, alpha: float = 0.05,
                 power: float = 0.8) -> int:
    """Customers the holdout needs to detect an absolute uplift ``effect`` over ``baseline``.

    ``ratio`` is treated customers per holdout customer (9 for a 10% holdout). The usual formula
    for two proportions (Fleiss): pooled variance under no effect, unpooled under the effect,
    ``n0 = (z_a sqrt(pbar qbar (1 + 1/k)) + z_b sqrt(p0 q0 + p1 q1 / k))^2 / effect^2``."""
    p1 = baseline + effect
    if not (0 < baseline < 1 and 0 < p1 < 1) or effect == 0 or ratio <= 0:
        raise ValueError("baseline and baseline + effect must be strictly between 0 and 1, effect non-zero")
    za, zb = _z(1 - alpha), _z(2 * power - 1)
    pbar = (baseline + ratio * p1) / (1 + ratio)
    null = math.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio))
    alt = math.sqrt(baseline * (1 - baseline) + p1 * (1 - p1) / ratio)
    return math.ceil((za * null + zb * alt) ** 2 / effect**2)
