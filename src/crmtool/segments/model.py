"""What a ``segments.yaml`` declares: the frozen specs and the names crmtool builds in.

No parsing and no DuckDB here: :mod:`crmtool.segments.spec` builds these from a file,
:mod:`crmtool.segments.schema` publishes the file's JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from crmtool.errors import Location

#: features every run computes (see :mod:`crmtool.segments.features`)
BUILTIN_FEATURES: dict[str, str] = {
    "recency_days": "days from the last valid order to as_of (NULL without orders)",
    "frequency": "number of valid orders",
    "monetary_total": "sum of valid order amounts",
    "monetary_avg": "average valid order amount",
    "first_order_date": "date of the first valid order",
    "last_order_date": "date of the last valid order",
    "tenure_days": "days from signup (or the first order when no signup column) to as_of",
    "r_score": "recency score 1-5 by quintile (5 = most recent)",
    "f_score": "frequency score 1-5 by quintile",
    "m_score": "monetary score 1-5 by quintile",
    "rfm_score": "the three scores as text, e.g. '545'",
    "rfm_segment": "name from the rfm.segments mapping ('no_orders' without orders)",
    "last_contact_date": "date of the last event with a channel",
    "last_contact_channel": "channel of the last event (or order) with a channel",
    "funnel_stage": "first matching stage of the funnel mapping",
    "as_of": "the reference date of the run",
}

#: features a ``clv:`` section adds (see :mod:`crmtool.segments.clv`)
CLV_FEATURES: dict[str, str] = {
    "clv_historical": "sum of valid order amounts so far (the customer's value to date)",
    "clv_predicted": "expected value of the next clv.months months (BG/NBD + Gamma-Gamma; NULL without orders)",
    "churn_probability": "1 - probability that the customer is still active (BG/NBD; NULL without orders)",
}
CLV_MODELS = ("bgnbd", "historical")

COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
OTHER_OPS = ("in", "not_in", "between", "is_null", "within", "not_within", "before", "after")
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M")

#: a feature may use window functions (a rank over all customers, say); a condition may not
FEATURE_AGGREGATES = True
#: macros crmtool defines for user SQL in segments (features.register_macros)
SEGMENT_MACROS = ("seg_date", "seg_num")



@dataclass(frozen=True)
class Cond:
    """A condition node: ``op`` is all | any | not | sql | a comparison operator."""

    op: str
    loc: Location
    children: tuple[Cond, ...] = ()
    field: str | None = None
    value: Any = None
    sql: str | None = None


@dataclass(frozen=True)
class CustomersInput:
    id: str = "customer_id"
    email: str | None = "email"
    phone: str | None = "phone"
    consent: str | None = "email_consent"
    signup_date: str | None = "signup_date"
    phone_region: str = "ES"
    explicit: frozenset[str] = frozenset()  # keys written in the file (missing ones are optional)


@dataclass(frozen=True)
class OrdersInput:
    path: Path | None = None
    customer_id: str = "customer_id"
    date: str = "order_date"
    amount: str = "amount"
    channel: str | None = "channel"


@dataclass(frozen=True)
class EventsInput:
    path: Path | None = None
    customer_id: str = "customer_id"
    type: str = "event_type"
    timestamp: str = "occurred_at"
    channel: str | None = "channel"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    loc: Location
    sql: str | None = None  # a SQL expression, or
    event_types: tuple[str, ...] = ()  # a count of events of these types
    days: int | None = None  # in the last N days (all time when None)
    depends_on: tuple[str, ...] = ()  # other user features named in ``sql``
    description: str = ""


@dataclass(frozen=True)
class ClvSpec:
    """The ``clv:`` section: which model predicts value and churn, over how many months."""

    loc: Location
    model: str = "bgnbd"
    months: int = 12
    discount_rate: float = 0.0


@dataclass(frozen=True)
class RfmRule:
    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]


@dataclass(frozen=True)
class FunnelStage:
    stage: str
    when: Cond


@dataclass(frozen=True)
class Holdout:
    percent: float
    salt: str

    @property
    def basis_points(self) -> int:
        """The percent in hundredths: a customer is held out when its bucket (0..9999) is below this."""
        return round(self.percent * 100)


@dataclass(frozen=True)
class CampaignHoldout:
    name: str
    holdout: Holdout
    segments: tuple[str, ...]
    loc: Location


@dataclass(frozen=True)
class SegmentSpec:
    name: str
    when: Cond
    loc: Location
    index: int
    description: str = ""
    exclusive: str | None = None
    priority: int = 100
    holdout: Holdout | None = None
    columns: tuple[str, ...] = ()


DEFAULT_RFM: tuple[RfmRule, ...] = (
    RfmRule("champions", (4, 5), (4, 5), (1, 5)),
    RfmRule("loyal", (3, 3), (3, 5), (1, 5)),
    RfmRule("potential_loyalist", (4, 5), (2, 3), (1, 5)),
    RfmRule("new_customers", (5, 5), (1, 1), (1, 5)),
    RfmRule("promising", (4, 4), (1, 1), (1, 5)),
    RfmRule("need_attention", (3, 3), (1, 2), (1, 5)),
    RfmRule("cant_lose", (1, 1), (5, 5), (1, 5)),
    RfmRule("at_risk", (1, 2), (3, 5), (1, 5)),
    RfmRule("hibernating", (2, 2), (1, 2), (1, 5)),
    RfmRule("lost", (1, 1), (1, 2), (1, 5)),
)


@dataclass(frozen=True)
class SegmentsSpec:
    """Everything ``segments.yaml`` declares."""

    file: str
    segments: tuple[SegmentSpec, ...]
    features: tuple[FeatureSpec, ...] = ()  # in dependency order
    customers: CustomersInput = field(default_factory=CustomersInput)
    orders: OrdersInput = field(default_factory=OrdersInput)
    events: EventsInput = field(default_factory=EventsInput)
    as_of: date | None = None
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    decimal_comma: bool = True
    output_format: str | None = None
    output_columns: tuple[str, ...] = ()
    rfm: tuple[RfmRule, ...] = DEFAULT_RFM
    funnel: tuple[FunnelStage, ...] = ()
    funnel_default: str = "lead"
    salt: str = "crmtool"
    global_holdout: Holdout | None = None
    campaigns: tuple[CampaignHoldout, ...] = ()
    clv: ClvSpec | None = None

    def segment(self, name: str) -> SegmentSpec:
        for s in self.segments:
            if s.name == name:
                return s
        from crmtool.errors import UsageError

        raise UsageError(
            f"no segment named {name!r} in {self.file}",
            f"segments: {', '.join(s.name for s in self.segments)}",
        )

    @property
    def feature_names(self) -> list[str]:
        return [*BUILTIN_FEATURES, *(CLV_FEATURES if self.clv else ()), *(f.name for f in self.features)]

