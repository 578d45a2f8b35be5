"""crmtool init: starter rules and segments from the user's own export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmtool.cli.common import OutputFormat, TextJsonFormatOpt, Ui, cli_command, finish
from crmtool.errors import ExitCode
from crmtool.io.readers import ReadOptions

if TYPE_CHECKING:
    from crmtool.starter import InitResult


def register(app: typer.Typer) -> None:
    app.command("init")(init)


@cli_command
def init(
    ui: Ui,
    input: Annotated[Path | None, typer.Argument(
        help="Your export (CSV, Parquet or xlsx): its columns are recognised by name and content "
        "(default: the only export in --dir).", show_default=False)] = None,
    folder: Annotated[Path, typer.Option("--dir", "-d", help="Folder to write rules/ and segments.yaml into.")]
    = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace starter files that already exist.")] = False,
    read: ReadOptions = ReadOptions(),
    fmt: TextJsonFormatOpt = OutputFormat.text,
) -> ExitCode:
    """Write a starter rules/ folder and segments.yaml from the profile of your export; never
    overwrites a file unless --force."""
    from crmtool.errors import UsageError
    from crmtool.io.readers import load_file
    from crmtool.profile import profile_table
    from crmtool.starter import write_starter
    from crmtool.workspace import open_workspace

    if fmt is OutputFormat.junit:
        raise UsageError("--format junit is not available for init", "use text or json")
    if input is None:
        exports = sorted(p for ext in ("csv", "xlsx", "parquet") for p in folder.glob(f"*.{ext}"))
        if len(exports) != 1:
            raise UsageError("init needs your export to recognise its columns"
                             + (f" ({len(exports)} exports in {folder}: name one)" if exports else ""),
                             "crmtool init customers.csv (try it on examples/clientes.csv)")
        input = exports[0]
    with open_workspace(":memory:", create_key=False) as ws:
        loaded = load_file(ws.con, input, "data_init", read)
        prof = profile_table(ws.con, loaded.table, top=5)
        result = write_starter(ws.con, loaded.table, prof, folder, input.name, force=force)
    ui.info(loaded.describe())
    return finish(ui, result, fmt, lambda: _print_init(ui, result, input, folder))


def _print_init(ui: Ui, result: InitResult, input: Path, folder: Path) -> None:
    """What was recognised, what was written, and the next command to try."""
    rec = result.recognised
    found = {part: getattr(rec, part) for part in ("key", "email", "phone", "national_id", "first_name",
                                                    "last_name", "postal_code", "country", "birth_date")}
    ui.out.print("recognised: " + (", ".join(f"{k} = {v}" for k, v in found.items() if v) or "no known columns"))
    if rec.dates:
        ui.out.print("dates: " + ", ".join(f"{c} ({' or '.join(f)})" for c, f in rec.dates.items()))
    for path in result.written:
        ui.out.print(f"  wrote {path}")
    ui.out.print(f"next: crmtool validate {input} --rules {folder / 'rules'}")
