"""crmtool audit verify | show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crmtool.cli.common import (
    FormatOpt,
    KeyFileOpt,
    OutputFormat,
    Ui,
    WorkspaceOpt,
    cli_command,
    emit,
)
from crmtool.errors import ExitCode

audit_app = typer.Typer(help="Verify and read hash-chained audit logs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@cli_command
def verify(
    ui: Ui,
    log: Annotated[Path, typer.Argument(help="Audit log (JSON Lines).")],
    head: Annotated[str | None, typer.Option(help="Expected head hash (from a manifest) to catch a cut log.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="Manifest whose audit head the log must reach.")] = None,
    fmt: FormatOpt = OutputFormat.text,
) -> ExitCode:
    """Check the hash chain and seals; exit 1 naming the first bad line."""
    from crmtool.audit import verify_log
    from crmtool.errors import InputError

    expected = head
    if manifest is not None:
        try:
            expected = json.loads(manifest.read_text(encoding="utf-8"))["audit"]["head_sha256"]
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{manifest}: not a crmtool manifest with an audit head ({exc})") from None
    result = verify_log(log, expected)
    if fmt is OutputFormat.json:
        emit(ui, json.dumps({"ok": result.ok, "lines": result.lines, "runs": result.runs, "head": result.head,
                             "bad_line": result.bad_line or None, "problem": result.problem or None}))
    elif result.ok:
        ui.out.print(f"{log}: ok, {result.lines} entries in {result.runs} runs, head {result.head}")
    else:
        ui.out.print(f"{log}:{result.bad_line}: {result.problem}")
    return ExitCode.OK if result.ok else ExitCode.CHECKS_FAILED


@audit_app.command("show")
@cli_command
def show(
    ui: Ui,
    log: Annotated[Path, typer.Argument(help="Audit log (JSON Lines).")],
    record: Annotated[str | None, typer.Option(help="Record key in clear; matched by its keyed hash.")] = None,
    run: Annotated[str | None, typer.Option(help="Run id.")] = None,
    rule: Annotated[str | None, typer.Option(help="Rule name.")] = None,
    workspace: WorkspaceOpt = "crmtool.duckdb",
    key_file: KeyFileOpt = None,
) -> ExitCode:
    """Print the entries matching every filter given, one JSON object per line."""
    from crmtool.audit import filter_entries
    from crmtool.keys import load_key
    from crmtool.workspace import Workspace

    token = None
    if record is not None:
        default = Workspace(workspace).default_key_file
        # reading a log never creates a key: without the run's key no record can match
        token = load_key(key_file, default if default.exists() else None).token(record.strip())
    n = 0
    for entry in filter_entries(log, record_token=token, run=run, rule=rule):
        emit(ui, json.dumps(entry, sort_keys=True, ensure_ascii=False))
        n += 1
    ui.info(f"{n} entries")
    return ExitCode.OK
