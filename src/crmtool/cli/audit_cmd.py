"""crmtool audit verify | show."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmtool.cli.common import (
    FlagHelpGroup,
    FormatOpt,
    OutputFormat,
    Ui,
    WorkspaceKeyOptions,
    WorkspaceOptions,
    cli_command,
    emit,
    finish,
    workspace_bundle,
)
from crmtool.errors import ExitCode

if TYPE_CHECKING:
    from crmtool.audit.verify import VerifyResult

audit_app = typer.Typer(cls=FlagHelpGroup, help="Verify and read the workspace's audit log.", no_args_is_help=True)

LogArg = Annotated[Path | None, typer.Argument(
    help="Audit log folder (default: the workspace's <stem>.audit/).", show_default=False)]


#: verify takes its key as --key-file or --key (after a key change: the old key)
_VERIFY_KEY = Annotated[Path | None, typer.Option(
    "--key-file", "--key",
    help="Key the seals were made with (an old key after a key change; else CRMTOOL_KEY, "
         "CRMTOOL_KEY_FILE, or the key file beside the workspace).")]
VerifyKeyOptions = Annotated[WorkspaceOptions, workspace_bundle("workspace", key_file=(_VERIFY_KEY, None))]


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _log_and_key(log: Path | None, where: WorkspaceOptions, *, need_key: bool) -> tuple[Path, object]:
    """The log folder and the key to check it with (never created by reading)."""
    from crmtool.audit import log_dir
    from crmtool.errors import UsageError
    from crmtool.keys import load_key
    from crmtool.workspace import Workspace

    ws = Workspace(where.path)
    if log is None:
        if ws.in_memory:
            raise UsageError("give the audit log folder: a :memory: workspace has none of its own")
        log = log_dir(ws)
    if not need_key:
        return log, None
    default = ws.default_key_file
    try:
        return log, load_key(where.key_file, default if default.exists() else None)
    except UsageError as exc:
        raise UsageError(f"{exc.message}: the seals of an audit log are checked with the workspace key",
                         "pass --key-file or set CRMTOOL_KEY; --no-key checks only the unkeyed chain") from None


@audit_app.command("verify")
@cli_command
def verify(
    ui: Ui,
    log: LogArg = None,
    head: Annotated[str | None, typer.Option(help="Expected head hash (from a manifest) to catch a cut log.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="Manifest whose audit head the log must hold.")] = None,
    where: VerifyKeyOptions = WorkspaceOptions(),
    no_key: Annotated[bool, typer.Option("--no-key", help="Without the key: check hashes, links and change "
                                                          "sets only (a forger could pass).")] = False,
    fmt: FormatOpt = OutputFormat.text,
) -> ExitCode:
    """Check records, links, runs, keyed seals, change sets and HEAD; exit 1 naming what and where.

    A format-1 log (audit.jsonl, before 0.2) is checked read-only as far as its format can prove.
    """
    import json

    from crmtool.audit import verify_log
    from crmtool.audit.verify import format1_file
    from crmtool.errors import InputError
    from crmtool.keys import KeyedHasher

    # a format-1 log (audit.jsonl) is checked read-only and without a key: its seals have none
    legacy = log is not None and format1_file(log) is not None
    path, hasher = _log_and_key(log, where, need_key=not no_key and not legacy)
    expected = head
    if manifest is not None:
        try:
            expected = json.loads(manifest.read_text(encoding="utf-8"))["audit"]["head_sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{manifest}: not a crmtool manifest with an audit head ({exc})") from None
    result = verify_log(path, hasher if isinstance(hasher, KeyedHasher) else None, expected)
    return finish(ui, result, fmt, lambda: _print_verified(ui, path, result))


def _print_verified(ui: Ui, path: Path, result: VerifyResult) -> None:
    """ok with counts and head (and any pending run), or where the log fails and why."""
    if result.ok and result.format == 1:
        note = " (the expected head is an earlier seal: the log has grown since)" if result.prefix else ""
        ui.out.print(f"{path}: ok as format 1, {result.records} lines in {result.runs} runs, head {result.head}{note}")
        ui.out.print(result.unproven)
    elif result.ok:
        note = " (the expected head is an earlier seal: the log has grown since)" if result.prefix else ""
        keyed = "" if result.keyed else " (seals NOT checked: no key)"
        ui.out.print(f"{path}: ok, {result.records} records and {result.rows} change rows in {result.runs} runs, "
                     f"head {result.head}{note}{keyed}")
        for item in result.pending_runs:
            state = ("being written (its lock is held)" if item["status"] == "warn"
                     else "interrupted (unsealed); the next run records it as aborted")
            ui.out.print(f"pending run {item['run']} ({item['command'] or 'unknown command'}, started "
                         f"{item['started_at']}): {state}; {item['records_after_head']} records after HEAD, "
                         f"{len(item['sets'])} change sets; not covered by this check")
    else:
        ui.out.print(f"{result.where if result.format == 1 else path / result.where}: {result.problem}")


@audit_app.command("show")
@cli_command
def show(
    ui: Ui,
    log: LogArg = None,
    record: Annotated[str | None, typer.Option(help="Record key in clear; matched by its keyed hash.")] = None,
    run: Annotated[str | None, typer.Option(help="Run id.")] = None,
    rule: Annotated[str | None, typer.Option(help="Rule name.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Print at most this many entries.")] = None,
    where: WorkspaceKeyOptions = WorkspaceOptions(),
) -> ExitCode:
    """Print the entries matching every filter given, one JSON object per line."""
    import json

    from crmtool.audit import show as show_entries
    from crmtool.keys import KeyedHasher

    path, hasher = _log_and_key(log, where, need_key=record is not None)
    # reading a log never creates a key: without the run's key no record can match
    token = hasher.token(record.strip()) if record is not None and isinstance(hasher, KeyedHasher) else None
    n = 0
    # one encoder for every line (json.dumps with options builds one per call); lines go out a
    # thousand at a time
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode
    lines: list[str] = []
    for entry in show_entries(path, record_token=token, run=run, rule=rule, limit=limit):
        lines.append(encode(entry) + "\n")
        n += 1
        if len(lines) == 1000:
            emit(ui, "".join(lines))
            lines.clear()
    if lines:
        emit(ui, "".join(lines))
    ui.info(f"{n} entries")
    return ExitCode.OK
