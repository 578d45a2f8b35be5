"""``crmtool report``: one self-contained HTML file of the workspace's history, for people.

>>> from crmtool.htmlreport import build_report
>>> with open_workspace("crm.duckdb") as ws:                       # doctest: +SKIP
...     result = build_report(ws, Path("report.html"), since="90d")

Reads the history tables (``crm_runs``, ``crm_rule_results``, ``crm_metrics``, segment history,
dedupe records, campaign metrics) as aggregates, draws them with plotly and writes one HTML file
atomically with plotly.js inline: it opens without a network and holds no customer data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmtool.errors import CrmToolError, UsageError
from crmtool.status import Status
from crmtool.workspace import Workspace

STEP = "report"


@dataclass(frozen=True)
class ReportResult:
    run_id: str
    path: Path
    since: datetime | None
    charts: int
    sections: list[str]
    empty: bool
    kpis: dict[str, str]  # KPI name -> status
    status: Status = Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": str(self.status), "path": str(self.path),
                "since": self.since.isoformat() if self.since else None, "charts": self.charts,
                "sections": self.sections, "empty": self.empty, "kpis": self.kpis}


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``90d``, ``12w``, ``6m`` (30-day months) or a date ``YYYY-MM-DD``; ``None`` or ``all``: everything."""
    if value is None or value == "all":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([dwm])\s*", value)
    if m:
        days = int(m.group(1)) * {"d": 1, "w": 7, "m": 30}[m.group(2)]
        return now - timedelta(days=days)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise UsageError(f"--since {value!r} is not a period or a date",
                         "write it as 90d, 12w, 6m, all, or YYYY-MM-DD") from None


def build_report(ws: Workspace, out: Path, *, since: str | None = "90d", title: str = "crmtool report",
                 kpis: Path | None = None, now: datetime | None = None) -> ReportResult:
    """Write the report to ``out`` and register it; ``since`` limits the period shown; ``kpis``
    (a ``kpis.yaml``) gives the KPIs, targets and anomaly settings (else the built-in KPIs)."""
    from crmtool.htmlreport.charts import build_charts
    from crmtool.htmlreport.data import collect
    from crmtool.htmlreport.page import render
    from crmtool.io.writers import write_text_atomic

    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    start = parse_since(since, now)
    run = ws.start_run(STEP)
    try:
        if kpis is not None:
            run.step.input(Path(kpis))
        data = collect(ws, start, now, Path(kpis) if kpis is not None else None)
        charts = build_charts(data)
        write_text_atomic(out, render(data, charts, title=title))
        run.step.output("report", out)
    except CrmToolError as exc:
        ws.finish_run(run, Status.ERROR, int(exc.exit_code), {"error": exc.message})
        raise
    result = ReportResult(run.run_id, out.resolve(), start, len(charts), sorted({c.section for c in charts}),
                          data.empty, {k.name: str(k.status) for k in data.kpis})
    run.step.metric("charts", result.charts)
    ws.finish_run(run, result.status, result.status.exit_code, result.as_dict())
    return result
