"""crmtool campaign start | results | plan: thin commands over crmtool.campaigns.api."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from crmtool.cli.common import (
    FileFormat,
    FlagHelpGroup,
    Ui,
    WorkspaceLockOptions,
    WorkspaceOptions,
    cli_command,
    emit,
    finish,
    parse_as_of,
)
from crmtool.errors import ExitCode, UsageError
from crmtool.io.writers import OutputOptions

campaign_app = typer.Typer(cls=FlagHelpGroup, no_args_is_help=True,
                           help="Campaigns: record who was targeted and held out, then measure uplift, "
                                "revenue and ROI against the holdout.")


class ResultFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")


def parse_percent(value: str, option: str) -> float:
    """``10%``, ``10`` -> 10.0; ``0.5pp`` -> 0.5 (percentage points)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%|pp)?\s*", value)
    if not m:
        raise UsageError(f"{option} {value!r} is not a percentage", "write it like 10% or 0.5pp")
    return float(m.group(1))


def parse_variants(value: str | None) -> list[tuple[str, float]] | None:
    if value is None:
        return None
    out = []
    for part in value.split(","):
        name, _, weight = part.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", name.strip()):
            raise UsageError(f"--variants: {name.strip()!r} is not a variant name", "e.g. A:0.5,B:0.5")
        try:
            w = float(weight.strip().rstrip("%")) / (100 if weight.strip().endswith("%") else 1)
        except ValueError:
            raise UsageError(f"--variants: weight {weight!r} of {name.strip()!r} is not a number",
                             "e.g. A:0.5,B:0.5") from None
        out.append((name.strip(), w))
    return out


def parse_window(value: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*(d|days?|w|weeks?)?\s*", value)
    if not m:
        raise UsageError(f"--window {value!r} is not a duration", "write it like 30d or 4w")
    return int(m.group(1)) * (7 if (m.group(2) or "d").startswith("w") else 1)


def _no_csv(fmt: ResultFormat) -> None:
    if fmt is ResultFormat.csv:
        raise UsageError("--format csv is only for 'campaign results'", "use text or json")


@campaign_app.command("start")
@cli_command
def start(
    ui: Ui,
    name: Annotated[str, typer.Argument(help="Campaign name (its records and files are named after it).")],
    segment: Annotated[str, typer.Option("--segment", "-s", help="The segment the campaign targets.")],
    variants: Annotated[str | None, typer.Option(
        "--variants", help="Arms and weights, e.g. A:0.5,B:0.5 (default: one arm 'send').")] = None,
    holdout: Annotated[str | None, typer.Option("--holdout", help="Campaign holdout, e.g. 10% (default 10%).")] = None,
    global_control: Annotated[str | None, typer.Option(
        "--global-control", help="Workspace-wide control held out of every campaign (set once; default 5%).")] = None,
    cost: Annotated[float | None, typer.Option("--cost", help="Total cost of the campaign, for ROI.")] = None,
    source: Annotated[str | None, typer.Option(
        "--from", help="Segment run id or segment --out folder (default: the latest segment run).")] = None,
    start_date: Annotated[str | None, typer.Option(
        "--start-date", help="Day the campaign goes out, YYYY-MM-DD (default today; results count from it).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for campaigns/NAME/send and holdout.")] = Path("out"),
    file_format: Annotated[FileFormat, typer.Option("--output-format", help="csv or parquet.")] = FileFormat.csv,
    output: OutputOptions = OutputOptions(),
    fmt: Annotated[ResultFormat, typer.Option("--format", "-f",
                                              help="Result on stdout: text or json.")] = ResultFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Record who a campaign targets, in which arm, and who is held out; write the send and holdout lists.

    Rerunning adds newcomers and keeps every earlier assignment (sticky arms)."""
    from crmtool.campaigns.api import start_campaign
    from crmtool.campaigns.render import start_text

    _no_csv(fmt)
    with where.open() as ws:
        result = start_campaign(
            ws, name, segment=segment, out_dir=out, source=source, variants=parse_variants(variants),
            holdout=None if holdout is None else parse_percent(holdout, "--holdout"),
            global_control=None if global_control is None else parse_percent(global_control, "--global-control"),
            cost=cost, start_date=parse_as_of(start_date), fmt=file_format.value, output=output)
    return finish(ui, result, fmt, lambda: emit(ui, start_text(result)))


@campaign_app.command("results")
@cli_command
def results(
    ui: Ui,
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    orders: Annotated[Path, typer.Option("--orders", help="Orders export (customer id, date, amount).")],
    window: Annotated[str, typer.Option("--window", help="Days counted from the start date, e.g. 30d.")] = "30d",
    events: Annotated[Path | None, typer.Option("--events", help="Events export, for --conversion-event.")] = None,
    conversion_event: Annotated[str | None, typer.Option(
        "--conversion-event", help="Event type that also counts as a conversion (with --events).")] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Break down by 'segment' or a customer column (with --customers).")] = None,
    customers: Annotated[Path | None, typer.Option("--customers", help="Customers export, for --by COLUMN.")] = None,
    segments: Annotated[Path | None, typer.Option(
        "--segments", help="segments.yaml whose inputs mapping (columns, date formats) reads the files.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Count from this day instead of the start date.")] = None,
    fmt: Annotated[ResultFormat, typer.Option("--format", "-f",
                                              help="Result on stdout: text, json or csv.")] = ResultFormat.text,
    where: WorkspaceLockOptions = WorkspaceOptions(),
) -> ExitCode:
    """Conversion, revenue per customer and AOV per arm; uplift vs the holdout with 95% intervals, ROI."""
    from crmtool.campaigns.api import campaign_results
    from crmtool.campaigns.render import results_csv, results_text

    days = parse_window(window)
    with where.open() as ws:
        result = campaign_results(ws, name, orders=orders, window_days=days, events=events,
                                  conversion_event=conversion_event, by=by, customers=customers,
                                  segments_file=segments, start_date=parse_as_of(since))
    code = finish(ui, result, fmt, lambda: emit(ui, results_text(result)),
                  renderers={"csv": lambda: results_csv(result)})
    for w in result.warnings:
        ui.warn(w)
    return code


@campaign_app.command("plan")
@cli_command
def plan(
    ui: Ui,
    baseline: Annotated[str, typer.Option("--baseline", help="Expected conversion without the campaign, e.g. 3%.")],
    effect: Annotated[str, typer.Option("--effect", help="Absolute uplift to detect, e.g. 0.5pp.")],
    power: Annotated[float, typer.Option("--power", help="Chance of detecting the effect when it is real.")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    holdout: Annotated[str, typer.Option("--holdout", help="Share of customers held out, e.g. 10%.")] = "10%",
    fmt: Annotated[ResultFormat, typer.Option("--format", "-f",
                                              help="Result on stdout: text or json.")] = ResultFormat.text,
) -> ExitCode:
    """How large the holdout (and the campaign) must be to detect an uplift, before the campaign."""
    from crmtool.campaigns.api import plan as make_plan
    from crmtool.campaigns.render import plan_text

    _no_csv(fmt)
    result = make_plan(parse_percent(baseline, "--baseline") / 100, parse_percent(effect, "--effect") / 100,
                       power=power, alpha=alpha, holdout_share=parse_percent(holdout, "--holdout") / 100)
    return finish(ui, result, fmt, lambda: emit(ui, plan_text(result)))
