"""CLI commands of the emails feature: ``emails`` (classify addresses) and ``bounces import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crmtool.cli.common import (
    FileFormat,
    FlagHelpGroup,
    OutputFormat,
    TextJsonFormatOpt,
    Ui,
    WorkspaceOptions,
    cli_command,
    finish,
    result_table,
)
from crmtool.errors import ExitCode
from crmtool.io.readers import ReadOptions
from crmtool.io.writers import OutputOptions

bounces_app = typer.Typer(cls=FlagHelpGroup,
    help="Bounce history from email platforms (hard bounces, repeated soft bounces).", no_args_is_help=True
)

TextJson = TextJsonFormatOpt


def register(app: typer.Typer) -> None:
    """Add this feature's commands to ``app``."""
    app.command("emails")(emails)
    app.add_typer(bounces_app, name="bounces")
    bounces_app.command("import")(bounces_import)


def _render(ui: Ui, payload: dict[str, Any]) -> None:
    table = result_table("status / reason", "addresses", "rows", right={"addresses", "rows"})
    for status, c in payload["by_status"].items():
        table.add_row(status, str(c["addresses"]), str(c["rows"]))
    table.add_section()
    for reason, c in payload["by_reason"].items():
        table.add_row(f"  {reason}", str(c["addresses"]), str(c["rows"]))
    ui.out.print(table)
    ui.out.print(
        f"rows {payload['rows']}, without address {payload['rows_without_address']}, "
        f"distinct addresses {payload['addresses']}, domains {payload['domains']}"
    )
    mx = payload.get("mx")
    if mx:
        timeouts = mx["by_status"].get("timeout", 0) + mx["by_status"].get("error", 0)
        ui.out.print(
            f"MX: {mx['domains']} domains, {mx['from_cache']} from cache, {mx['asked_dns']} asked, "
            f"{timeouts} unanswered (dns_timeout){', total budget used up' if mx['budget_exhausted'] else ''}"
        )
    if payload.get("output"):
        ui.out.print(f"  emails    {payload['output']}")


@cli_command
def emails(
    ui: Ui,
    input: Annotated[Path, typer.Argument(help="Export to read: CSV, Parquet or xlsx.", show_default=False)],
    column: Annotated[str, typer.Option("--column", "-c", help="Column holding the addresses.")] = "email",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for emails.csv/.parquet.")] = None,
    mx: Annotated[
        bool, typer.Option("--mx", help="Also ask DNS whether each domain can receive mail.")
    ] = False,
    resolver: Annotated[
        str | None, typer.Option("--resolver", help="DNS server IP[:PORT] (default: system).")
    ] = None,
    mx_timeout: Annotated[float, typer.Option("--mx-timeout", help="Seconds per DNS query.")] = 3.0,
    mx_budget: Annotated[
        float, typer.Option("--mx-budget", help="Seconds for all DNS queries of the run.")
    ] = 120.0,
    lists: Annotated[
        Path | None,
        typer.Option(
            "--lists",
            help="Folder of user lists: role_accounts.txt, disposable_extra.txt, allow_domains.txt "
            "(default: rules/lists when present).",
        ),
    ] = None,
    soft_bounces: Annotated[
        int,
        typer.Option("--soft-bounces", help="Soft bounces that make an address soft_bounced_repeatedly ..."),
    ] = 3,
    soft_days: Annotated[int, typer.Option("--soft-days", help="... within this many days.")] = 30,
    file_format: Annotated[
        FileFormat | None, typer.Option("--output-format", help="csv, parquet or xlsx (default: as input).")
    ] = None,
    output: OutputOptions = OutputOptions(),
    read: ReadOptions = ReadOptions(),
    fmt: TextJson = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Classify every distinct address: status, reasons, suggested fix, risk 0-100 and tags."""
    from crmtool.emails.classify import ClassifyOptions
    from crmtool.emails.lists import EmailLists
    from crmtool.emails.run import classify_file
    from crmtool.errors import UsageError

    if fmt is OutputFormat.junit:
        raise UsageError("emails writes text or json on stdout", "use --format text or --format json")
    if resolver:
        from crmtool.emails.mx import parse_resolver

        parse_resolver(resolver)
    if lists is not None and not lists.is_dir():
        raise UsageError(f"--lists {lists}: no such folder", "give the folder that holds role_accounts.txt")
    options = ClassifyOptions(
        lists=EmailLists.load(lists if lists is not None else Path("rules/lists")),
        mx=mx,
        resolver=resolver,
        mx_timeout=mx_timeout,
        mx_budget=mx_budget,
        soft_bounces=soft_bounces,
        soft_window_days=soft_days,
    )
    with where.open() as ws:
        result = classify_file(
            ws,
            input,
            column=column,
            out_dir=out,
            fmt=file_format.value if file_format else None,
            options=options,
            output=output,
            read=read,
        )
    return finish(ui, result, fmt, lambda: _render(ui, result.as_dict()))


@cli_command
def bounces_import(
    ui: Ui,
    input: Annotated[Path, typer.Argument(help="Bounce export: CSV or JSON lines.", show_default=False)],
    platform: Annotated[
        str, typer.Option("--platform", "-p", help="auto, mailchimp, sendgrid, brevo, mailgun, ses or generic.")
    ] = "auto",
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Result on stdout: text or json.")
    ] = "text",
    output: Annotated[str | None, typer.Option("--output", hidden=True, help="Old name of --format.")] = None,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Add the bounces of a platform export to the workspace history (addresses kept as keyed hashes)."""
    from crmtool.emails.bounces import FORMATS, import_bounces
    from crmtool.errors import UsageError

    # until 0.2 '--format PLATFORM' still names the platform (it did before --platform existed)
    if fmt in FORMATS and fmt != "text":
        ui.warn(f"'--format {fmt}' names the platform only until 0.2: write '--platform {fmt}' "
                f"(--format is the output format on every command)")
        platform, fmt = fmt, "text"
    if output is not None:
        ui.warn("'--output' is now '--format' (text or json), as on every command")
        fmt = output
    if fmt not in ("text", "json"):
        raise UsageError(f"--format {fmt!r}: bounces import writes text or json")
    with where.open() as ws:
        result = import_bounces(ws, input, platform)
        if ws.hasher.created:
            ui.warn(
                f"created a new key for keyed hashes at {ws.hasher.source}; keep it for every run"
            )

    def text() -> None:
        payload = result.as_dict()
        types = ", ".join(f"{k} {v}" for k, v in payload["by_type"].items()) or "none"
        ui.out.print(
            f"{input.name}: {payload['platform']}, {payload['rows']} records, "
            f"imported {payload['imported']} "
            f"({types}), already known {payload['duplicates']}, not bounces {payload['skipped']}, "
            f"undated {payload['undated']}"
        )

    return finish(ui, result, fmt, text)
