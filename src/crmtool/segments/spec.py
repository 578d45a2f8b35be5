"""``segments.yaml`` -> the frozen specs of :mod:`crmtool.segments.model`, every problem with its
``file:line`` (no DuckDB here).

The file declares inputs (column mappings of customers, orders, events), features (per-customer
values: ready-made ones plus event counts and SQL expressions), the RFM segment mapping, the
funnel stages, holdouts and the segments themselves. :func:`load_segments` validates the file
against :func:`crmtool.segments.schema.segments_schema`, then checks
what a schema cannot: duplicate names, features that name each other in a cycle, conditions
that name no known feature, holdouts over 100%.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from crmtool.errors import ConfigError, Location
from crmtool.segments.model import (
    BUILTIN_FEATURES,
    CLV_FEATURES,
    DEFAULT_DATE_FORMATS,
    DEFAULT_RFM,
    FEATURE_AGGREGATES,
    SEGMENT_MACROS,
    CampaignHoldout,
    ClvSpec,
    Cond,
    CustomersInput,
    EventsInput,
    FeatureSpec,
    FunnelStage,
    Holdout,
    OrdersInput,
    RfmRule,
    SegmentSpec,
    SegmentsSpec,
)
from crmtool.segments.schema import segments_schema
from crmtool.yamlspec import YamlDoc, load_yaml, parse_yaml_text, schema_problems

RELATIVE = re.compile(
    r"^\s*(?:last\s+)?(\d+)\s+(day|days|week|weeks|month|months|year|years)(\s+ago)?\s*$", re.I
)

Problems = list[tuple[Location, str]]

# -- parsing ----------------------------------------------------------------------------------

_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')


def sql_identifiers(sql: str) -> set[str]:
    """Identifiers named in a SQL expression (string literals skipped); used for dependencies."""
    text = _SQL_STRING.sub("''", sql)
    return {(m.group(1) or m.group(2)).replace('""', '"') for m in _IDENT.finditer(text)}


def _vetted(sql: str, loc: Location, what: str, problems: Problems, *,
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


def _cond(doc: YamlDoc, path: tuple[str | int, ...], raw: Any, problems: Problems) -> Cond:
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
    doc: YamlDoc, path: tuple[str | int, ...], h: Holdout, problems: Problems
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
    doc: YamlDoc, feats: dict[str, FeatureSpec], problems: Problems
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


def _input_path(base_dir: Path, section: dict[str, Any]) -> dict[str, Any]:
    out = dict(section)
    if "path" in out:
        out["path"] = (base_dir / out["path"]) if not Path(out["path"]).is_absolute() else Path(out["path"])
    return out


def _as_of(doc: YamlDoc, data: dict[str, Any], problems: Problems) -> date | None:
    if data.get("as_of") in (None, "today"):
        return None
    try:
        return date.fromisoformat(data["as_of"])
    except ValueError:
        problems.append((doc.loc(("as_of",)), f"as_of: not a valid date {data['as_of']!r}"))
        return None


def _features(doc: YamlDoc, data: dict[str, Any], problems: Problems) -> tuple[FeatureSpec, ...]:
    """User features in dependency order; built-in names refused."""
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
    return _order_features(doc, feats, problems)


def _rfm(doc: YamlDoc, data: dict[str, Any], problems: Problems) -> tuple[RfmRule, ...]:
    if "rfm" not in data or "segments" not in data["rfm"]:
        return DEFAULT_RFM
    rules = []
    for i, r in enumerate(data["rfm"]["segments"]):
        rule = RfmRule(r["name"], _range(r.get("r")), _range(r.get("f")), _range(r.get("m")))
        for axis, (lo, hi) in (("r", rule.r), ("f", rule.f), ("m", rule.m)):
            if lo > hi:
                problems.append((doc.loc(("rfm", "segments", i, axis)), f"range {lo}-{hi} is empty"))
        rules.append(rule)
    return tuple(rules)


def _funnel(doc: YamlDoc, data: dict[str, Any], problems: Problems) -> tuple[FunnelStage, ...]:
    if "funnel" not in data:
        return ()
    return tuple(
        FunnelStage(s["stage"], _cond(doc, ("funnel", "stages", i, "when"), s["when"], problems))
        for i, s in enumerate(data["funnel"]["stages"])
    )


def _segments(doc: YamlDoc, data: dict[str, Any], salt: str, problems: Problems) -> tuple[SegmentSpec, ...]:
    """The segments in file order; duplicate names and a priority without a group refused."""
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
    return tuple(segments)


def _campaigns(
    doc: YamlDoc, holdouts: dict[str, Any], salt: str, segment_names: set[str], problems: Problems
) -> tuple[CampaignHoldout, ...]:
    campaigns = []
    for cname, raw in holdouts.get("campaigns", {}).items():
        loc = doc.loc(("holdouts", "campaigns", cname))
        ho = _holdout(raw, salt)
        _check_percent(doc, ("holdouts", "campaigns", cname, "percent"), ho, problems)
        for j, sname in enumerate(raw["segments"]):
            if sname not in segment_names:
                problems.append(
                    (
                        doc.loc(("holdouts", "campaigns", cname, "segments", j)),
                        f"campaign '{cname}': unknown segment '{sname}'",
                    )
                )
        campaigns.append(CampaignHoldout(cname, ho, tuple(raw["segments"]), loc))
    return tuple(campaigns)


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
    as_of = _as_of(doc, data, problems)
    features = _features(doc, data, problems)
    rfm = _rfm(doc, data, problems)
    funnel = _funnel(doc, data, problems)

    h = data.get("holdouts", {})
    salt = str(h.get("salt", "crmtool"))
    global_holdout = _holdout(h["global"], salt) if "global" in h else None
    if global_holdout:
        _check_percent(doc, ("holdouts", "global"), global_holdout, problems)
    segments = _segments(doc, data, salt, problems)
    campaigns = _campaigns(doc, h, salt, {s.name for s in segments}, problems)

    # every 'field' must be a feature; a customer column is only known when the data is read:
    # those are checked again against the real columns in features.check_fields
    spec = SegmentsSpec(
        file=doc.file,
        segments=segments,
        features=features,
        customers=CustomersInput(**{k: v for k, v in c.items()}, explicit=frozenset(c)),
        orders=OrdersInput(**_input_path(base_dir, inputs.get("orders", {}))),
        events=EventsInput(**_input_path(base_dir, inputs.get("events", {}))),
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
        campaigns=campaigns,
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

