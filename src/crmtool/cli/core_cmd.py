"""clean, validate, profile: the foundation commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crmtool.cli.common import (
    FileFormat,
    FormatOpt,
    OutputFormat,
    Ui,
    WorkspaceOpt,
    WorkspaceOptions,
    cli_command,
    finish,
    workspace_bundle,
)
from crmtool.errors import ExitCode
from crmtool.io.readers import ReadOptions
from crmtool.io.writers import OutputOptions

if TYPE_CHECKING:
    from crmtool.profile import Profile

InputArg = Annotated[Path, typer.Argument(help="Export to read: CSV (any common encoding/delimiter), Parquet or xlsx.",
                                          show_default=False)]
RulesOpt = Annotated[list[Path], typer.Option("--rules", "-r", help="Rule file or folder (repeatable).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for clean, rejects, manifest and audit log.")]
OutputFormatOpt = Annotated[FileFormat | None,
                            typer.Option("--output-format", help="csv, parquet or xlsx (default: as input).")]
AuditLogOpt = Annotated[Path | None, typer.Option(
    help="Audit log folder (default: the workspace's <stem>.audit/; OUT/crmtool.audit/ for :memory:).")]
EngineOpt = Annotated[str, typer.Option(
    # '\\[' keeps rich's markup from reading [spark] as a style and dropping it
    "--engine", help="Where the rules run: duckdb (embedded, default) or spark (pip install "
                     "'crmtool\\[spark]'; what is not yet ported is refused).")]
SparkMasterOpt = Annotated[str | None, typer.Option(
    "--spark-master", help="Spark master for --engine spark: local[2] (default), spark://host:7077, "
                           "yarn, or sc://host:15002 (Spark Connect; SPARK_REMOTE works too). "
                           "Under spark-submit, its --master unless this is given.")]
FailOnOpt = Annotated[str, typer.Option("--fail-on", help="error (default) or warning: which failures exit 1.")]
ShowValuesOpt = Annotated[bool, typer.Option("--show-values", help="Show top values of personal-data columns.")]
# validate changes nothing: a one-shot in-memory workspace unless one is named here (no
# CRMTOOL_WORKSPACE: a CI job's environment must not make validate take a lock or write a file)
ValidateWorkspace = Annotated[WorkspaceOptions, workspace_bundle("lock_timeout", workspace=(Annotated[str, typer.Option(
    "--workspace", "-w", help="Workspace to read history from (bounces, suppressions); default a one-shot "
    "in-memory one, so validate leaves no file, lock or key behind.")], ":memory:"))]
# profile reads one file: a one-shot in-memory workspace unless one is named
ProfileWorkspace = Annotated[WorkspaceOptions, workspace_bundle(workspace=(WorkspaceOpt, ":memory:"))]


def register(app: typer.Typer) -> None:
    app.command("clean")(clean)
    app.command("validate")(validate)
    app.command("profile")(profile)


#: ``validate`` reads and checks an input file of at most this size on one DuckDB thread: its
#: ~150 statements on a few rows each take 10-40% less without a second thread to hand work to
#: (a 10-row run with every example rule: ~20 ms of ~0.5 s; issue 19, 2026-12-03)
SMALL_INPUT_BYTES = 256 * 1024


def _render_outcomes(ui: Ui, report: dict[str, Any]) -> None:
    """The rules table; fits 80 columns (rule names fold rather than push the numbers off). Written
    without rich where it fits as it is and goes to no terminal (crmtool.cli.plain_console)."""
    rows = [(r["rule"], r["kind"], {"error": "err", "warning": "warn"}.get(r["severity"], r["severity"]),
             str(r["failed"]), str(r["fixed"]), str(r["rejected"]),
             r["status"].upper() if r["status"] != "pass" else "pass") for r in report["rules"]]
    if ui.out.plain():
        from crmtool.cli.plain_console import table_lines

        lines = table_lines([("rule", "left", 12), ("kind", "left", 0), ("sev", "left", 0), ("failed", "right", 0),
                             ("fixed", "right", 0), ("rejected", "right", 0), ("status", "left", 0)], rows,
                            ui.out.width_or_none() or 0)
        if lines is not None:
            ui.out.lines(lines)
            return
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False)
    table.add_column("rule", overflow="fold", min_width=12, ratio=3)
    table.add_column("kind", overflow="fold", ratio=2)
    table.add_column("sev", overflow="fold")
    for col in ("failed", "fixed", "rejected"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    ui.out.print(table)


def _render_failures(ui: Ui, report: dict[str, Any]) -> None:
    """Each failing or warning rule with its threshold and a few record keys (keys, never values)."""
    for r in report["rules"]:
        if r["status"] == "pass":
            continue
        share = f"{r['failed_share']:.1%}"
        ui.out.print(f"{r['status'].upper()} {r['rule']}: {r['failed']} of {r['checked']} rows ({share}), "
                     f"threshold {r['threshold']} ({r['source']})", soft_wrap=False, overflow="fold")
        if r.get("example_lines"):
            ui.out.print(f"  e.g. lines {', '.join(str(n) for n in r['example_lines'])}", soft_wrap=False)
        elif r.get("example_keys"):
            ui.out.print(f"  e.g. {report.get('record_key', 'key')} {', '.join(r['example_keys'])}", soft_wrap=False)


@cli_command
def clean(
    ui: Ui,
    input: InputArg,
    rules: RulesOpt = [Path("rules")],  # noqa: B006 - typer needs a literal default
    out: OutOpt = Path("out"),
    file_format: OutputFormatOpt = None,
    output: OutputOptions = OutputOptions(),
    read: ReadOptions = ReadOptions(),
    audit_log: AuditLogOpt = None,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
) -> ExitCode:
    """Apply the rules: write the cleaned export, the rejected rows with reasons, a manifest and the audit log."""
    from crmtool import api, report
    from crmtool.check_report import CheckReport

    _engine_usage(engine, spark_master)
    with where.open() as ws, \
            ui.progress("cleaning") as progress:
        result = api.clean(ws, input, rules, out, fmt=file_format.value if file_format else None,
                           audit_log=audit_log, progress=progress, output=output, read=read, engine=engine,
                           spark_master=spark_master)
    if result.key_created:
        ui.warn(f"created a new key for keyed hashes at {result.key_created} (owner-only); keep it safe "
                f"and use it for every run: audit entries and pseudonyms depend on it")
    summary = result.manifest
    c = summary["counts"]

    def text() -> None:
        ui.info(result.input.describe())
        _render_outcomes(ui, summary)
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
        status = str(result.status)
        ui.out.print(f"run {result.run_id}: {status.upper() if status != 'pass' else status}")

    junit = {**CheckReport.as_dict(result), **summary}  # the check report's fields, the manifest's rules
    return finish(ui, result, fmt, text, renderers={"junit": lambda: report.to_junit(junit)},
                  counts={k: c[k] for k in ("rows_in", "rows_out", "rejected") if k in c})


def _engine_usage(engine: str, spark_master: str | None) -> None:
    from crmtool.errors import UsageError

    if engine not in ("duckdb", "spark"):
        raise UsageError(f"--engine must be duckdb or spark, not {engine!r}")
    if spark_master and engine != "spark":
        raise UsageError("--spark-master needs --engine spark")


@cli_command
def validate(
    ui: Ui,
    input: InputArg,
    rules: RulesOpt = [Path("rules")],  # noqa: B006
    read: ReadOptions = ReadOptions(),
    fmt: FormatOpt = OutputFormat.text,
    fail_on: FailOnOpt = "error",
    where: ValidateWorkspace = WorkspaceOptions(":memory:"),
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
) -> ExitCode:
    """Check an export against the rules and change nothing: exit 1 when an error rule fails or more
    rows than dataset.max_unparseable cannot be parsed (--fail-on warning: warnings too)."""
    from crmtool import api, report
    from crmtool.cli import settle
    from crmtool.errors import UsageError
    from crmtool.io.readers import ensure_readable
    from crmtool.rulefile import load_rules
    from crmtool.status import Status

    if fail_on not in ("error", "warning"):
        raise UsageError(f"--fail-on must be error or warning, not {fail_on!r}")
    _engine_usage(engine, spark_master)
    # configuration and input errors come before any workspace is opened: they leave no file
    ruleset = load_rules(rules)
    settle()  # sqlglot, yaml, the rule kinds: imported for good
    ensure_readable(input)
    threads = 1 if engine == "duckdb" and input.stat().st_size <= SMALL_INPUT_BYTES else None
    with where.open(create_key=False, threads=threads) as ws, \
            ui.progress("validating") as progress:
        result = api.validate(ws, input, ruleset, progress=progress, read=read, engine=engine,
                              spark_master=spark_master)
    on_warning = fail_on == "warning"
    # --fail-on warning: a warning fails the run (status fail, exit 1) in every format
    verdict = Status.FAIL if result.failed or (on_warning and result.status is Status.WARN) else result.status
    payload = {**result.as_dict(), "status": str(verdict)}

    def text() -> None:
        ui.info(result.input.describe())
        _render_outcomes(ui, payload)
        _render_failures(ui, payload)
        ui.out.print(f"run {result.run_id}: {payload['status'].upper() if payload['status'] != 'pass' else 'pass'}")

    return finish(ui, result, fmt, text, status=verdict, counts={"rows": result.engine.rows},
                  renderers={"junit": lambda: report.to_junit(payload, fail_on_warning=on_warning)})


@cli_command
def profile(
    ui: Ui,
    input: InputArg,
    read: ReadOptions = ReadOptions(),
    fmt: FormatOpt = OutputFormat.text,
    show_values: ShowValuesOpt = False,
    top: Annotated[int, typer.Option(help="How many top values and shapes per column.")] = 5,
    where: ProfileWorkspace = WorkspaceOptions(":memory:"),
) -> ExitCode:
    """Rows, columns, inferred types, null share, exact distinct counts, min/max and lengths, top values
    and shapes; personal data marked."""
    from crmtool.io.readers import load_file
    from crmtool.profile import profile_table
    from crmtool.result import Fields
    from crmtool.workspace import dataset_name

    with where.open(create_key=False) as ws:
        loaded = load_file(ws.con, input, f"data_{dataset_name(input)}", read)
        prof = profile_table(ws.con, loaded.table, top=top, show_values=show_values)
    profiled = Fields({"input": str(input), "detected": {"format": loaded.format, "encoding": loaded.encoding,
                       "delimiter": loaded.delimiter}, "parse_rejects": len(loaded.parse_rejects), **prof.as_dict()})
    return finish(ui, profiled, fmt, lambda: _print_profile(ui, loaded.describe(), prof))


def _print_profile(ui: Ui, described: str, prof: Profile) -> None:
    """One line per column: type, nulls, distinct, lengths, bounds, top values, personal data."""
    from rich.table import Table

    ui.info(described)
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("column", overflow="fold", ratio=2)
    table.add_column("type", overflow="fold")
    for col in ("nulls", "distinct", "len"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("min / max", overflow="fold", ratio=2)
    table.add_column("top values", overflow="fold", ratio=3)
    table.add_column("pii", overflow="fold")
    for c in prof.columns:
        tops = ", ".join(f"{v} ({n})" for v, n in c.top_values) if c.top_values is not None else "(hidden)"
        lengths = f"{c.min_length}-{c.max_length}" if c.min_length is not None else ""
        bounds = f"{c.min_value} / {c.max_value}" if c.min_value is not None else (
            "(hidden)" if c.personal_data and c.min_length is not None else "")
        table.add_row(c.name, c.type, f"{c.null_share:.1%}", str(c.distinct), lengths, bounds[:40], tops[:60],
                      c.personal_data or "")
    ui.out.print(table)
