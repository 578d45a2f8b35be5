"""Data-quality KPIs over time for the report: series, targets, expected ranges and anomalies.

:func:`kpi_series` is the one place the report asks for KPIs. Until the workspace has a KPI file
API (``crmtool.kpis``, with targets and anomaly settings from ``kpis.yaml``) it computes five
built-in KPIs from the run history with the default targets below, and flags anomalies as the
data-observability tools do: a point is anomalous when it leaves median ± 3 x 1.4826 x MAD of the
up to 28 points before it (once there are at least 7 of them). All of it is one SQL query with
window functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.workspace import Workspace

TRAIN, MIN_TRAIN, K = 28, 7, 3.0


@dataclass(frozen=True)
class BuiltinKpi:
    name: str
    label: str
    sql: str  # SELECT run_id, started_at, value over crm_runs / crm_rule_results
    target_min: float | None = None
    target_max: float | None = None


_SHARE = "CAST({num} AS DOUBLE) / nullif(CAST({den} AS DOUBLE), 0)"
BUILTIN: tuple[BuiltinKpi, ...] = (
    BuiltinKpi("checks_passed", "Checks passed (share of rule checks)", """
        SELECT run_id, any_value(u.started_at), 1 - sum(failed) / nullif(sum(checked), 0)
        FROM crm_rule_results r JOIN crm_runs u USING (run_id) WHERE {window} GROUP BY run_id""", 0.95),
    BuiltinKpi("rows_kept", "Rows kept by clean (share of rows in)", """
        SELECT run_id, started_at, """ + _SHARE.format(num="json_extract(summary, '$.counts.rows_out')",
                                                        den="json_extract(summary, '$.counts.rows_in')") + """
        FROM crm_runs WHERE command = 'clean' AND status IN ('pass', 'warn', 'fail') AND {window}""", 0.98),
    BuiltinKpi("mailable", "Mailable customers (share of rows kept)", """
        SELECT run_id, started_at, """ + _SHARE.format(num="json_extract(summary, '$.counts.mailable')",
                                                        den="json_extract(summary, '$.counts.rows_out')") + """
        FROM crm_runs
        WHERE command = 'clean' AND json_extract(summary, '$.counts.mailable') IS NOT NULL AND {window}"""),
    BuiltinKpi("valid_emails", "Valid email addresses (share of rows)", """
        SELECT run_id, started_at, """ + _SHARE.format(num="json_extract(summary, '$.by_status.valid.rows')",
                                                        den="json_extract(summary, '$.rows')") + """
        FROM crm_runs
        WHERE command = 'emails' AND json_extract(summary, '$.by_status') IS NOT NULL AND {window}""", 0.90),
    BuiltinKpi("duplicate_records", "Records in duplicate clusters (share)", """
        SELECT run_id, started_at, """ + _SHARE.format(num="json_extract(summary, '$.records_in_duplicate_clusters')",
                                                        den="json_extract(summary, '$.rows')") + """
        FROM crm_runs WHERE command = 'dedupe' AND status = 'pass' AND {window}""", None, 0.05),
)


@dataclass
class KpiSeries:
    """One KPI over time; ``points`` are (time, value, expected low, expected high, anomalous)."""

    name: str
    label: str
    target_min: float | None
    target_max: float | None
    points: list[tuple[datetime, float, float | None, float | None, bool]] = field(default_factory=list)
    percent: bool = True  # shares are drawn as percentages
    evaluated: Status | None = None  # the status crmtool.kpis gave, when it evaluated this KPI

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @property
    def status(self) -> Status:
        """fail when the latest value misses its target, warn when it is anomalous, else pass
        (or the status :mod:`crmtool.kpis` gave)."""
        if self.evaluated is not None:
            return self.evaluated
        if not self.points:
            return Status.PASS
        value, anomalous = self.points[-1][1], self.points[-1][4]
        if (self.target_min is not None and value < self.target_min) or \
                (self.target_max is not None and value > self.target_max):
            return Status.FAIL
        return Status.WARN if anomalous else Status.PASS

    @property
    def anomalies(self) -> int:
        return sum(1 for p in self.points if p[4])


def _window(since: datetime | None) -> str:
    return f"started_at >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}'" if since else "true"


def kpi_series(ws: Workspace, since: datetime | None, kpis_file: Path | None = None,
               now: datetime | None = None) -> list[KpiSeries]:
    """The KPIs to draw, each with its series (only KPIs with at least one point).

    With ``kpis_file`` the KPIs are those of the file, evaluated by :mod:`crmtool.kpis`.

    The anomaly check trains on the whole history, so the first points of the window are judged
    against the runs before it; only the points inside the window are drawn.
    """
    if kpis_file is not None:
        return _from_kpi_file(ws, since, kpis_file, now or datetime.now(UTC).replace(tzinfo=None))
    parts = [f"SELECT {i} AS kpi, * FROM ({k.sql.format(window='true')})" for i, k in enumerate(BUILTIN)]
    frame = f"PARTITION BY kpi ORDER BY t ROWS BETWEEN {TRAIN} PRECEDING AND 1 PRECEDING"
    rows: list[Any] = ws.con.execute(f"""
        WITH v AS (SELECT kpi, t, value FROM ({" UNION ALL ".join(parts)}) x(kpi, run_id, t, value)
                   WHERE value IS NOT NULL),
             s AS (SELECT kpi, t, value, count(*) OVER w AS n, median(value) OVER w AS med,
                          1.4826 * mad(value) OVER w AS spread FROM v WINDOW w AS ({frame}))
        SELECT kpi, t, value,
               CASE WHEN n >= {MIN_TRAIN} THEN med - {K} * spread END,
               CASE WHEN n >= {MIN_TRAIN} THEN med + {K} * spread END,
               n >= {MIN_TRAIN} AND abs(value - med) > {K} * spread
        FROM s WHERE {_window(since).replace('started_at', 't')} ORDER BY kpi, t""").fetchall()
    series = [KpiSeries(k.name, k.label, k.target_min, k.target_max) for k in BUILTIN]
    for kpi, t, value, low, high, anomalous in rows:
        series[kpi].points.append((t, float(value), low, high, bool(anomalous)))
    return [s for s in series if s.points]


def _from_kpi_file(ws: Workspace, since: datetime | None, kpis_file: Path, now: datetime) -> list[KpiSeries]:
    """The KPI file's KPIs as :mod:`crmtool.kpis` evaluates them (daily periods over the window)."""
    from crmtool.kpis import evaluate_kpis, load_kpis

    days = max(1, (now - since).days) if since else 3650
    report = evaluate_kpis(ws, load_kpis(kpis_file), since_days=days, by="day", now=now.replace(tzinfo=UTC))
    series = []
    for k in report.kpis:
        spec = k.spec
        low, high = k.expected if k.expected else (None, None)
        odd = set(k.anomalies)
        points = [(datetime.combine(d, time()), float(v), low, high, d in odd) for d, v in k.series if v is not None]
        if not points:
            continue
        values = [p[1] for p in points] + [t for t in (spec.target_min, spec.target_max) if t is not None]
        series.append(KpiSeries(spec.name, spec.description or spec.name, spec.target_min, spec.target_max, points,
                                percent=all(0 <= v <= 1 for v in values), evaluated=k.status))
    return series
