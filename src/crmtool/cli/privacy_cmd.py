"""CLI commands of the privacy feature: suppress import|list|remove, erase, subject export, export, pii."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crmtool.cli.common import (
    FileFormat,
    FlagHelpGroup,
    FormatOpt,
    OutputFormat,
    Ui,
    WorkspaceOptions,
    cli_command,
    finish,
    parse_as_of,
)
from crmtool.errors import ExitCode
from crmtool.io.readers import ReadOptions
from crmtool.io.writers import OutputOptions

suppress_app = typer.Typer(cls=FlagHelpGroup, help="Suppression lists: unsubscribes, complaints, do-not-contact.",
                           no_args_is_help=True)
subject_app = typer.Typer(cls=FlagHelpGroup, help="Access and portability requests: everything held about one person.",
                          no_args_is_help=True)
retention_app = typer.Typer(cls=FlagHelpGroup, help="Delete or anonymise records kept past their retention period.",
                            no_args_is_help=True)
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
IdentifierOpt = Annotated[
    str | None, typer.Option("--identifier", help="An email, phone, NIF or customer id: is this person suppressed?")
]
IdentifierArg = Annotated[str, typer.Argument(help="The email, phone, NIF or customer id that opted in again.")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="email, phone, nif or id (default: guessed).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why the suppression ends (required).")]
DateOpt = Annotated[str, typer.Option("--date", help="When the person opted in again (YYYY-MM-DD, required).")]
SuppressAuditOpt = Annotated[Path | None, typer.Option(
    "--audit-log", help="Audit log folder to append to (default: the workspace's <stem>.audit/; out/crmtool.audit/ "
    "for :memory:).")]


def register(app: typer.Typer) -> None:
    """Add this feature's commands to ``app``."""
    app.add_typer(suppress_app, name="suppress")
    app.add_typer(retention_app, name="retention")
    app.add_typer(subject_app, name="subject")
    app.command("erase")(erase)
    app.command("export")(export)
    app.command("pii")(pii)


def _key_first(ui: Ui, where: WorkspaceOptions) -> None:
    """Load the key before the workspace is opened: a bad key stops the run before anything is written."""
    from crmtool.keys import load_key
    from crmtool.workspace import Workspace

    hasher = load_key(where.key_file, Workspace(where.path).default_key_file)
    if hasher.created:
        ui.warn(
            f"created a new key for keyed hashes at {hasher.source} (owner-only); keep it safe and use it "
            f"for every run: erasure proofs, suppressions and pseudonyms depend on it"
        )


@suppress_app.command("import")
@cli_command
def suppress_import(
    ui: Ui,
    file: SuppressFileArg,
    kind: KindOpt,
    source: SourceOpt = None,
    read: ReadOptions = ReadOptions(),
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
    audit_log: SuppressAuditOpt = None,
) -> ExitCode:
    """Store suppression entries as keyed tokens; every contact list leaves these people out."""
    from crmtool.privacy.suppress import import_suppressions

    _key_first(ui, where)
    with where.open() as ws:
        result = import_suppressions(ws, file, kind, source=source, audit_log=audit_log, read=read)

    def text() -> None:
        d = result.as_dict()
        added = ", ".join(f"{k} {v}" for k, v in sorted(d["added"].items())) or "none"
        ui.out.print(
            f"{file.name}: {d['rows']} rows, {d['identifiers']} identifiers; added {d['added_total']} "
            f"({added}), already present {d['already_present']}, blank {d['unusable']}, "
            f"unparseable rows {d['parse_rejects']}"
        )

    return finish(ui, result, fmt, text)


