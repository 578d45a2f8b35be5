"""crmtool kpis: KPI series with targets and anomaly checks (thin over :mod:`crmtool.kpis`)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from crmtool.cli.common import Ui, WorkspaceLockOptions, WorkspaceOptions, cli_command, emit, finish
from crmtool.errors import ExitCode


class KpiFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


class Period(StrEnum):
    day = "day"
    week = "week"
    month = "month"


def register(app: typer.Typer) -> None:
    app.command("kpis")(kpis)


@cli_command
def kpis(
    ui: Ui,
    kpis_file: Annotated[Path, typer.Option("--kpis", help="KPI file (YAML).")] = Path("kpis.yaml"),
    since: Annotated[str, typer.Option("--since", help="How far back: 90d, 12w, 6m.")] = "90d",
    by: Annotated[Period, typer.Option("--by", help="One value per day, week or month.")] = Period.day,
    fmt: Annotated[KpiFormat, typer.Option("--format", "-f", help="Result on stdout: text, json or csv.")]
    = KpiFormat.text,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of KPI files.")] = False,
    where: WorkspaceLockOptions = WorkspaceOptions(),
) -> ExitCode:
    """Each KPI's series with a trend sparkline and its status; exit 1 when a target is missed or an anomaly fires."""
    from crmtool.kpis import kpis_schema, load_kpis, parse_since, run_kpis, to_csv, to_text

    if schema:
        emit(ui, json.dumps(kpis_schema(), indent=2, sort_keys=True))
        return ExitCode.OK
    days = parse_since(since)
    spec = load_kpis(kpis_file)
    with where.open() as ws:
        report = run_kpis(ws, spec, since_days=days, by=by.value)
    failing = sum(1 for k in report.kpis if k.status.value == "fail")
    return finish(ui, report, fmt, lambda: ui.out.print(to_text(report), markup=False, end=""),
                  renderers={"csv": lambda: to_csv(report)}, counts={"kpis": len(report.kpis), "failing": failing})
