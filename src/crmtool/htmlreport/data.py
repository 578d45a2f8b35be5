"""What the report shows, read from the workspace's history tables as small aggregates.

Every query here returns counts, shares, rule, segment, campaign and column names: never a
customer value or key. Tables another feature creates (segment history, dedupe records,
campaign metrics) may be absent; their section is then empty and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.htmlreport.kpi import KpiSeries, kpi_series

if TYPE_CHECKING:
    from crmtool.workspace import Workspace

Rows = list[tuple[Any, ...]]


@dataclass
class ReportData:
    """Everything the page draws; each list holds plain tuples ready for a chart."""

    generated_at: datetime
    since: datetime | None
    runs: Rows = field(default_factory=list)  # (command, status, runs, last started_at)
    kpis: list[KpiSeries] = field(default_factory=list)
    email_mix: Rows = field(default_factory=list)  # (run started_at, status, rows)
    cluster_sizes: Rows = field(default_factory=list)  # (cluster size, clusters)
    segment_sizes: Rows = field(default_factory=list)  # (as_of, run_id, segment, members, send)
    segment_flows: Rows = field(default_factory=list)  # (segment, entered, exited) latest run vs previous
    segment_flow_runs: tuple[str, str] | None = None  # (previous as_of, latest as_of)
    failing_rules: Rows = field(default_factory=list)  # (rule, severity, failed in latest run, runs failing)
    diffs: Rows = field(default_factory=list)  # (started_at, added, removed, changed)
    campaigns: Rows = field(default_factory=list)  # (campaign, arm, customers, conversion, uplift, low, high)

    @property
    def empty(self) -> bool:
        return not self.runs


def _since_sql(since: datetime | None, column: str = "started_at") -> str:
    return f"{column} >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}'" if since else "true"


def collect(ws: Workspace, since: datetime | None, now: datetime, kpis_file: Path | None = None) -> ReportData:
    """Read every section of the report (each one SQL query over the history tables); the KPIs
    of ``kpis_file`` when given, else the built-in ones."""
    data = ReportData(now, since)
    con = ws.con
    window = _since_sql(since)
    data.runs = con.execute(f"""
        SELECT command, coalesce(status, 'running'), count(*), max(started_at) FROM crm_runs
        WHERE command <> 'report' AND {window} GROUP BY ALL ORDER BY command, 2""").fetchall()
    if data.empty:
        return data
    data.kpis = kpi_series(ws, since, kpis_file, now)
    data.email_mix = con.execute(f"""
        SELECT started_at, s.key, CAST(json_extract(s.value, '$.rows') AS BIGINT)
        FROM crm_runs, json_each(json_extract(summary, '$.by_status')) s
        WHERE command = 'emails' AND status IN ('ok', 'pass', 'warn', 'fail') AND {window}
        ORDER BY started_at, s.key""").fetchall()
    data.failing_rules = con.execute(f"""
        WITH r AS (SELECT x.*, u.started_at FROM crm_rule_results x JOIN crm_runs u USING (run_id) WHERE {window}),
             latest AS (SELECT run_id FROM r ORDER BY started_at DESC LIMIT 1)
        SELECT rule, any_value(severity), sum(failed) FILTER (WHERE run_id IN (SELECT run_id FROM latest)),
               count(DISTINCT run_id) FILTER (WHERE failed > 0)
        FROM r GROUP BY rule HAVING sum(failed) > 0
        ORDER BY 3 DESC NULLS LAST, 4 DESC, rule LIMIT 12""").fetchall()
    data.diffs = con.execute(f"""
        SELECT u.started_at, max(value) FILTER (WHERE name = 'added'), max(value) FILTER (WHERE name = 'removed'),
               max(value) FILTER (WHERE name = 'changed')
        FROM crm_metrics m JOIN crm_runs u USING (run_id)
        WHERE m.step = 'diff' AND m.dimension = '' AND {window.replace('started_at', 'u.started_at')}
        GROUP BY u.run_id, u.started_at ORDER BY u.started_at""").fetchall()
    if ws.table_exists("dedupe_records"):
        data.cluster_sizes = con.execute("""
            SELECT size, count(*) FROM (SELECT cluster_id, count(*) AS size FROM dedupe_records GROUP BY 1)
            WHERE size > 1 GROUP BY 1 ORDER BY 1""").fetchall()
    if ws.table_exists("segments_runs") and ws.table_exists("segments_membership"):
        _segments(ws, data, since)
    data.campaigns = _campaigns(ws, since)
    return data


def _segments(ws: Workspace, data: ReportData, since: datetime | None) -> None:
    con = ws.con
    window = _since_sql(since, "recorded_at")
    data.segment_sizes = con.execute(f"""
        SELECT r.as_of, r.run_id, m.segment, count(DISTINCT m.customer_id),
               count(DISTINCT m.customer_id) FILTER (WHERE m.status = 'send')
        FROM segments_runs r JOIN segments_membership m USING (run_id)
        WHERE {window} GROUP BY ALL ORDER BY r.as_of, r.run_id, m.segment""").fetchall()
    last_two = con.execute(f"""SELECT run_id, as_of FROM segments_runs WHERE {window}
                               ORDER BY recorded_at DESC LIMIT 2""").fetchall()
    if len(last_two) < 2:
        return
    (cur, cur_as_of), (prev, prev_as_of) = last_two
    data.segment_flow_runs = (str(prev_as_of), str(cur_as_of))
    data.segment_flows = con.execute("""
        WITH c AS (SELECT DISTINCT segment, customer_id FROM segments_membership WHERE run_id = ?),
             p AS (SELECT DISTINCT segment, customer_id FROM segments_membership WHERE run_id = ?)
        SELECT segment, count(*) FILTER (WHERE p.customer_id IS NULL), count(*) FILTER (WHERE c.customer_id IS NULL)
        FROM c FULL OUTER JOIN p USING (segment, customer_id)
        GROUP BY segment ORDER BY segment""", [cur, prev]).fetchall()


def _campaigns(ws: Workspace, since: datetime | None) -> Rows:
    """Headline results of each campaign's latest results run (``crm_metrics`` step ``campaign``)."""
    return ws.con.execute(f"""
        WITH m AS (
            SELECT m.*, u.started_at, split_part(m.dimension, '/', 1) AS campaign,
                   substr(m.dimension, length(split_part(m.dimension, '/', 1)) + 2) AS arm
            FROM crm_metrics m JOIN crm_runs u USING (run_id)
            WHERE m.step = 'campaign' AND {_since_sql(since, 'u.started_at')}),
        latest AS (SELECT campaign, arg_max(run_id, started_at) AS run_id FROM m GROUP BY campaign)
        SELECT campaign, arm, max(value) FILTER (WHERE name = 'customers'),
               max(value) FILTER (WHERE name = 'conversion_rate'), max(value) FILTER (WHERE name = 'uplift'),
               max(value) FILTER (WHERE name = 'uplift_low'), max(value) FILTER (WHERE name = 'uplift_high')
        FROM m JOIN latest USING (campaign, run_id) GROUP BY campaign, arm ORDER BY campaign, arm""").fetchall()
