"""``kpis.yaml``: the KPIs that matter, each a target or allowed range and an anomaly check.

A KPI is a built-in metric (``metric: clean.reject_rate``, optionally with a ``dimension``), a
ratio of two metrics, or an aggregate SQL expression over one run's ``crm_metrics`` rows (user
SQL: vetted by :mod:`crmtool.usersql`). Every problem is reported as ``file:line``, all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmtool.errors import ConfigError, CrmToolError, Location
from crmtool.yamlspec import load_yaml, schema_problems

SCHEMA_ID = "https://crmtool.dev/schemas/kpis.schema.json"
AGGREGATES = ("last", "mean", "sum", "min", "max")
# columns a KPI's SQL may name: one run's metric rows joined to its run
SQL_COLUMNS = ("step", "name", "dimension", "value", "run_id", "command", "status")

_METRIC = {"type": "string", "pattern": r"^[a-z][a-z_ ]*\.[a-z][a-z0-9_]*$",
           "description": "step.metric, e.g. clean.reject_rate"}
_REF = {"type": "object", "additionalProperties": False, "required": ["metric"],
        "properties": {"metric": _METRIC, "dimension": {"type": "string"}}}
_BOUND = {"type": "number"}


def kpis_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "crmtool KPIs",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "kpis"],
        "properties": {
            "version": {"const": 1},
            "kpis": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "oneOf": [{"required": ["metric"]}, {"required": ["ratio"]}, {"required": ["sql"]}],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]*$",
                             "description": "a name: letters, digits, _ and -"},
                    "description": {"type": "string"},
                    "metric": _METRIC,
                    "dimension": {"type": "string"},
                    "ratio": {"type": "object", "additionalProperties": False,
                              "required": ["numerator", "denominator"],
                              "properties": {"numerator": _REF, "denominator": _REF}},
                    "sql": {"type": "string", "minLength": 1},
                    "aggregate": {"enum": list(AGGREGATES)},
                    "target": {"type": "object", "additionalProperties": False, "minProperties": 1,
                               "properties": {"min": _BOUND, "max": _BOUND}},
                    "anomaly": {"oneOf": [{"const": False}, {
                        "type": "object", "additionalProperties": False,
                        "properties": {"train": {"type": "integer", "minimum": 3, "maximum": 3650},
                                       "detect": {"type": "integer", "minimum": 1, "maximum": 365},
                                       "k": {"type": "number", "exclusiveMinimum": 0},
                                       "min_train": {"type": "integer", "minimum": 3},
                                       "tolerance": {"type": "number", "minimum": 0}}}]},
                },
            }},
        },
    }


@dataclass(frozen=True)
class MetricRef:
    step: str
    name: str
    dimension: str = ""

    def __str__(self) -> str:
        return f"{self.step}.{self.name}" + (f"[{self.dimension}]" if self.dimension else "")


@dataclass(frozen=True)
class Anomaly:
    """median ± max(k·1.4826·MAD, tolerance·|median|) of the ``train`` periods before the last ``detect`` ones."""

    train: int = 28
    detect: int = 1
    k: float = 3.0
    min_train: int = 7
    tolerance: float = 0.01  # the range is at least ± this share of the median (a flat history)


@dataclass(frozen=True)
class KpiSpec:
    name: str
    description: str
    metric: MetricRef | None
    numerator: MetricRef | None
    denominator: MetricRef | None
    sql: str | None
    aggregate: str
    target_min: float | None
    target_max: float | None
    anomaly: Anomaly | None
    loc: Location

    @property
    def source(self) -> str:
        if self.metric:
            return str(self.metric)
        if self.numerator and self.denominator:
            return f"{self.numerator} / {self.denominator}"
        return f"sql: {self.sql}"


@dataclass(frozen=True)
class KpiFile:
    file: Path
    kpis: tuple[KpiSpec, ...]


def _ref(raw: dict[str, Any], dimension: str = "") -> MetricRef:
    step, name = str(raw["metric"]).split(".", 1)
    return MetricRef(step, name, str(raw.get("dimension", dimension)))


def vet_sql(sql: str, location: str) -> str | None:
    """The one call point for a KPI's SQL: :func:`crmtool.usersql.check_expression` (it raises a
    configuration error naming ``location`` and the refused part). None when this build has no
    :mod:`crmtool.usersql`: then SQL KPIs are refused and built-in and ratio KPIs remain."""
    try:
        from crmtool.usersql import check_expression  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return str(check_expression(sql, columns=SQL_COLUMNS, location=location, aggregates=True))


def _sql_problems(sql: str, loc: Location) -> tuple[str | None, list[tuple[Location, str]]]:
    try:
        vetted = vet_sql(sql, str(loc))
    except ConfigError as exc:
        return None, list(exc.problems)
    except CrmToolError as exc:
        return None, [(loc, exc.message)]
    if vetted is None:
        return None, [(loc, "SQL KPIs need crmtool.usersql, which this build does not have; use a metric or a ratio")]
    return vetted, []


def load_kpis(path: Path) -> KpiFile:
    doc = load_yaml(path)
    problems = schema_problems(doc, kpis_schema())
    if problems:
        raise ConfigError(problems, "crmtool kpis --schema prints the JSON Schema of KPI files")
    out: list[KpiSpec] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(doc.data["kpis"]):
        loc = doc.loc(("kpis", i))
        name = str(raw["name"])
        if name in seen:
            problems.append((loc, f"KPI name '{name}' is used twice (first at line {seen[name]})"))
        seen[name] = loc.line
        sql = None
        if "sql" in raw:
            sql, found = _sql_problems(str(raw["sql"]), doc.loc(("kpis", i, "sql")))
            problems += found
        ratio = raw.get("ratio") or {}
        target = raw.get("target") or {}
        if "min" in target and "max" in target and target["min"] > target["max"]:
            problems.append((doc.loc(("kpis", i, "target")), "target: min is above max"))
        anomaly_raw = raw.get("anomaly", {})
        anomaly = None if anomaly_raw is False else Anomaly(**anomaly_raw)
        out.append(KpiSpec(
            name, str(raw.get("description", "")),
            _ref(raw) if "metric" in raw else None,
            _ref(ratio["numerator"]) if ratio else None, _ref(ratio["denominator"]) if ratio else None,
            sql, str(raw.get("aggregate", "last")), target.get("min"), target.get("max"), anomaly, loc))
    if problems:
        raise ConfigError(problems)
    return KpiFile(path, tuple(out))
