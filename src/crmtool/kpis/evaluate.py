"""KPI series from the run history, target checks and anomaly checks.

Series come from one SQL query per KPI over ``crm_metrics`` joined to ``crm_runs``. A pipeline's
steps are separate runs that point to the pipeline run (``parent_run_id``), so a ratio of two
steps' metrics is taken within one pipeline run. Runs that ended in ``error`` or were aborted
are left out (their metrics are incomplete). Each period (day, week, month) takes the last
value by default (``aggregate``). The anomaly check: see docs/decisions/0009-runs-kpi-anomalies.md.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmtool.errors import UsageError
from crmtool.kpis.spec import KpiFile, KpiSpec, MetricRef
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.workspace import Workspace

PERIODS = {"day": 1, "week": 7, "month": 31}
MAD_SCALE = 1.4826  # makes the MAD comparable with a standard deviation for normal data
_AGG = {"last": "arg_max(value, t)", "mean": "avg(value)", "sum": "sum(value)", "min": "min(value)",
        "max": "max(value)"}


@dataclass
class KpiResult:
    spec: KpiSpec
    series: list[tuple[date, float | None]]  # shown window, oldest first
    latest: float | None
    status: Status
    on_target: bool | None = None
    expected: tuple[float, float] | None = None
    anomalies: list[date] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def as_dict(self) -> dict[str, Any]:
        s = self.spec
        return {"name": s.name, "source": s.source, "status": self.status.value, "latest": self.latest,
                "target": {"min": s.target_min, "max": s.target_max} if (s.target_min is not None
                                                                         or s.target_max is not None) else None,
                "on_target": self.on_target,
                "expected": list(self.expected) if self.expected else None,
                "anomalies": [d.isoformat() for d in self.anomalies], "notes": self.notes,
                "series": [{"period": d.isoformat(), "value": v} for d, v in self.series]}


@dataclass
class KpiReport:
    file: str
    since: date
    by: str
    kpis: list[KpiResult]
    run_id: str | None = None

    @property
    def status(self) -> Status:
        if any(k.status is Status.FAIL for k in self.kpis):
            return Status.FAIL
        return Status.WARN if any(k.status is Status.WARN for k in self.kpis) else Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kpis_file": self.file, "since": self.since.isoformat(), "by": self.by,
                "status": self.status.value, "kpis": [k.as_dict() for k in self.kpis]}


def parse_since(text: str) -> int:
    """``90d``, ``12w``, ``6m`` (30-day months) or a plain number of days -> days."""
    t = text.strip().lower()
    units = {"d": 1, "w": 7, "m": 30, "y": 365}
    try:
        return int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)
    except ValueError:
        raise UsageError(f"--since {text!r} is not a period", "write it as 90d, 12w or 6m") from None


def _ref_sql(alias: str, ref: MetricRef) -> str:
    from crmtool.sqltext import sql_str

    return (f"{alias} AS (SELECT g, max(t) AS t, arg_max(value, t) AS value FROM __kpi_m "
            f"WHERE step = {sql_str(ref.step)} AND name = {sql_str(ref.name)} "
            f"AND dimension = {sql_str(ref.dimension)} GROUP BY g)")


def _per_run_sql(spec: KpiSpec) -> str:
    if spec.metric is not None:
        return f"WITH {_ref_sql('a', spec.metric)} SELECT g, t, value FROM a"
    if spec.numerator is not None and spec.denominator is not None:
        return (f"WITH {_ref_sql('n', spec.numerator)}, {_ref_sql('d', spec.denominator)} "
                "SELECT g, greatest(n.t, d.t) AS t, n.value / nullif(d.value, 0) AS value FROM n JOIN d USING (g)")
    return f"SELECT g, max(t) AS t, CAST(({spec.sql}) AS DOUBLE) AS value FROM __kpi_m GROUP BY g"


def _series(ws: Workspace, spec: KpiSpec, start: datetime, by: str) -> list[tuple[date, float | None]]:
    rows = ws.con.execute(
        f"SELECT CAST(date_trunc('{by}', t) AS DATE) AS period, {_AGG[spec.aggregate]} AS v "
        f"FROM ({_per_run_sql(spec)}) WHERE t >= ? GROUP BY 1 ORDER BY 1", [start.replace(tzinfo=None)]
    ).fetchall()
    return [(p, None if v is None else float(v)) for p, v in rows]


def _check(result: KpiResult, history: list[tuple[date, float | None]]) -> None:
    spec = result.spec
    if result.latest is not None:
        low_ok = spec.target_min is None or result.latest >= spec.target_min
        high_ok = spec.target_max is None or result.latest <= spec.target_max
        if spec.target_min is not None or spec.target_max is not None:
            result.on_target = low_ok and high_ok
    a = spec.anomaly
    values = [(d, v) for d, v in history if v is not None]
    if a is not None and values:
        detect, train = values[-a.detect:], values[:-a.detect][-a.train:]
        if len(train) < a.min_train:
            result.notes.append(f"anomaly check needs {a.min_train} earlier periods, has {len(train)}")
        else:
            xs = [v for _d, v in train]
            med = statistics.median(xs)
            spread = max(a.k * MAD_SCALE * statistics.median(abs(x - med) for x in xs), a.tolerance * abs(med))
            result.expected = (round(med - spread, 6), round(med + spread, 6))
            result.anomalies = [d for d, v in detect if not (med - spread - 1e-12 <= v <= med + spread + 1e-12)]
    if result.latest is None:
        result.status = Status.WARN
        result.notes.append("no data in the window")
    elif result.on_target is False or result.anomalies:
        result.status = Status.FAIL
    else:
        result.status = Status.PASS


def evaluate_kpis(ws: Workspace, spec: KpiFile, *, since_days: int = 90, by: str = "day",
                  now: datetime | None = None) -> KpiReport:
    """Every KPI's series over the last ``since_days``, its status against target and history."""
    if by not in PERIODS:
        raise UsageError(f"--by {by!r}: expected day, week or month")
    now = now or datetime.now(UTC)
    since = now - timedelta(days=since_days)
    need = max((k.anomaly.train + k.anomaly.detect) * PERIODS[by] for k in spec.kpis if k.anomaly) \
        if any(k.anomaly for k in spec.kpis) else 0
    start = min(since, now - timedelta(days=need))
    con = ws.con
    con.execute("""CREATE OR REPLACE TEMP TABLE __kpi_m AS
        SELECT coalesce(r.parent_run_id, r.run_id) AS g, r.started_at AS t, m.step, m.name, m.dimension, m.value,
               r.run_id, r.command, r.status
        FROM crm_metrics m JOIN crm_runs r USING (run_id)
        WHERE r.started_at >= ? AND r.started_at <= ? AND r.status IN ('pass', 'warn', 'fail')""",
                [start.replace(tzinfo=None), now.replace(tzinfo=None)])
    try:
        results = []
        for k in spec.kpis:
            history = _series(ws, k, start, by)
            shown = [(d, v) for d, v in history if d + timedelta(days=PERIODS[by] - 1) > since.date()]
            latest = next((v for _d, v in reversed(history) if v is not None), None)
            result = KpiResult(k, shown, latest, Status.PASS)
            _check(result, history)
            results.append(result)
    finally:
        con.execute("DROP TABLE IF EXISTS __kpi_m")
    return KpiReport(str(spec.file), since.date(), by, results)


def run_kpis(ws: Workspace, spec: KpiFile, *, since_days: int = 90, by: str = "day") -> KpiReport:
    """:func:`evaluate_kpis` as a recorded step (``kpis`` in ``crm_runs``): each KPI's latest value
    becomes a metric (``kpi_value``, the KPI's name as dimension), so the report reads them too."""
    run = ws.start_run("kpis")
    report = evaluate_kpis(ws, spec, since_days=since_days, by=by)
    run.step.input(spec.file)
    run.step.metric("kpis", len(report.kpis))
    run.step.metric("kpis_failing", sum(1 for k in report.kpis if k.status is Status.FAIL))
    for k in report.kpis:
        run.step.metric("kpi_value", k.latest, k.name)
    ws.finish_run(run, report.status, report.status.exit_code,
                  {"kpis_file": str(spec.file), "since": report.since.isoformat(), "by": by,
                   "failing": [k.name for k in report.kpis if k.status is Status.FAIL]})
    report.run_id = run.run_id
    return report