@suppress_app.command("list")
@cli_command
def suppress_list(
    ui: Ui,
    identifier: IdentifierOpt = None,
    kind: TypeOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Count suppression entries by kind, channel and source (no values); --identifier checks one person."""
    from crmtool.privacy.suppress_manage import list_suppressions

    with where.open() as ws:
        listing = list_suppressions(ws, identifier, kind)

    def text() -> None:
        d = listing.as_dict()
        for g in d["groups"]:
            dates = f"{g['first']}..{g['last']}"
            ui.out.print(f"{g['kind']:<15} {g['channel']:<6} {g['entries']:>8}  {g['source']} ({dates})")
        ui.out.print(f"{d['entries']} entries")
        if "identifier" in d:
            who = d["identifier"]
            kinds = ", ".join(sorted({e["kind"] for e in who["entries"]}))
            ui.out.print(f"identifier: {'suppressed (' + kinds + ')' if who['suppressed'] else 'not suppressed'}")

    return finish(ui, listing, fmt, text)


@suppress_app.command("remove")
@cli_command
def suppress_remove(
    ui: Ui,
    identifier: IdentifierArg,
    reason: ReasonOpt,
    date_: DateOpt,
    kind: TypeOpt = None,
    audit_log: SuppressAuditOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Re-opt-in: end the suppressions of one person (never an erasure), with --reason and --date audited."""
    from datetime import date

    from crmtool.errors import UsageError
    from crmtool.privacy.suppress_manage import remove_suppressions

    try:
        when = date.fromisoformat(date_)
    except ValueError:
        raise UsageError(f"--date {date_!r} is not a date", "write it as YYYY-MM-DD") from None
    _key_first(ui, where)
    with where.open() as ws:
        result = remove_suppressions(ws, identifier, reason=reason, opted_in_on=when, kind=kind,
                                     audit_log=audit_log)

    def text() -> None:
        ui.out.print(f"removed {result.removed} suppression entries (audited in {result.audit_path})")
        if result.kept_erasure:
            ui.warn("this person was erased: the erasure stays, they are never mailed again")

    return finish(ui, result, fmt, text)


@subject_app.command("export")
@cli_command
def subject_export_cmd(
    ui: Ui,
    identifier: Annotated[str, typer.Argument(help="The person's email, phone, NIF/NIE or customer id.")],
    kind: TypeOpt = None,
    out: EraseOutOpt = Path("out"),
    output: OutputOptions = OutputOptions(),
    audit_log: AuditLogOpt = None,
    key: KeyColumnOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Everything crmtool holds about one person (tables, files it wrote, registers) as JSON and CSV."""
    from crmtool.privacy.subject import subject_export

    _key_first(ui, where)
    with where.open() as ws:
        result = subject_export(ws, identifier, kind=kind, out_dir=out, audit_log=audit_log, key=key,
                                output=output)

    def text() -> None:
        rows = sum(result.tables.values()) + sum(result.files.values())
        ui.out.print(f"{rows} rows from {len(result.tables)} tables and {len(result.files)} files; "
                     f"{sum(result.registers.values())} register entries")
        ui.out.print(f"wrote {result.json_path} and {result.csv_path} (owner-only)")

    return finish(ui, result, fmt, text)


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
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Right to be forgotten: remove people everywhere (--requests), or prove it was done (--check)."""
    from crmtool.errors import UsageError
    from crmtool.privacy.erase import check_erasures, compact_workspace_file
    from crmtool.privacy.erase import erase as do_erase

    if (requests is None) == (check is None):
        raise UsageError("give exactly one of --requests FILE or --check FILE")
    _key_first(ui, where)
    from crmtool.audit import CHAIN, log_dir

    with where.open() as ws:
        log = log_dir(ws, out, audit_log)
        if requests is not None:
            result = do_erase(ws, requests, out_dir=out, audit_log=log, key=key, outputs=list(also))
        else:
            assert check is not None
            checked = check_erasures(ws, check, audit_log=log if (log / CHAIN).is_file() else None, key=key)
    if requests is not None and where.path != ":memory:" and any(result.rows_removed.values()):
        compact_workspace_file(Path(where.path), where.lock_timeout)  # deleted rows leave the file's bytes too
    if requests is not None:  # exit 1 unless every request could be carried out (or was proven)
        return finish(ui, result, fmt, lambda: _print_erase(ui, result))
    return finish(ui, checked, fmt, lambda: _print_check(ui, checked))


def _print_erase(ui: Ui, result: Any) -> None:
    """Per request: erased, not found or ambiguous."""
    d = result.as_dict()
    for r in d["per_request"]:
        why = f" ({r['reason']})" if r["reason"] else ""
        extra = f", {r['rows_removed']} rows" if r["status"] == "erased" else ""
        extra += f", {r['people']} different people: nothing done" if r["status"] == "ambiguous" else ""
        if r["status"] == "already_erased":
            extra += f" on {r['erased_at']} by run {r['erased_by_run']}"
        status = "already erased" if r["status"] == "already_erased" else r["status"]
        ui.out.print(f"{r['request']}: {status}{extra}{why}")
    ui.out.print(
        f"{d['requests']} requests: {d['erased']} erased, "
        + (f"{d['already_erased']} already erased earlier, " if d["already_erased"] else "")
        + f"{d['not_found']} not found (recorded, so they never come back), {d['ambiguous']} ambiguous"
    )
    for table, n in sorted(d["rows_removed"].items()):
        ui.out.print(f"  removed {n:>7} rows from {table}")
    for path, n in sorted(d["outputs_rewritten"].items()):
        ui.out.print(f"  rewrote {path} without {n} rows")
    for path in d["subject_exports_deleted"]:
        ui.out.print(f"  deleted {path} (a subject export of an erased person)")
    for path in d["outputs_changed_not_rewritten"]:
        ui.warn(f"{path} was changed since crmtool wrote it: not rewritten, check it by hand")
    ui.out.print(
        f"audit {d['audit']} (head {d['audit_head'][:16]}), manifest {d['manifest']}, key {d['key_fingerprint']}"
    )


def _print_check(ui: Ui, checked: Any) -> None:
    """Per request: proven, or what is missing."""
    payload = checked.as_dict()
    for r in payload["requests"]:
        earlier = f" (erased on {r['erased_at']} by run {r['erased_by_run']})" if r["erased_at"] else ""
        ui.out.print(f"{r['request']}: {'proven' if r['ok'] else 'NOT proven: ' + '; '.join(r['reasons'])}"
                     f"{earlier}")
    ui.out.print(
        f"{payload['proven']}/{len(payload['requests'])} requests proven, {payload['files_checked']} files checked"
        + ("" if payload["audit"] else " (no audit log checked)")
    )


@cli_command
def export(
    ui: Ui,
    file: ExportFileArg,
    policy: PolicyOpt,
    out: ExportOutOpt,
    file_format: OutFormatOpt = None,
    as_of: AsOfOpt = None,
    output: OutputOptions = OutputOptions(),
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Write a pseudonymised copy for another department; its manifest names the key by fingerprint."""
    from crmtool.privacy.export import export as do_export
    from crmtool.privacy.export import load_policy

    ref = parse_as_of(as_of)
    load_policy(policy)  # a bad policy stops us before the workspace or key are touched
    _key_first(ui, where)
    with where.open() as ws:
        result = do_export(ws, file, policy, out, fmt=file_format.value if file_format else None, as_of=ref,
                           output=output)

    def text() -> None:
        d = result.as_dict()
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

    return finish(ui, result, fmt, text)


@cli_command
def pii(
    ui: Ui,
    file: Annotated[Path, typer.Argument(help="Export to inspect (CSV, Parquet, xlsx).")],
    read: ReadOptions = ReadOptions(),
    fmt: FormatOpt = OutputFormat.text,
) -> ExitCode:
    """List the columns that look like personal data (by name and content), for writing a policy."""
    from crmtool.io.readers import load_file
    from crmtool.pii import pii_inventory
    from crmtool.result import Fields
    from crmtool.workspace import open_workspace

    with open_workspace(":memory:") as ws:
        loaded = load_file(ws.con, file, "data_pii", read)
        inventory = pii_inventory(ws.con, loaded.table)
    return finish(ui, Fields({"input": str(file), "columns": inventory}), fmt,
                  lambda: _print_inventory(ui, loaded.describe(), inventory))


def _print_inventory(ui: Ui, described: str, inventory: list[dict[str, Any]]) -> None:
    """Each column that looks like personal data, by what evidence; then the count."""
    ui.info(described)
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


@retention_app.command("apply")
@cli_command
def retention_apply(
    ui: Ui,
    rules: RulesOpt = [Path("rules")],  # noqa: B006 - typer needs a literal default
    out: EraseOutOpt = Path("out"),
    audit_log: AuditLogOpt = None,
    as_of: AsOfOpt = None,
    dataset: DatasetOpt = None,
    allow_unparseable_dates: Annotated[bool, typer.Option(
        "--allow-unparseable-dates", help="Keep rows whose activity date cannot be read, instead of stopping (exit 2)."
    )] = False,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Apply the 'retention' rules to cleaned tables; rewrite the cleaned export; audit counts and why."""
    from crmtool.privacy.erase import compact_workspace_file
    from crmtool.rule_paths import apply_retention

    ref = parse_as_of(as_of)
    _key_first(ui, where)
    with where.open() as ws:
        result = apply_retention(
            ws, rules, out_dir=out, audit_log=audit_log, as_of=ref, dataset=dataset,
            allow_unparseable_dates=allow_unparseable_dates,
        )
    if where.path != ":memory:" and any(r["rows"] for r in result.rules):
        compact_workspace_file(Path(where.path), where.lock_timeout)  # old values leave the file's bytes too

    def text() -> None:
        d = result.as_dict()
        for r in d["rules"]:
            ui.out.print(
                f"{r['rule']} on {r['dataset']}: {r['action']} {r['rows']} rows "
                f"(last activity before {r['last_activity_before']}: {r['reason']})"
            )
        for path in d["outputs"]:
            ui.out.print(f"  new version of {path}")
        for path in d["subject_exports_deleted"]:
            ui.out.print(f"  deleted {path} (the subject export of a person retention deleted)")
        for col, n in d["unparseable_dates"].items():
            ui.warn(f"{col}: {n} values are not dates: those rows were kept (--allow-unparseable-dates)")
        ui.out.print(f"audit {d['audit']} (head {d['audit_head'][:16]})")

    return finish(ui, result, fmt, text)
