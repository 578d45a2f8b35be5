"""CLI commands of the privacy feature: suppress import, erase, export, pii."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    parse_as_of,
)
from crmtool.errors import ExitCode

suppress_app = typer.Typer(help="Suppression lists: unsubscribes, complaints, do-not-contact.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete or anonymise records kept past their retention period.", no_args_is_help=True)
RulesOpt = Annotated[list[Path], typer.Option("--rules", "-r", help="Rule file or folder (repeatable).")]
DatasetOpt = Annotated[str | None, typer.Option(help="Only this dataset (e.g. clientes); default every cleaned one.")]

SuppressFileArg = Annotated[
    Path, typer.Argument(help="File of emails, phones and/or customer ids (CSV, Parquet, xlsx).")
]
KindOpt = Annotated[str, typer.Option("--kind", "-k", help="unsubscribe, complaint or do_not_contact.")]
SourceOpt = Annotated[str | None, typer.Option(help="Source label stored with the entries (default: file name).")]
RequestsOpt = Annotated[Path | None, typer.Option("--requests", help="Erasure requests to carry out.")]
CheckOpt = Annotated[Path | None, typer.Option("--check", help="Request file to verify (exit 1 if one is not done).")]
EraseOutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Folder for the erase manifest (and default audit log).")
]
AuditLogOpt = Annotated[Path | None, typer.Option(
    help="Audit log folder to append to / check (default: the workspace's <stem>.audit/; OUT/crmtool.audit/ "
         "for :memory:).")]
AlsoOpt = Annotated[
    list[Path], typer.Option("--also", help="Another output file to rewrite without them (repeatable).")
]
KeyColumnOpt = Annotated[str | None, typer.Option(help="Customer id column (default: detected by name).")]
ExportFileArg = Annotated[Path, typer.Argument(help="Export to share (CSV, Parquet, xlsx).")]
PolicyOpt = Annotated[
    Path, typer.Option("--policy", "-p", help="YAML policy: keep/drop/hash/mask/generalise per column.")
]
ExportOutOpt = Annotated[Path, typer.Option("--out", "-o", help="File to write (.csv or .parquet).")]
OutFormatOpt = Annotated[
    FileFormat | None, typer.Option("--output-format", help="csv or parquet (default: from --out).")
]
AsOfOpt = Annotated[str | None, typer.Option(help="Reference date for age bands (YYYY-MM-DD, default today).")]


def register(app: typer.Typer) -> None:
    """Add this feature's commands to ``app``."""
    app.add_typer(suppress_app, name="suppress")
    app.add_typer(retention_app, name="retention")
    app.command("erase")(erase)
    app.command("export")(export)
    app.command("pii")(pii)


def _key_first(ui: Ui, workspace: str, key_file: Path | None) -> None:
    """Load the key before the workspace is opened: a bad key stops the run before anything is written."""
    from crmtool.keys import load_key
    from crmtool.workspace import Workspace

    hasher = load_key(key_file, Workspace(workspace).default_key_file)
    if hasher.created:
        ui.warn(
            f"created a new key for keyed hashes at {hasher.source} (owner-only); keep it safe and use it "
            f"for every run: erasure proofs, suppressions and pseudonyms depend on it"
        )


def _json(payload: object) -> str:
    import json

    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@suppress_app.command("import")
@cli_command
def suppress_import(
    ui: Ui,
    file: SuppressFileArg,
    kind: KindOpt,
    source: SourceOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    workspace: WorkspaceOpt = "crmtool.duckdb",
    lock_timeout: LockTimeoutOpt = 60.0,
    key_file: KeyFileOpt = None,
) -> ExitCode:
    """Store suppression entries as keyed tokens; every contact list leaves these people out."""
    from crmtool.privacy.suppress import import_suppressions
    from crmtool.workspace import open_workspace

    _key_first(ui, workspace, key_file)
    with open_workspace(workspace, lock_timeout=lock_timeout, key_file=key_file) as ws:
        result = import_suppressions(ws, file, kind, source=source)
    d = result.as_dict()
    if fmt is OutputFormat.json:
        emit(ui, _json(d))
    else:
        added = ", ".join(f"{k} {v}" for k, v in sorted(d["added"].items())) or "none"
        ui.out.print(
            f"{file.name}: {d['rows']} rows, {d['identifiers']} identifiers; added {d['added_total']} "
            f"({added}), already present {d['already_present']}, blank {d['unusable']}, "
            f"unparseable rows {d['parse_rejects']}"
        )
    return ExitCode.OK


