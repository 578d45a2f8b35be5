"""Campaign results: orders (and conversion events) in the window, aggregated per arm in DuckDB, then
compared arm by arm against the holdout with :mod:`crmtool.campaigns.stats`.

A member converts when they placed at least one valid order (date parsed, amount present and not
negative) in ``[start_date, start_date + window)``, or, with an events file and a conversion event
type, had such an event in the window. Revenue per customer counts every member, 0 for those
without orders; average order value is revenue over orders.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from crmtool.campaigns import stats
from crmtool.campaigns.store import GLOBAL_CONTROL, HOLDOUT
from crmtool.status import Status

ALL_VARIANTS = "all_variants"
MIN_HOLDOUT = 100  # fewer holdout customers than this: too small to conclude whatever the numbers
MIN_HOLDOUT_CONVERSIONS = 5  # normal approximations need a few events in the control


@dataclass(frozen=True)
class ArmStats:
    arm: str
    customers: int
    conversions: int
    orders: int
    revenue: float
    revenue_sq: float  # sum over customers of revenue squared (for the variance)

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.customers if self.customers else 0.0

    @property
    def revenue_per_customer(self) -> float:
        return self.revenue / self.customers if self.customers else 0.0

    @property
    def aov(self) -> float | None:
        return self.revenue / self.orders if self.orders else None

    @property
    def moments(self) -> stats.Moments:
        return stats.Moments(self.customers, self.revenue, self.revenue_sq)

    def as_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "customers": self.customers,
            "conversions": self.conversions,
            "conversion_rate": _r(self.conversion_rate),
            "orders": self.orders,
            "revenue": round(self.revenue, 2),
            "revenue_per_customer": _r(self.revenue_per_customer),
            "aov": None if self.aov is None else round(self.aov, 2),
        }


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def combine(name: str, arms: list[ArmStats]) -> ArmStats:
    return ArmStats(name, sum(a.customers for a in arms), sum(a.conversions for a in arms),
                    sum(a.orders for a in arms), sum(a.revenue for a in arms), sum(a.revenue_sq for a in arms))


@dataclass(frozen=True)
class Comparison:
    """One arm against the holdout (absolute and relative uplift, revenue, incrementals, ROI)."""

    arm: str
    control: str
    uplift: float  # difference of conversion rates
    uplift_low: float
    uplift_high: float
    p_value: float
    relative_uplift: float | None
    relative_low: float | None
    relative_high: float | None
    rpc_diff: float | None  # revenue per customer, arm minus control
    rpc_low: float | None
    rpc_high: float | None
    rpc_p_value: float | None
    incremental_conversions: float
    incremental_conversions_low: float
    incremental_conversions_high: float
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    mde: float | None  # smallest absolute conversion uplift these sizes detect (80% power)
    cost: float | None = None
    roi: float | None = None
    roi_low: float | None = None
    roi_high: float | None = None

    @property
    def significant(self) -> bool:
        return self.uplift_low > 0 or self.uplift_high < 0

    def as_dict(self) -> dict[str, Any]:
        return {k: (_r(v) if isinstance(v, float) else v) for k, v in asdict(self).items()} | {
            "significant": self.significant}


def compare(arm: ArmStats, control: ArmStats, cost: float | None) -> Comparison:
    x1, n1, x0, n0 = arm.conversions, arm.customers, control.conversions, control.customers
    low, high = stats.newcombe_diff(x1, n1, x0, n0)
    d = arm.conversion_rate - control.conversion_rate
    ratio = stats.ratio_interval(x1, n1, x0, n0)
    rel = arm.conversion_rate / control.conversion_rate - 1 if control.conversions else None
    w = stats.welch(arm.moments, control.moments)
    base = control.conversion_rate if 0 < control.conversion_rate < 1 else (x1 + x0) / (n1 + n0)
    inc_rev = None if w is None else (w.diff * n1, w.low * n1, w.high * n1)
    roi: tuple[float, float, float] | None = None
    if cost and inc_rev is not None:
        roi = ((inc_rev[0] - cost) / cost, (inc_rev[1] - cost) / cost, (inc_rev[2] - cost) / cost)
    return Comparison(
        arm.arm, control.arm, d, low, high, stats.pooled_z_pvalue(x1, n1, x0, n0),
        rel, None if ratio is None else ratio[0] - 1, None if ratio is None else ratio[1] - 1,
        None if w is None else w.diff, None if w is None else w.low, None if w is None else w.high,
        None if w is None else w.p_value,
        d * n1, low * n1, high * n1,
        None if inc_rev is None else inc_rev[0], None if inc_rev is None else inc_rev[1],
        None if inc_rev is None else inc_rev[2],
        stats.mde(base, n1, n0) if 0 < base < 1 else None,
        cost, *(roi or (None, None, None)),
    )


def winner(variants: list[ArmStats], level: float = 0.95) -> str | None:
    """The variant whose conversion rate beats every other variant's with the interval above 0
    (Bonferroni: each of the k - 1 comparisons at level ``1 - (1 - level) / (k - 1)``); else None."""
    if len(variants) < 2:
        return None
    each = 1 - (1 - level) / (len(variants) - 1)
    for a in variants:
        if a.customers and all(
            b.customers and stats.newcombe_diff(a.conversions, a.customers, b.conversions, b.customers, each)[0] > 0
            for b in variants if b is not a
        ):
            return a.arm
    return None


@dataclass
class Group:
    """Results for all customers (``value`` None) or for one value of the breakdown column."""

    value: str | None
    arms: list[ArmStats]
    comparisons: list[Comparison]
    winner: str | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "arms": [a.as_dict() for a in self.arms],
                "comparisons": [c.as_dict() for c in self.comparisons], "winner": self.winner,
                "warnings": self.warnings}


def analyse(value: str | None, arms: dict[str, ArmStats], variants: list[str], cost: float | None) -> Group:
    """Compare each variant (and all variants together, when several) with the holdout."""
    sent = [arms[v] for v in variants if v in arms and arms[v].customers]
    ordered = [*sent, *(arms[a] for a in (HOLDOUT, GLOBAL_CONTROL) if a in arms)]
    control = arms.get(HOLDOUT)
    group = Group(value, ordered, [], winner(sent))
    where = f" ({value})" if value is not None else ""
    if control is None or control.customers == 0:
        group.warnings.append(f"no holdout customers{where}: uplift cannot be measured")
        return group
    total = sum(a.customers for a in sent)
    targets = [*sent, combine(ALL_VARIANTS, sent)] if len(sent) > 1 else sent
    for arm in targets:
        share = None if not cost or not total else cost * arm.customers / total
        group.comparisons.append(compare(arm, control, share))
    if control.customers < MIN_HOLDOUT or control.conversions < MIN_HOLDOUT_CONVERSIONS:
        group.warnings.append(
            f"holdout too small to conclude{where}: {control.customers} customers, {control.conversions} "
            f"conversions (need at least {MIN_HOLDOUT} and {MIN_HOLDOUT_CONVERSIONS})")
    else:
        for c in group.comparisons:
            if not c.significant and c.mde is not None and c.mde > abs(c.uplift):
                group.warnings.append(
                    f"{c.arm}{where}: the interval covers 0 and these sizes only detect an uplift of "
                    f"{c.mde * 100:.2f} pp or more (80% power): too small to conclude")
    return group


@dataclass
class CampaignResults:
    run_id: str
    campaign: dict[str, Any]
    start_date: date
    end_date: date  # exclusive
    conversion: str
    by: str | None
    groups: list[Group]
    inputs: dict[str, Any]
    status: Status = Status.PASS

    @property
    def warnings(self) -> list[str]:
        return [w for g in self.groups for w in g.warnings]

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": str(self.status), "campaign": self.campaign,
                "window": {"start": self.start_date.isoformat(),
                           "end_exclusive": self.end_date.isoformat(),
                           "days": (self.end_date - self.start_date).days},
                "conversion": self.conversion, "by": self.by, "inputs": self.inputs,
                "groups": [g.as_dict() for g in self.groups], "warnings": self.warnings}


def window(start: date, days: int) -> tuple[date, date]:
    return start, start + timedelta(days=days)
