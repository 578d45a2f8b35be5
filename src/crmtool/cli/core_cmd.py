"""clean, validate, profile: the foundation commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crmtool.cli.common import (
    FileFormat,
    FormatOpt,
    KeyFileOpt,
    LockTimeoutOpt,
    OutputFormat,
    Ui,
    WorkspaceOpt,
    cli_command,
    emit,
)
from crmtool.errors import ExitCode, exit_code_for

InputArg = Annotated[Path, typer.Argument(help="Export to read: CSV (any common encoding/delimiter), Parquet or xlsx.",
                                          show_default=False)]
RulesOpt = Annotated[list[Path], typer.Option("--rules", "-r", help="Rule file or folder (repeatable).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for clean, rejects, manifest and audit log.")]
OutputFormatOpt = Annotated[FileFormat | None,
                            typer.Option("--output-format", help="csv or parquet (default: as input).")]
KeepFormulasOpt = Annotated[bool, typer.Option("--keep-formulas", help="Do not neutralise spreadsheet formulas.")]
AuditLogOpt = Annotated[Path | None, typer.Option(help="Audit log to append to (default OUT/audit.jsonl).")]
FailOnOpt = Annotated[str, typer.Option("--fail-on", help="error (default) or warning: which failures exit 1.")]
ShowValuesOpt = Annotated[bool, typer.Option("--show-values", help="Show top values of personal-data columns.")]


def register(app: typer.Typer) -> None:
    app.command("clean")(clean)
    app.command("validate")(validate)
    app.command("profile")(profile)


def _render_outcomes(ui: Ui, report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False)
    for col, justify in (("rule", "left"), ("kind", "left"), ("severity", "left"), ("action", "left"),
                         ("failed", "right"), ("fixed", "right"), ("rejected", "right"), ("status", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in report["rules"]:
        table.add_row(r["rule"], r["kind"], r["severity"], r["action"], str(r["failed"]), str(r["fixed"]),
                      str(r["rejected"]), r["status"].upper() if r["status"] != "pass" else "pass")
    ui.out.print(table)


@cli_command
def clean(
    ui: Ui,
    input: InputArg,
    rules: RulesOpt = [Path("rules")],  # noqa: B006 - typer needs a literal default
    out: OutOpt = Path("out"),
    file_format: OutputFormatOpt = None,
    encoding: Annotated[str, typer.Option(help="Encoding of CSV outputs.")] = "utf-8",
    keep_formulas: KeepFormulasOpt = False,
    audit_log: AuditLogOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    workspace: WorkspaceOpt = "crmtool.duckdb",
    lock_timeout: LockTimeoutOpt = 60.0,
    key_file: KeyFileOpt = None,
) -> ExitCode:
    """Apply the rules: write the cleaned export, the rejected rows with reasons, a manifest and the audit log."""
    from crmtool import api, report
    from crmtool.workspace import open_workspace

    with open_workspace(workspace, lock_timeout=lock_timeout, key_file=key_file) as ws, \
            ui.progress("cleaning") as progress:
        result = api.clean(ws, input, rules, out, fmt=file_format.value if file_format else None,
                           encoding=encoding, neutralise_formulas=not keep_formulas, audit_log=audit_log,
                           progress=progress)
    if result.key_created:
        ui.warn(f"created a new key for keyed hashes at {result.key_created} (owner-only); keep it safe "
                f"and use it for every run: audit entries and pseudonyms depend on it")
    summary = result.manifest
    if fmt is OutputFormat.json:
        emit(ui, report.to_json(summary))
    elif fmt is OutputFormat.junit:
        emit(ui, report.to_junit(result.as_dict()))
    else:
        ui.info(result.input.describe())
        _render_outcomes(ui, result.as_dict())
        c = summary["counts"]
        ui.out.print(f"rows in {c['rows_in']}, kept {c['rows_out']}, rejected {c['rejected']} "
                     f"({c['parse_rejects']} unparseable), values fixed {c['fixed_values']}")
        if "mailable" in c:
            reasons = ", ".join(f"{k} {v}" for k, v in c["not_mailable"].items())
            ui.out.print(f"mailable {c['mailable']} of {c['rows_out']}" + (f" (not: {reasons})" if reasons else ""))
        if c.get("erased_dropped"):
            ui.out.print(f"rows of erased people dropped on load: {c['erased_dropped']}")
        if "dedupe" in summary:
            d = summary["dedupe"]
            ui.out.print(f"dedupe: {d['candidate_pairs']} candidate pairs, {d['merges']} merges into "
                         f"{d['duplicate_clusters']} clusters, {d['review_pairs']} pairs to review")
        for name, path in result.outputs.items():
            ui.out.print(f"  {name:9} {path}")
        ui.out.print(f"run {result.run_id}: {'FAIL' if result.failed else 'pass'}")
    return exit_code_for(None, checks_failed=result.failed)


@cli_command
def validate(
    ui: Ui,
    input: InputArg,
    rules: RulesOpt = [Path("rules")],  # noqa: B006
    fmt: FormatOpt = OutputFormat.text,
    fail_on: FailOnOpt = "error",
    workspace: WorkspaceOpt = "crmtool.duckdb",
    lock_timeout: LockTimeoutOpt = 60.0,
) -> ExitCode:
    """Check an export against the rules without changing anything; exit 1 when an error rule fails."""
    from crmtool import api, report
    from crmtool.errors import UsageError
    from crmtool.workspace import open_workspace

    if fail_on not in ("error", "warning"):
        raise UsageError(f"--fail-on must be error or warning, not {fail_on!r}")
    with open_workspace(workspace, lock_timeout=lock_timeout) as ws, ui.progress("validating") as progress:
        result = api.validate(ws, input, rules, progress=progress)
    payload = result.as_dict()
    on_warning = fail_on == "warning"
    failed = result.failed or (on_warning and any(r["status"] == "warn" for r in payload["rules"]))
    payload["status"] = "fail" if failed else "pass"
    if fmt is OutputFormat.json:
        emit(ui, report.to_json(payload))
    elif fmt is OutputFormat.junit:
        emit(ui, report.to_junit(payload, fail_on_warning=on_warning))
    else:
        ui.info(result.input.describe())
        _render_outcomes(ui, payload)
        ui.out.print(f"run {result.run_id}: {'FAIL' if failed else 'pass'}")
    return exit_code_for(None, checks_failed=failed)


@cli_command
def profile(
    ui: Ui,
    input: InputArg,
    fmt: FormatOpt = OutputFormat.text,
    show_values: ShowValuesOpt = False,
    top: Annotated[int, typer.Option(help="How many top values and shapes per column.")] = 5,
    workspace: WorkspaceOpt = ":memory:",
) -> ExitCode:
    """Rows, columns, inferred types, null share, distinct counts, top values and shapes; personal data marked."""
    from crmtool import report
    from crmtool.io.readers import load_file
    from crmtool.profile import profile_table
    from crmtool.workspace import dataset_name, open_workspace

    with open_workspace(workspace) as ws:
        loaded = load_file(ws.con, input, f"data_{dataset_name(input)}")
        prof = profile_table(ws.con, loaded.table, top=top, show_values=show_values)
    if fmt is OutputFormat.json:
        payload = {"input": str(input), "detected": {"format": loaded.format, "encoding": loaded.encoding,
                   "delimiter": loaded.delimiter}, "parse_rejects": len(loaded.parse_rejects), **prof.as_dict()}
        emit(ui, report.to_json(payload))
        return ExitCode.OK
    from rich.table import Table

    ui.info(loaded.describe())
    table = Table(show_edge=False, pad_edge=False)
    for col in ("column", "type", "nulls", "distinct", "top values", "shapes", "personal"):
        table.add_column(col)
    for c in prof.columns:
        tops = ", ".join(f"{v} ({n})" for v, n in c.top_values) if c.top_values is not None else "(hidden)"
        shapes = ", ".join(f"{s} ({n})" for s, n in c.top_shapes[:3])
        table.add_row(c.name, c.type, f"{c.null_share:.1%}", str(c.distinct), tops[:60], shapes[:50],
                      c.personal_data or "")
    ui.out.print(table)
    return ExitCode.OK