@cli_command
def erase(
    ui: Ui,
    requests: RequestsOpt = None,
    check: CheckOpt = None,
    out: EraseOutOpt = Path("out"),
    audit_log: AuditLogOpt = None,
    also: AlsoOpt = [],  # noqa: B006 - typer needs a literal default
    key: KeyColumnOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    workspace: WorkspaceOpt = "crmtool.duckdb",
    lock_timeout: LockTimeoutOpt = 60.0,
    key_file: KeyFileOpt = None,
) -> ExitCode:
    """Right to be forgotten: remove people everywhere (--requests), or prove it was done (--check)."""
    from crmtool.errors import UsageError
    from crmtool.privacy.erase import check_erasures, compact_workspace_file
    from crmtool.privacy.erase import erase as do_erase
    from crmtool.workspace import open_workspace

    if (requests is None) == (check is None):
        raise UsageError("give exactly one of --requests FILE or --check FILE")
    _key_first(ui, workspace, key_file)
    from crmtool.audit import CHAIN, log_dir

    with open_workspace(workspace, lock_timeout=lock_timeout, key_file=key_file) as ws:
        log = log_dir(ws, out, audit_log)
        if requests is not None:
            result = do_erase(ws, requests, out_dir=out, audit_log=log, key=key, outputs=list(also))
        else:
            assert check is not None
            checked = check_erasures(ws, check, audit_log=log if (log / CHAIN).is_file() else None, key=key)
    if requests is not None and workspace != ":memory:" and any(result.rows_removed.values()):
        compact_workspace_file(Path(workspace), lock_timeout)  # deleted rows leave the file's bytes too
    if requests is not None:
        d = result.as_dict()
        if fmt is OutputFormat.json:
            emit(ui, _json(d))
        else:
            ui.out.print(
                f"{d['requests']} requests, {d['identifiers']} identifiers: {d['found']} found, "
                f"{d['not_found']} not found (recorded anyway, so they never come back)"
            )
            for table, n in sorted(d["rows_removed"].items()):
                ui.out.print(f"  removed {n:>7} rows from {table}")
            for path, n in sorted(d["outputs_rewritten"].items()):
                ui.out.print(f"  rewrote {path} without {n} rows")
            if d["not_found_refs"]:
                ui.out.print(
                    f"  not found: {', '.join(d['not_found_refs'][:20])}"
                    + (" ..." if len(d["not_found_refs"]) > 20 else "")
                )
            ui.out.print(
                f"audit {d['audit']} (head {d['audit_head'][:16]}), manifest {d['manifest']}, "
                f"key {d['key_fingerprint']}"
            )
        return ExitCode.OK
    payload = checked.as_dict()
    if fmt is OutputFormat.json:
        emit(ui, _json(payload))
    else:
        for r in payload["requests"]:
            bad = [
                i
                for i in r["identifiers"]
                if not (i["recorded"] and i["present_rows"] == 0 and i["audited"] is not False)
            ]
            why = "; ".join(
                f"{i['type']} {i['identifier'][:14]}…: "
                + ", ".join(
                    w
                    for w, cond in (
                        ("not recorded", not i["recorded"]),
                        (f"{i['present_rows']} rows still present", i["present_rows"] > 0),
                        ("not in the audit log", i["audited"] is False),
                    )
                    if cond
                )
                for i in bad
            )
            ui.out.print(f"{r['request']}: {'carried out' if r['ok'] else 'NOT carried out: ' + why}")
        ui.out.print(
            f"{sum(r['ok'] for r in payload['requests'])}/{len(payload['requests'])} requests "
            f"carried out" + ("" if payload["audit"] else " (no audit log checked)")
        )
    return ExitCode.OK if checked.ok else ExitCode.CHECKS_FAILED


