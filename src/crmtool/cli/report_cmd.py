"""report: one self-contained HTML file with the workspace's history as charts."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from crmtool.cli.common import Ui, WorkspaceLockOptions, WorkspaceOptions, cli_command, finish
from crmtool.errors import ExitCode


class ReportFormat(StrEnum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@cli_command
def report(
    ui: Ui,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    since: Annotated[str, typer.Option(help="Period shown: 90d, 12w, 6m, all, or a date YYYY-MM-DD.")] = "90d",
    title: Annotated[str, typer.Option(help="Heading of the page.")] = "crmtool report",
    kpis: Annotated[Path | None, typer.Option(
        "--kpis", help="KPI file (YAML) for targets and anomaly checks (default: kpis.yaml when it exists, "
                       "else built-in KPIs).")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Result on stdout: text (nothing) or json.")]
    = ReportFormat.text,
    where: WorkspaceLockOptions = WorkspaceOptions(),
) -> ExitCode:
    """Charts of data-quality KPIs, email mix, duplicates, segments, diffs and campaigns in one HTML file."""
    from crmtool.htmlreport import build_report

    with where.open() as ws:
        kpi_file = kpis if kpis is not None else (Path("kpis.yaml") if Path("kpis.yaml").is_file() else None)
        result = build_report(ws, out, since=since, title=title, kpis=kpi_file)

    def text() -> None:
        if result.empty:
            ui.info(f"no history yet in this period; wrote {out}")
        else:
            ui.info(f"wrote {out}: {result.charts} charts ({', '.join(result.sections)})")

    return finish(ui, result, fmt, text)
