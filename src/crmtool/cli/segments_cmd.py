"""crmtool segment [run] | preview | diff | export-audience: thin commands over crmtool.segments.api.

``crmtool segment CUSTOMERS ...`` is short for ``crmtool segment run CUSTOMERS ...``: the group
routes a first argument that names no subcommand to ``run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crmtool.cli.common import (
    FileFormat,
    FlagHelpGroup,
    FormatOpt,
    OutputFormat,
    TextJsonFormatOpt,
    Ui,
    WorkspaceLockOptions,
    WorkspaceOptions,
    cli_command,
    finish,
    parse_as_of,
    result_table,
)
from crmtool.cli.core_cmd import EngineOpt, SparkMasterOpt
from crmtool.errors import ExitCode, UsageError
from crmtool.io.readers import ReadOptions
from crmtool.io.writers import OutputOptions

if TYPE_CHECKING:
    from crmtool.segments.api import PreviewResult, SegmentResult


class _SegmentGroup(FlagHelpGroup):
    """A group whose first positional argument may be the customers file (then it runs ``run``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


segment_app = typer.Typer(
    cls=_SegmentGroup,
    no_args_is_help=True,
    help="Segments from segments.yaml: send lists, stable holdouts, history, audiences.\n\n"
    "'crmtool segment CUSTOMERS --segments segments.yaml --out DIR' is short for 'crmtool segment run ...'.",
)

CustomersArg = Annotated[
    Path, typer.Argument(help="Customers export (CSV, Parquet or xlsx).", show_default=False)
]
SegmentsOpt = Annotated[Path, typer.Option("--segments", "-s", help="The segments file.")]
OrdersOpt = Annotated[
    Path | None, typer.Option("--orders", help="Orders export (customer id, date, amount, channel).")
]
EventsOpt = Annotated[
    Path | None, typer.Option("--events", help="Events export (customer id, type, timestamp).")
]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Reference date YYYY-MM-DD (default: file, else today).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(segment_app, name="segment")


def _no_junit(fmt: OutputFormat) -> None:
    if fmt is OutputFormat.junit:
        raise UsageError("--format junit is not available for segments", "use text or json")


def _change(entered: int | None, exited: int | None) -> str:
    if entered is None or exited is None:
        return "first run"
    return f"+{entered} / -{exited}"


@segment_app.command("run")
@cli_command
def run(
    ui: Ui,
    customers: CustomersArg,
    segments: SegmentsOpt = Path("segments.yaml"),
    orders: OrdersOpt = None,
    events: EventsOpt = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for segments/, holdouts, memberships, summary.")
    ] = Path("out"),
    as_of: AsOfOpt = None,
    file_format: Annotated[
        FileFormat | None,
        typer.Option("--output-format", help="csv, parquet or xlsx (default: the file's, else csv)."),
    ] = None,
    output: OutputOptions = OutputOptions(),
    read: ReadOptions = ReadOptions(),
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
) -> ExitCode:
    """Evaluate every segment and write send lists, holdouts, memberships and a summary; record history
    (--engine spark: aggregates, features, conditions, holdouts and status run on Spark)."""
    from crmtool.cli.core_cmd import _engine_usage
    from crmtool.segments import api

    _no_junit(fmt)
    _engine_usage(engine, spark_master)
    day = parse_as_of(as_of)
    with (
        where.open() as ws,
        ui.progress("segmenting") as progress,
    ):
        result = api.segment(
            ws,
            customers,
            segments,
            out_dir=out,
            orders=orders,
            events=events,
            as_of=day,
            fmt=file_format.value if file_format else None,
            progress=progress,
            output=output,
            read=read,
            engine=engine,
            spark_master=spark_master,
        )
    return finish(ui, result, fmt, lambda: _print_run(ui, result, out))


def _print_run(ui: Ui, result: SegmentResult, out: Path) -> None:
    """Each segment's size, holdout, exclusions, send list and change; what was left out and written."""
    counts = ("members", "share", "holdout", "excluded", "send", "change")
    table = result_table("segment", "group", *counts, right=counts)
    for s in result.segments:
        table.add_row(
            s.name,
            s.group or "",
            str(s.members),
            f"{s.share:.1%}",
            str(s.holdout),
            str(s.excluded),
            str(s.send),
            _change(s.entered, s.exited),
        )
    ui.out.print(table)
    st = result.stats
    ui.out.print(
        f"as of {result.as_of}: {result.customers} customers"
        + (
            f" ({st.duplicate_ids} duplicate ids, {st.blank_ids} blank ids ignored)"
            if st.duplicate_ids or st.blank_ids
            else ""
        )
    )
    if result.excluded_customers:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.excluded_customers.items()))
        ui.out.print(f"left out of send lists (customers): {reasons}")
    for what, reasons_ in sorted(st.skipped.items()):
        if reasons_:
            ui.out.print(
                f"skipped {what} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons_.items()))
            )
    for note in result.notes:
        ui.warn(note)
    if st.shadowed_columns:
        ui.warn(
            f"customer columns named like features (the feature wins): {', '.join(st.shadowed_columns)}"
        )
    ui.out.print(
        f"wrote {out}/segments/ ({len(result.segments)} lists), holdouts, memberships, segments.summary.json"
    )
    if result.removed_lists:  # an earlier run's list of a segment the file no longer has
        ui.out.print(f"removed send lists of segments no longer in the file: {', '.join(result.removed_lists)}")
    ui.out.print(f"run {result.run_id}")


