"""``segments.yaml`` -> frozen specs (no DuckDB here), every problem with its ``file:line``.

The file declares inputs (column mappings of customers, orders, events), features (per-customer
values: ready-made ones plus event counts and SQL expressions), the RFM segment mapping, the
funnel stages, holdouts and the segments themselves. :func:`load_segments` validates the file
against :func:`segments_schema` (published by ``crmtool rules schema segments``), then checks
what a schema cannot: duplicate names, features that name each other in a cycle, conditions
that name no known feature, holdouts over 100%.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from crmtool.errors import ConfigError, Location
from crmtool.yamlspec import YamlDoc, load_yaml, parse_yaml_text, schema_problems

SCHEMA_ID = "https://crmtool.dev/schemas/segments.schema.json"
NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SEGMENT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"

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
RELATIVE = re.compile(
    r"^\s*(?:last\s+)?(\d+)\s+(day|days|week|weeks|month|months|year|years)(\s+ago)?\s*$", re.I
)
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M")

# -- the schema -------------------------------------------------------------------------------

_SCALAR = {"type": ["string", "number", "boolean"]}
_RANGE = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 5},
        {"type": "string", "pattern": r"^\s*[1-5]\s*(-\s*[1-5]\s*)?$"},
    ],
    "description": "a score (4) or an inclusive range ('3-5')",
}
_PERCENT = {
    "type": "number",
    "exclusiveMinimum": 0,
    "description": "share of customers in percent (0-100, two decimals)",
}


def _condition_schema() -> dict[str, Any]:
    ref = {"$ref": "#/$defs/condition"}
    compare_props: dict[str, Any] = {"field": {"type": "string", "minLength": 1}}
    for op in COMPARISONS:
        compare_props[op] = _SCALAR
    compare_props.update(
        {
            "in": {"type": "array", "items": _SCALAR, "minItems": 1},
            "not_in": {"type": "array", "items": _SCALAR, "minItems": 1},
            "between": {"type": "array", "items": _SCALAR, "minItems": 2, "maxItems": 2},
            "is_null": {"type": "boolean"},
            "within": {"type": "string", "description": "'last 30 days' (also weeks, months, years)"},
            "not_within": {"type": "string"},
            "before": {"type": "string", "description": "a date, 'today', 'as_of' or '90 days ago'"},
            "after": {"type": "string"},
        }
    )
    return {
        "description": "all / any / not, a comparison {field: X, <op>: value}, {sql: ...} or a SQL string",
        "oneOf": [
            {"type": "string", "minLength": 1, "description": "raw SQL boolean expression"},
            {
                "type": "object",
                "required": ["all"],
                "additionalProperties": False,
                "properties": {"all": {"type": "array", "items": ref, "minItems": 1}},
            },
            {
                "type": "object",
                "required": ["any"],
                "additionalProperties": False,
                "properties": {"any": {"type": "array", "items": ref, "minItems": 1}},
            },
            {
                "type": "object",
                "required": ["not"],
                "additionalProperties": False,
                "properties": {"not": ref},
            },
            {
                "type": "object",
                "required": ["sql"],
                "additionalProperties": False,
                "properties": {"sql": {"type": "string", "minLength": 1}},
            },
            {
                "type": "object",
                "required": ["field"],
                "additionalProperties": False,
                "properties": compare_props,
                "minProperties": 2,
                "maxProperties": 2,
            },
        ],
    }


def segments_schema() -> dict[str, Any]:
    """The JSON Schema of ``segments.yaml`` (for editors and ``crmtool rules schema segments``)."""
    col = {"type": "string", "minLength": 1}
    holdout = {
        "oneOf": [
            _PERCENT,
            {
                "type": "object",
                "required": ["percent"],
                "additionalProperties": False,
                "properties": {"percent": _PERCENT, "salt": {"type": "string"}},
            },
        ]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "crmtool segments file",
        "type": "object",
        "additionalProperties": False,
        "required": ["segments"],
        "$defs": {"condition": _condition_schema()},
        "properties": {
            "version": {"const": 1},
            "as_of": {
                "type": ["string", "null"],
                "pattern": r"^(today|\d{4}-\d{2}-\d{2})$",
                "description": "reference date (ISO) or 'today' (default); --as-of overrides",
            },
            "inputs": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "customers": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "id": col,
                            "email": col,
                            "phone": col,
                            "consent": {"type": ["string", "null"]},
                            "signup_date": col,
                            "phone_region": {"type": "string", "pattern": "^[A-Z]{2}$"},
                        },
                    },
                    "orders": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "path": col,
                            "customer_id": col,
                            "date": col,
                            "amount": col,
                            "channel": col,
                        },
                    },
                    "events": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "path": col,
                            "customer_id": col,
                            "type": col,
                            "timestamp": col,
                            "channel": col,
                        },
                    },
                    "date_formats": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "decimal_comma": {
                        "type": "boolean",
                        "description": "amounts like 1.234,56 (default true)",
                    },
                },
            },
            "output": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "format": {"enum": ["csv", "parquet"]},
                    "columns": {
                        "type": "array",
                        "items": col,
                        "minItems": 1,
                        "description": "customer columns or features in each send list",
                    },
                },
            },
            "features": {
                "type": "object",
                "propertyNames": {"pattern": NAME},
                "additionalProperties": {
                    "oneOf": [
                        {"type": "string", "minLength": 1, "description": "SQL expression"},
                        {
                            "type": "object",
                            "required": ["sql"],
                            "additionalProperties": False,
                            "properties": {
                                "sql": {"type": "string", "minLength": 1},
                                "description": {"type": "string"},
                            },
                        },
                        {
                            "type": "object",
                            "required": ["events"],
                            "additionalProperties": False,
                            "properties": {
                                "events": {"oneOf": [col, {"type": "array", "items": col, "minItems": 1}]},
                                "days": {"type": "integer", "minimum": 1},
                                "description": {"type": "string"},
                            },
                        },
                    ],
                },
            },
            "rfm": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "segments": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "pattern": NAME},
                                "r": _RANGE,
                                "f": _RANGE,
                                "m": _RANGE,
                            },
                        },
                    }
                },
            },
            "funnel": {
                "type": "object",
                "additionalProperties": False,
                "required": ["stages"],
                "properties": {
                    "stages": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["stage", "when"],
                            "additionalProperties": False,
                            "properties": {
                                "stage": {"type": "string", "pattern": NAME},
                                "when": {"$ref": "#/$defs/condition"},
                            },
                        },
                    },
                    "default": {"type": "string", "pattern": NAME},
                },
            },
            "clv": {
                "type": "object",
                "additionalProperties": False,
                "description": "customer value features: clv_historical, clv_predicted, churn_probability",
                "properties": {
                    "model": {"enum": list(CLV_MODELS),
                              "description": "bgnbd (needs the optional 'clv' extra) or historical only"},
                    "months": {"type": "integer", "minimum": 1, "description": "horizon of clv_predicted"},
                    "discount_rate": {"type": "number", "minimum": 0, "maximum": 1,
                                      "description": "monthly discount rate of future value"},
                },
            },
            "holdouts": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "salt": {"type": "string", "minLength": 1},
                    "global": holdout,
                    "campaigns": {
                        "type": "object",
                        "propertyNames": {"pattern": NAME},
                        "additionalProperties": {
                            "type": "object",
                            "required": ["percent", "segments"],
                            "additionalProperties": False,
                            "properties": {
                                "percent": _PERCENT,
                                "salt": {"type": "string"},
                                "segments": {"type": "array", "items": col, "minItems": 1},
                            },
                        },
                    },
                },
            },
            "segments": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "when"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "pattern": SEGMENT_NAME},
                        "description": {"type": "string"},
                        "when": {"$ref": "#/$defs/condition"},
                        "exclusive": {
                            "type": "string",
                            "pattern": NAME,
                            "description": "group: a customer lands only in its highest-priority segment",
                        },
                        "priority": {"type": "integer", "description": "1 is highest; ties go to file order"},
                        "holdout": holdout,
                        "columns": {"type": "array", "items": col, "minItems": 1},
                    },
                },
            },
        },
    }


# -- the specs --------------------------------------------------------------------------------


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


# -- parsing ----------------------------------------------------------------------------------

_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')


def sql_identifiers(sql: str) -> set[str]:
    """Identifiers named in a SQL expression (string literals skipped); used for dependencies."""
    text = _SQL_STRING.sub("''", sql)
    return {(m.group(1) or m.group(2)).replace('""', '"') for m in _IDENT.finditer(text)}


#: a feature may use window functions (a rank over all customers, say); a condition may not
FEATURE_AGGREGATES = True
#: macros crmtool defines for user SQL in segments (features.register_macros)
SEGMENT_MACROS = ("seg_date", "seg_num")


def _vetted(sql: str, loc: Location, what: str, problems: list[tuple[Location, str]], *,
            aggregates: bool = False, columns: list[str] | None = None) -> str:
    """User SQL vetted by :mod:`crmtool.usersql`: one expression from the allowed functions; the
    columns are checked again when the features table is built (its columns are known then)."""
    from crmtool.usersql import expression_problems

    vetted, found = expression_problems(sql, columns=columns, aggregates=aggregates, functions=SEGMENT_MACROS)
    problems.extend((loc, f"{what}: {p}") for p in found)
    return vetted if vetted is not None else sql


def _range(raw: Any) -> tuple[int, int]:
    if raw is None:
        return (1, 5)
    if isinstance(raw, int):
        return (raw, raw)
    parts = [int(p) for p in str(raw).split("-")]
    return (parts[0], parts[-1])


def parse_relative(text: str) -> tuple[int, str] | None:
    """``last 30 days`` / ``90 days ago`` -> (30, 'day'); ``None`` when not relative."""
    m = RELATIVE.match(text)
    if not m:
        return None
    unit = m.group(2).lower().rstrip("s")
    return int(m.group(1)), unit


def _cond(doc: YamlDoc, path: tuple[str | int, ...], raw: Any, problems: list[tuple[Location, str]]) -> Cond:
    loc = doc.loc(path)
    if isinstance(raw, str):
        return Cond("sql", loc, sql=_vetted(raw, loc, "condition", problems))
    if "all" in raw or "any" in raw:
        op = "all" if "all" in raw else "any"
        return Cond(op, loc, tuple(_cond(doc, (*path, op, i), c, problems) for i, c in enumerate(raw[op])))
    if "not" in raw:
        return Cond("not", loc, (_cond(doc, (*path, "not"), raw["not"], problems),))
    if "sql" in raw:
        return Cond("sql", loc, sql=_vetted(raw["sql"], doc.loc((*path, "sql")), "condition", problems))
    op = next(k for k in raw if k != "field")
    value = raw[op]
    if (
        op == "between"
        and isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and value[0] > value[1]
    ):
        problems.append(
            (doc.loc((*path, op)), f"between: lower bound {value[0]} is above upper bound {value[1]}")
        )
    if op in ("within", "not_within") and parse_relative(str(value)) is None:
        problems.append(
            (doc.loc((*path, op)), f"{op}: expected 'last N days|weeks|months|years', got {value!r}")
        )
    return Cond(op, loc, field=raw["field"], value=tuple(value) if isinstance(value, list) else value)


def _cond_fields(cond: Cond) -> list[tuple[str, Location]]:
    out = [(cond.field, cond.loc)] if cond.field else []
    for child in cond.children:
        out.extend(_cond_fields(child))
    return out


def _holdout(raw: Any, salt: str) -> Holdout:
    if isinstance(raw, dict):
        return Holdout(float(raw["percent"]), str(raw.get("salt", salt)))
    return Holdout(float(raw), salt)


def _check_percent(
    doc: YamlDoc, path: tuple[str | int, ...], h: Holdout, problems: list[tuple[Location, str]]
) -> None:
    if h.percent > 100:
        problems.append((doc.loc(path), f"holdout {h.percent:g}% is over 100%"))
    elif round(h.percent * 100) != h.percent * 100 and abs(round(h.percent * 100) - h.percent * 100) > 1e-6:
        problems.append((doc.loc(path), f"holdout {h.percent}%: at most two decimals (buckets are 0.01%)"))


def _clv(doc: YamlDoc, data: dict[str, Any]) -> ClvSpec | None:
    if "clv" not in data:
        return None
    raw = data["clv"] or {}
    return ClvSpec(doc.loc(("clv",)), str(raw.get("model", "bgnbd")), int(raw.get("months", 12)),
                   float(raw.get("discount_rate", 0.0)))


def _order_features(
    doc: YamlDoc, feats: dict[str, FeatureSpec], problems: list[tuple[Location, str]]
) -> tuple[FeatureSpec, ...]:
    """Topological order of user features; cycles reported with the path and lines."""
    order: list[FeatureSpec] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*stack[stack.index(name) :], name]
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                problems.append((feats[name].loc, "cycle between features: " + " -> ".join(cycle)))
            return
        state[name] = 1
        for dep in feats[name].depends_on:
            visit(dep, [*stack, name])
        state[name] = 2
        order.append(feats[name])

    for name in sorted(feats, key=lambda n: feats[n].loc.line):
        visit(name, [])
    return tuple(order)


def spec_from_doc(doc: YamlDoc, base_dir: Path | None = None) -> SegmentsSpec:
    """Validate a parsed document and build the spec; one :class:`ConfigError` lists every problem."""
    hint = "see 'crmtool rules schema segments' and the segments reference in the README"
    if not isinstance(doc.data, dict):
        raise ConfigError([(doc.loc(), "expected a mapping with a 'segments' list at the top level")], hint)
    problems = schema_problems(doc, segments_schema())
    if problems:
        raise ConfigError(problems, hint)
    data: dict[str, Any] = doc.data
    base_dir = base_dir or Path(doc.file).resolve().parent

    inputs = data.get("inputs", {})
    c = inputs.get("customers", {})
    customers = CustomersInput(**{k: v for k, v in c.items()}, explicit=frozenset(c))
    o = dict(inputs.get("orders", {}))
    if "path" in o:
        o["path"] = (base_dir / o["path"]) if not Path(o["path"]).is_absolute() else Path(o["path"])
    e = dict(inputs.get("events", {}))
    if "path" in e:
        e["path"] = (base_dir / e["path"]) if not Path(e["path"]).is_absolute() else Path(e["path"])
    orders, events = OrdersInput(**o), EventsInput(**e)

    as_of = None
    if data.get("as_of") not in (None, "today"):
        try:
            as_of = date.fromisoformat(data["as_of"])
        except ValueError:
            problems.append((doc.loc(("as_of",)), f"as_of: not a valid date {data['as_of']!r}"))

    # features
    raw_feats: dict[str, Any] = data.get("features", {})
    feats: dict[str, FeatureSpec] = {}
    for name, raw in raw_feats.items():
        loc = doc.loc(("features", name))
        if name in BUILTIN_FEATURES or (name in CLV_FEATURES and "clv" in data):
            problems.append((loc, f"feature '{name}' is built in; pick another name"))
            continue
        if isinstance(raw, str) or "sql" in raw:
            sql = raw if isinstance(raw, str) else raw["sql"]
            deps = tuple(sorted(sql_identifiers(sql) & set(raw_feats)))
            where = loc if isinstance(raw, str) else doc.loc(("features", name, "sql"))
            feats[name] = FeatureSpec(
                name,
                loc,
                sql=_vetted(sql, where, f"feature '{name}'", problems, aggregates=FEATURE_AGGREGATES),
                depends_on=deps,
                description="" if isinstance(raw, str) else raw.get("description", ""),
            )
        else:
            types = raw["events"] if isinstance(raw["events"], list) else [raw["events"]]
            feats[name] = FeatureSpec(
                name,
                loc,
                event_types=tuple(types),
                days=raw.get("days"),
                description=raw.get("description", ""),
            )
    ordered = _order_features(doc, feats, problems)

    rfm = DEFAULT_RFM
    if "rfm" in data and "segments" in data["rfm"]:
        rules = []
        for i, r in enumerate(data["rfm"]["segments"]):
            rule = RfmRule(r["name"], _range(r.get("r")), _range(r.get("f")), _range(r.get("m")))
            for axis, (lo, hi) in (("r", rule.r), ("f", rule.f), ("m", rule.m)):
                if lo > hi:
                    problems.append((doc.loc(("rfm", "segments", i, axis)), f"range {lo}-{hi} is empty"))
            rules.append(rule)
        rfm = tuple(rules)

    funnel: tuple[FunnelStage, ...] = ()
    if "funnel" in data:
        funnel = tuple(
            FunnelStage(s["stage"], _cond(doc, ("funnel", "stages", i, "when"), s["when"], problems))
            for i, s in enumerate(data["funnel"]["stages"])
        )

    h = data.get("holdouts", {})
    salt = str(h.get("salt", "crmtool"))
    global_holdout = _holdout(h["global"], salt) if "global" in h else None
    if global_holdout:
        _check_percent(doc, ("holdouts", "global"), global_holdout, problems)

    segments: list[SegmentSpec] = []
    seen: dict[str, Location] = {}
    for i, raw in enumerate(data["segments"]):
        loc = doc.loc(("segments", i))
        name = raw["name"]
        if name in seen:
            problems.append(
                (doc.loc(("segments", i, "name")), f"segment name '{name}' already used at {seen[name]}")
            )
        seen.setdefault(name, loc)
        holdout = _holdout(raw["holdout"], salt) if "holdout" in raw else None
        if holdout:
            _check_percent(doc, ("segments", i, "holdout"), holdout, problems)
        if "priority" in raw and "exclusive" not in raw:
            problems.append(
                (
                    doc.loc(("segments", i, "priority")),
                    f"segment '{name}': priority only matters with an exclusive group",
                )
            )
        segments.append(
            SegmentSpec(
                name,
                _cond(doc, ("segments", i, "when"), raw["when"], problems),
                loc,
                i,
                raw.get("description", ""),
                raw.get("exclusive"),
                int(raw.get("priority", 100)),
                holdout,
                tuple(raw.get("columns", ())),
            )
        )

    campaigns = []
    for cname, raw in h.get("campaigns", {}).items():
        loc = doc.loc(("holdouts", "campaigns", cname))
        ho = _holdout(raw, salt)
        _check_percent(doc, ("holdouts", "campaigns", cname, "percent"), ho, problems)
        for j, sname in enumerate(raw["segments"]):
            if sname not in seen:
                problems.append(
                    (
                        doc.loc(("holdouts", "campaigns", cname, "segments", j)),
                        f"campaign '{cname}': unknown segment '{sname}'",
                    )
                )
        campaigns.append(CampaignHoldout(cname, ho, tuple(raw["segments"]), loc))

    # every 'field' must be a feature; a customer column is only known when the data is read:
    # those are checked again against the real columns in features.check_fields
    spec = SegmentsSpec(
        file=doc.file,
        segments=tuple(segments),
        features=ordered,
        customers=customers,
        orders=orders,
        events=events,
        as_of=as_of,
        date_formats=tuple(inputs.get("date_formats", DEFAULT_DATE_FORMATS)),
        decimal_comma=bool(inputs.get("decimal_comma", True)),
        output_format=data.get("output", {}).get("format"),
        output_columns=tuple(data.get("output", {}).get("columns", ())),
        rfm=rfm,
        funnel=funnel,
        funnel_default=data.get("funnel", {}).get("default", "lead"),
        salt=salt,
        global_holdout=global_holdout,
        campaigns=tuple(campaigns),
        clv=_clv(doc, data),
    )
    if problems:
        raise ConfigError(problems, hint)
    return spec


def condition_fields(spec: SegmentsSpec) -> list[tuple[str, Location]]:
    """Every ``field`` named by a segment or funnel condition, with its place."""
    out: list[tuple[str, Location]] = []
    for stage in spec.funnel:
        out.extend(_cond_fields(stage.when))
    for seg in spec.segments:
        out.extend(_cond_fields(seg.when))
    return out


def load_segments(path: Path) -> SegmentsSpec:
    """Read and validate ``segments.yaml``."""
    return spec_from_doc(load_yaml(path), path.resolve().parent)


def parse_segments_text(text: str, file: str = "segments.yaml", base_dir: Path | None = None) -> SegmentsSpec:
    """Same as :func:`load_segments` from text (tests, editors)."""
    return spec_from_doc(parse_yaml_text(text, file), base_dir or Path.cwd())