@cli_command
def export(
    ui: Ui,
    file: ExportFileArg,
    policy: PolicyOpt,
    out: ExportOutOpt,
    file_format: OutFormatOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    workspace: WorkspaceOpt = "crmtool.duckdb",
    lock_timeout: LockTimeoutOpt = 60.0,
    key_file: KeyFileOpt = None,
) -> ExitCode:
    """Write a pseudonymised copy for another department; its manifest names the key by fingerprint."""
    from crmtool.privacy.export import export as do_export
    from crmtool.privacy.export import load_policy
    from crmtool.workspace import open_workspace

    ref = parse_as_of(as_of)
    load_policy(policy)  # a bad policy stops us before the workspace or key are touched
    _key_first(ui, workspace, key_file)
    with open_workspace(workspace, lock_timeout=lock_timeout, key_file=key_file) as ws:
        result = do_export(ws, file, policy, out, fmt=file_format.value if file_format else None, as_of=ref)
    d = result.as_dict()
    if fmt is OutputFormat.json:
        emit(ui, _json(d))
    else:
        ui.out.print(f"wrote {d['rows']} rows to {d['output']} (left out {d['dropped_erased']} erased people)")
        for col, action in d["columns"].items():
            ui.out.print(f"  {col:20} {action}")
        if d["dropped_columns"]:
            ui.out.print(f"  dropped: {', '.join(d['dropped_columns'])}")
        if d["personal_remaining"]:
            ui.out.print(
                "reminder: these columns still carry personal data: "
                + "; ".join(f"{c} ({why})" for c, why in d["personal_remaining"].items())
            )
        ui.out.print(f"key fingerprint {d['key_fingerprint']}; manifest {d['manifest']}")
    return ExitCode.OK


@cli_command
def pii(
    ui: Ui,
    file: Annotated[Path, typer.Argument(help="Export to inspect (CSV, Parquet, xlsx).")],
    fmt: FormatOpt = OutputFormat.text,
) -> ExitCode:
    """List the columns that look like personal data (by name and content), for writing a policy."""
    from crmtool.io.readers import load_file
    from crmtool.pii import pii_inventory
    from crmtool.workspace import open_workspace

    with open_workspace(":memory:") as ws:
        loaded = load_file(ws.con, file, "data_pii")
        inventory = pii_inventory(ws.con, loaded.table)
    if fmt is OutputFormat.json:
        emit(ui, _json({"input": str(file), "columns": inventory}))
        return ExitCode.OK
    ui.info(loaded.describe())
    for row in inventory:
        if row["category"]:
            ui.out.print(
                f"  {row['column']:24} {row['category']:12} by {row['evidence']}"
                + (f" ({row['share']:.0%} of values match)" if row["share"] else "")
            )
    others = [str(r["column"]) for r in inventory if not r["category"]]
    n = len(inventory) - len(others)
    ui.out.print(
        f"{n} of {len(inventory)} columns look like personal data"
        + (f"; not personal: {', '.join(others)}" if others else "")
    )
    return ExitCode.OK


@retention_app.command("apply")
@cli_command
def retention_apply(
    ui: Ui,
    rules: RulesOpt = [Path("rules")],  # noqa: B006 - typer needs a literal default
    out: EraseOutOpt = Path("out"),
    audit_log: AuditLogOpt = None,
    as_of: AsOfOpt = None,
    dataset: DatasetOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    workspace: WorkspaceOpt = "crmtool.duckdb",
    lock_timeout: LockTimeoutOpt = 60.0,
    key_file: KeyFileOpt = None,
) -> ExitCode:
    """Apply the 'retention' rules to cleaned tables; rewrite the cleaned export; audit counts and why."""
    from crmtool.privacy.erase import compact_workspace_file
    from crmtool.privacy.retention import apply_retention
    from crmtool.workspace import open_workspace

    ref = parse_as_of(as_of)
    _key_first(ui, workspace, key_file)
    with open_workspace(workspace, lock_timeout=lock_timeout, key_file=key_file) as ws:
        result = apply_retention(
            ws, rules, out_dir=out, audit_log=audit_log, as_of=ref, dataset=dataset
        )
    if workspace != ":memory:" and any(r["rows"] for r in result.rules):
        compact_workspace_file(Path(workspace), lock_timeout)  # old values leave the file's bytes too
    d = result.as_dict()
    if fmt is OutputFormat.json:
        emit(ui, _json(d))
    else:
        for r in d["rules"]:
            ui.out.print(
                f"{r['rule']} on {r['dataset']}: {r['action']} {r['rows']} rows "
                f"(last activity before {r['last_activity_before']}: {r['reason']})"
            )
        for path in d["outputs"]:
            ui.out.print(f"  new version of {path}")
        ui.out.print(f"audit {d['audit']} (head {d['audit_head'][:16]})")
    return ExitCode.OK