@segment_app.command("check")
@cli_command
def check(
    ui: Ui,
    segments: SegmentsOpt = Path("segments.yaml"),
    fmt: TextJsonFormatOpt = OutputFormat.text,
) -> ExitCode:
    """Validate segments.yaml without data (schema, names, cycles, holdouts); exit 2 on any problem."""
    from crmtool.result import Fields
    from crmtool.segments.spec import load_segments

    _no_junit(fmt)
    spec = load_segments(segments)
    checked = Fields({"segments_file": str(segments), "segments": [s.name for s in spec.segments],
                      "features": len(spec.features), "campaign_holdouts": len(spec.campaigns)})
    return finish(ui, checked, fmt, lambda: ui.info(
        f"{segments}: {len(spec.segments)} segments, {len(spec.features)} features, "
        f"{len(spec.campaigns)} campaign holdouts: ok (feature and column names are checked against "
        f"the data when it runs)"
    ))


@segment_app.command("preview")
@cli_command
def preview(
    ui: Ui,
    customers: CustomersArg,
    segments: SegmentsOpt = Path("segments.yaml"),
    orders: OrdersOpt = None,
    events: EventsOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Sizes of the segments and how they overlap (an overlap matrix); writes nothing."""
    from crmtool.segments import api

    _no_junit(fmt)
    day = parse_as_of(as_of)
    with where.open() as ws:
        result = api.preview(ws, customers, segments, orders=orders, events=events, as_of=day)
    return finish(ui, result, fmt, lambda: _print_preview(ui, result))


def _print_preview(ui: Ui, result: PreviewResult) -> None:
    """Segment sizes and the overlap matrix."""
    from rich.table import Table

    counts = ("#", "matched", "members", "share", "send")
    sizes = result_table("#", "segment", *counts[1:], right=counts)
    for i, s in enumerate(result.segments, start=1):
        sizes.add_row(str(i), s.name, str(s.matched), str(s.members), f"{s.share:.1%}", str(s.send))
    ui.out.print(sizes)
    ui.out.print("overlap (customers matching both conditions, before exclusive groups):")
    matrix = Table(show_edge=False, pad_edge=False)
    matrix.add_column("#", justify="right")
    for i in range(len(result.segments)):
        matrix.add_column(str(i + 1), justify="right")
    for i, row in enumerate(result.overlap, start=1):
        matrix.add_row(str(i), *(str(v) for v in row))
    ui.out.print(matrix)
    ui.out.print(f"as of {result.as_of}: {result.customers} customers; nothing written")


@segment_app.command("diff")
@cli_command
def diff(
    ui: Ui,
    since: Annotated[
        str | None, typer.Option("--since", help="Run id or date YYYY-MM-DD (default: previous run).")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Run to compare (default: the latest).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write who entered/exited (csv).")] = None,
    list_runs: Annotated[bool, typer.Option("--list-runs", help="List the recorded segment runs.")] = False,
    output: OutputOptions = OutputOptions(),
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceLockOptions = WorkspaceOptions(),
) -> ExitCode:
    """Who entered and who exited each segment between two recorded runs."""
    from crmtool.segments import api, membership

    _no_junit(fmt)
    with where.open() as ws:
        if list_runs:
            for rid, day, n in membership.list_runs(ws.con):
                ui.out.print(f"{rid}  as of {day}  {n} memberships")
            return ExitCode.OK
        result = api.diff(ws, since, run_id)
        if out is not None:
            api.write_diff(ws, result, out, output=output)

    def text() -> None:
        counts = ("before", "after", "entered", "exited")
        table = result_table("segment", *counts, right=counts)
        for name, c in result.segments.items():
            table.add_row(name, str(c["before"]), str(c["after"]), str(c["entered"]), str(c["exited"]))
        ui.out.print(f"{result.base_run} (as of {result.base_as_of}) -> {result.run} (as of {result.as_of})")
        ui.out.print(table)
        if out is not None:
            ui.out.print(f"wrote {out}")

    return finish(ui, result, fmt, text)


@segment_app.command("export-audience")
@cli_command
def export_audience(
    ui: Ui,
    name: Annotated[
        str, typer.Argument(help="Segment name (its send list from a previous run).", show_default=False)
    ],
    platform: Annotated[str, typer.Option("--platform", "-p", help="meta or google.")] = "meta",
    source: Annotated[
        Path, typer.Option("--from", help="The --out folder of a 'crmtool segment' run.")
    ] = Path("out"),
    segments: Annotated[
        Path | None,
        typer.Option(
            "--segments",
            "-s",
            help="Segments file (column names, phone region); default segments.yaml when present.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Audience file (default FROM/audiences/NAME.PLATFORM.csv)."),
    ] = None,
    output: OutputOptions = OutputOptions(),
    fmt: FormatOpt = OutputFormat.text,
) -> ExitCode:
    """SHA-256 of emails and phones of a send list, normalised as Meta or Google documents."""
    from crmtool.segments import api

    _no_junit(fmt)
    spec_path = segments or (Path("segments.yaml") if Path("segments.yaml").exists() else None)
    with WorkspaceOptions(":memory:").open() as ws:
        result = api.export_audience(ws, name, platform, source_dir=source, out=out, spec=spec_path,
                                     output=output)
    return finish(ui, result, fmt, lambda: ui.out.print(
        f"{result.platform}: {result.rows} rows ({result.emails} emails, {result.phones} phones hashed; "
        f"skipped {result.skipped_emails} invalid emails, {result.skipped_phones} invalid phones) "
        f"-> {result.output}"
    ))
