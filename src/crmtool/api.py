"""The public API: what every CLI command calls. A Python user can do all of it from here.

>>> from crmtool.api import clean
>>> from crmtool.workspace import open_workspace
>>> with open_workspace(":memory:") as ws:                      # doctest: +SKIP
...     result = clean(ws, Path("examples/clientes.csv"), [Path("rules")], Path("out"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.check_report import CheckReport, example_keys, parse_check
from crmtool.clean_audit import ChangeSetJob, RecordTokens, audit_value_sql, record_key_sql
from crmtool.emails.run import history_ready
from crmtool.engine import CHANGES, VIOLATIONS, EngineResult, RecordedAs, as_is, run_rules
from crmtool.errors import CrmToolError, UsageError
from crmtool.identity.load import load_without_erased
from crmtool.io.digests import FileDigests
from crmtool.io.readers import LoadResult, ReadOptions, file_sha256
from crmtool.io.stage import Stage, open_stage
from crmtool.io.writers import OutputOptions, write_query
from crmtool.pii import detect_pii
from crmtool.progress import Progress
from crmtool.rulefile import RuleSet, load_rules
from crmtool.schemas import RESULTS_SCHEMA_VERSION
from crmtool.sqltext import ident
from crmtool.workspace import Run, Workspace, dataset_name

if TYPE_CHECKING:  # clean's audit log, manifest and mailable flag: imported when clean runs (validate stays light)
    from crmtool.audit import AuditWriter
    from crmtool.keys import KeyedHasher
    from crmtool.privacy.mailable import MailableSummary


@dataclass
class CleanResult(CheckReport):
    command = "clean"
    outputs: dict[str, Path] = field(default_factory=dict)
    rows_out: int = 0
    rejected: int = 0
    audit_head: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    key_created: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The run's manifest: what ``clean --format json`` prints and ``OUT/manifest.json`` holds."""
        return dict(self.manifest)


def _load(ws: Workspace, run: Run, ruleset: RuleSet, input_path: Path, progress: Progress | None,
          read: ReadOptions | None = None) -> LoadResult:
    ds = dataset_name(input_path)
    with run.timed("load"):
        # people erased earlier never come back: their rows leave in memory, before the table is
        # written to the workspace, and only their count is reported (writing them to the rejects
        # file would undo the erasure)
        loaded = load_without_erased(ws, input_path, f"data_{ds}", ruleset.dataset.key, read=read)
    if progress:
        progress(loaded.describe())
    history_ready(ws)  # email_risk matches bounce and suppression history through crm_token()
    return loaded


def _check(ws: Workspace, run: Run, ruleset: RuleSet, loaded: LoadResult, progress: Progress | None,
           recorded_as: RecordedAs = as_is, *, copy_unchanged: bool = True, engine_name: str = "duckdb",
           spark_master: str | None = None) -> EngineResult:
    ds = dataset_name(loaded.path)
    with run.timed("rules"):
        if engine_name == "spark" and not copy_unchanged:  # validate: nothing comes back but the outcomes
            from crmtool.backend.on_spark import check_loaded_on_spark

            engine = check_loaded_on_spark(ws.con, loaded.table, ruleset, spark_master)
        elif engine_name == "spark":  # clean: the fixed rows, changes and violations come back to the workspace
            from crmtool.backend.on_spark import clean_loaded_on_spark

            engine = clean_loaded_on_spark(ws.con, loaded.table, ruleset, spark_master, work_table=f"work_{ds}",
                                           recorded_as=recorded_as)
        else:
            engine = run_rules(ws.con, loaded.table, ruleset, work_table=f"work_{ds}", progress=progress,
                               recorded_as=recorded_as, copy_unchanged=copy_unchanged)
    run.timings.update({f"rules.{k}": v for k, v in engine.phases.items()})
    _record_outcomes(ws, run, ds, engine)
    return engine


@contextmanager
def _recorded(ws: Workspace, run: Run) -> Iterator[None]:
    """A run that stops on an error is still finished in ``crm_runs`` (status ``error``)."""
    try:
        yield
    except CrmToolError as exc:
        ws.finish_run(run, "error", int(exc.exit_code), {"error": exc.message})
        raise


def _record_outcomes(ws: Workspace, run: Run, dataset: str, engine: EngineResult) -> None:
    rows = [(run.run_id, dataset, o.spec.name, o.spec.kind, o.spec.severity, o.checked, o.failed, o.fixed,
             o.rejected, o.status) for o in engine.outcomes]
    if rows:  # one statement (executemany runs one INSERT per rule: ~1 ms each)
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        ws.con.execute(f"INSERT INTO crm_rule_results VALUES {values}", [value for row in rows for value in row])


def _record_metrics(run: Run, engine: EngineResult, counts: dict[str, Any]) -> None:
    """The step's metrics: row counts, reject rate, mailable share, and per rule its failures
    and validity (share of checked rows that passed)."""
    step = run.step
    step.counts({k: v for k, v in counts.items()})
    step.share("reject_rate", counts.get("rejected"), counts.get("rows_in"))
    if "mailable" in counts:
        step.share("mailable_share", counts["mailable"], counts.get("rows_out"))
    for o in engine.outcomes:
        step.metric("rule_failed", o.failed, o.spec.name)
        step.metric("rule_validity", 1 - o.failed / o.checked if o.checked else None, o.spec.name)


def apply_fixes(con: Any, table: str, ruleset: RuleSet, work_table: str) -> None:
    """Run the fixes of ``ruleset`` over ``table`` into ``work_table`` and drop the engine's changes and
    violations tables: what ``dedupe_file(..., apply_fixes=...)`` needs to normalise before matching
    (the dedupe feature sits below the engine and does not import it)."""
    run_rules(con, table, ruleset, work_table=work_table)
    con.execute(f"DROP TABLE IF EXISTS {CHANGES}; DROP TABLE IF EXISTS {VIOLATIONS}")


def load_checked_rules(rules: list[Path] | Path) -> RuleSet:
    """Load rule files and parse every section they hold (dedupe, consent, retention), so that all
    their configuration errors are reported at once, before any data is read or output replaced.
    ``rules lint`` is this function."""
    from crmtool.errors import ConfigError
    from crmtool.rulefile import section_problems

    try:
        ruleset, problems = load_rules(rules), []
    except ConfigError as exc:  # the sections that are right on their own still get their checks
        ruleset, problems = _valid_sections(rules), list(exc.problems)
    problems.extend(section_problems(ruleset))
    if problems:
        raise ConfigError(problems, "see the rule-file reference in the README, or 'crmtool rules schema'")
    return ruleset


def _valid_sections(rules: list[Path] | Path) -> RuleSet:
    """The sections of rule files that load_rules refused, each kept when it passes its own schema."""
    from jsonschema import Draft202012Validator

    from crmtool.errors import ConfigError
    from crmtool.rulefile import rule_files
    from crmtool.sections import SECTIONS
    from crmtool.yamlspec import load_yaml

    ruleset = RuleSet()
    for file in [f for p in ([rules] if isinstance(rules, Path) else rules) for f in rule_files(p)]:
        try:
            doc = load_yaml(file)
        except ConfigError:
            continue
        for name, section in SECTIONS.items():
            if isinstance(doc.data, dict) and name in doc.data and name not in ruleset.sections \
                    and Draft202012Validator(section.schema).is_valid(doc.data[name]):
                ruleset.sections[name] = (doc, doc.data[name])
    return ruleset


def _section_column_problems(ruleset: RuleSet, columns: list[str]) -> None:
    """Columns (and SQL over columns) that the dedupe and consent sections need, checked against the
    loaded data before the rules run, so a clean run never replaces its outputs and then stops."""
    from crmtool.dedupe.spec import spec_from_ruleset, sql_problems
    from crmtool.errors import ConfigError
    from crmtool.privacy.consent import consent_column_problems, parse_consent

    problems = consent_column_problems(parse_consent(ruleset), columns)
    spec = spec_from_ruleset(ruleset)
    if spec is not None:
        have = [*columns, *(["mailable"] if "consent" in ruleset.sections else [])]
        problems += [(spec.loc, f"dedupe: column '{c}' is not in the data") for c in spec.columns() if c not in have]
        problems += sql_problems(spec, have)
    if problems:
        raise ConfigError(problems, "fix the rule files or check that the right export was given")


def _check_engine(ruleset: RuleSet, engine: str) -> None:
    """A usage error for an unknown engine; a configuration error for rules Spark cannot run yet."""
    if engine not in ("duckdb", "spark"):
        raise UsageError(f"--engine {engine!r}: choose duckdb or spark")
    if engine == "spark":
        from crmtool.backend.checks import unported_problems
        from crmtool.errors import ConfigError

        if unported := unported_problems(ruleset):
            raise ConfigError(unported, "run these rules on --engine duckdb (the default)")


def validate(ws: Workspace, input_path: Path, rules: list[Path] | RuleSet, *, progress: Progress | None = None,
             read: ReadOptions | None = None, engine: str = "duckdb", spark_master: str | None = None) -> CheckReport:
    """Run the rules without writing anything; ``report.failed`` tells whether an error rule failed
    (or more rows than ``dataset.max_unparseable`` could not be parsed). ``engine="spark"`` runs the
    fixes and checks on Apache Spark (``spark_master``, else ``SPARK_REMOTE``, else local[2]);
    rules of kinds not yet ported are a configuration error there (crmtool.backend.checks)."""
    # configuration errors stop us before any data is read
    ruleset = rules if isinstance(rules, RuleSet) else load_rules(rules)
    _check_engine(ruleset, engine)
    run = ws.start_run("validate")
    with _recorded(ws, run):
        loaded = _load(ws, run, ruleset, input_path, progress, read)
        engine_result = _check(ws, run, ruleset, loaded, progress, copy_unchanged=False,  # validate changes nothing
                               engine_name=engine, spark_master=spark_master)
        examples = example_keys(ws, ruleset, loaded, engine_result)
    parse = parse_check(ruleset, loaded, run.timings.get("load", 0.0))
    report = CheckReport(run.run_id, loaded, engine_result, ruleset, parse, examples, run.timings)
    run.step.input(input_path, engine_result.rows + len(loaded.parse_rejects))
    _record_metrics(run, engine_result, {"rows_in": engine_result.rows + len(loaded.parse_rejects),
                                         "rows_read": engine_result.rows, "parse_rejects": len(loaded.parse_rejects)})
    ws.finish_run(run, str(report.status), report.status.exit_code, report.as_dict())
    return report


def _output_format(loaded: LoadResult, fmt: str | None) -> str:
    if fmt:
        return fmt
    return "parquet" if loaded.format == "parquet" else "csv"


def _personal_columns(ws: Workspace, loaded: LoadResult, ruleset: RuleSet) -> set[str]:
    detected = set(detect_pii(ws.con, loaded.table))
    return (detected | set(ruleset.dataset.personal_data)) - set(ruleset.dataset.not_personal)


def _write_rejects(ws: Workspace, loaded: LoadResult, ruleset: RuleSet, target: Path, fmt: str,
                   output: OutputOptions) -> int:
    import pyarrow as pa

    con = ws.con
    cols = ", ".join(f"d.{ident(c)}" for c in loaded.columns)
    nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {ident(c)}" for c in loaded.columns)
    names = pa.array([r.name for r in ruleset.rules] or [""], pa.string())
    con.register("__rule_names", pa.table({"rule": pa.array(range(len(names)), pa.int32()), "name": names}))
    parse = pa.table({
        "line": pa.array([r.line for r in loaded.parse_rejects], pa.int64()),
        "reason": pa.array([r.reason for r in loaded.parse_rejects], pa.string()),
        "raw": pa.array([r.raw for r in loaded.parse_rejects], pa.string()),
    })
    con.register("__parse_rejects", parse)
    query = f"""
        WITH r AS (
            SELECT v._row, string_agg(DISTINCT n.name, ';' ORDER BY n.name) AS rules,
                   string_agg(DISTINCT n.name || ': ' || v.reason, '; ' ORDER BY n.name || ': ' || v.reason) AS reasons
            FROM {VIOLATIONS} v JOIN __rule_names n USING (rule) WHERE v.reject GROUP BY v._row)
        SELECT * FROM (
            SELECT CAST(NULL AS BIGINT) AS _row, line AS _line, 'parse' AS _rejected_by, reason AS _reasons,
                   {nulls}, raw AS _raw FROM __parse_rejects
            UNION ALL
            SELECT d._row, CAST(NULL AS BIGINT) AS _line, r.rules, r.reasons, {cols}, CAST(NULL AS VARCHAR)
            FROM {ident(loaded.table)} d JOIN r USING (_row))
        ORDER BY _line NULLS LAST, _row"""
    write_query(con, query, target, fmt, options=output)
    con.unregister("__parse_rejects")
    con.unregister("__rule_names")
    row = con.execute(f"SELECT count(DISTINCT _row) FROM {VIOLATIONS} WHERE reject").fetchall()[0]
    return int(row[0]) if row else 0


def output_names(input_path: Path, out_dir: Path, fmt: str) -> tuple[Path, Path]:
    """``<stem>.clean.<fmt>`` and ``<stem>.rejects.<fmt>``; never the input itself."""
    stem = input_path.name.rsplit(".", 1)[0] if "." in input_path.name else input_path.name
    clean_path, rejects_path = out_dir / f"{stem}.clean.{fmt}", out_dir / f"{stem}.rejects.{fmt}"
    source = input_path.resolve()
    for path in (clean_path, rejects_path):
        if path.resolve() == source:
            raise UsageError(f"--out {out_dir} would overwrite the input {input_path}", "choose another --out folder")
    return clean_path, rejects_path


def _mailable_per_person(ws: Workspace, ruleset: RuleSet, table: str, loaded: LoadResult, staged: Path,
                         outputs: dict[str, Path], fmt: str, output: OutputOptions, counts: dict[str, Any]) -> None:
    """After dedupe: recompute ``mailable`` of ``table`` with the clusters, give golden records the most
    restrictive consent of their records, and rewrite the staged clean and golden files (in ``staged``)
    when anything changed."""
    from crmtool.privacy.mailable import person_level_after_dedupe

    lost = person_level_after_dedupe(ws, table, ruleset, raw_table=loaded.table)
    counts["mailable_lost_to_cluster"] = lost
    counts["mailable"] = ws.con.execute(f"SELECT count(*) FROM {ident(table)} WHERE mailable").fetchall()[0][0]
    if lost and "clean" in outputs:
        cols = ", ".join(ident(c) for c in [*loaded.columns, "mailable"])
        write_query(ws.con, f"SELECT {cols} FROM {ident(table)} ORDER BY _row", staged / outputs["clean"].name, fmt,
                    options=output)
    if "golden" in outputs and ws.table_exists("dedupe_golden"):
        write_query(ws.con, "SELECT * FROM dedupe_golden", staged / outputs["golden"].name, fmt, options=output)


def clean(ws: Workspace, input_path: Path, rules: list[Path], out_dir: Path, *, fmt: str | None = None,
          encoding: str | None = None, neutralise_formulas: bool | None = None, audit_log: Path | None = None,
          progress: Progress | None = None, output: OutputOptions | None = None,
          read: ReadOptions | None = None, engine: str = "duckdb", spark_master: str | None = None) -> CleanResult:
    """Apply the rules and write ``<name>.clean``, ``<name>.rejects``, ``manifest.json`` and the audit log.

    Data outputs are staged in a private folder inside ``out_dir`` and moved into place only when
    all of them were written, so a failed run leaves no partial output. ``output`` says how every
    CSV looks (``encoding`` and ``neutralise_formulas`` override single settings of it); ``read``
    overrides what detection says about the input. ``engine="spark"`` runs the fixes and checks on
    Apache Spark (as :func:`validate` does) and writes the same outputs from what comes back.
    """
    output = output or OutputOptions()
    if encoding is not None:
        output = dataclasses.replace(output, encoding=encoding)
    if neutralise_formulas is not None:
        output = dataclasses.replace(output, neutralise_formulas=neutralise_formulas)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, expected a folder")
    ruleset = load_checked_rules(rules)  # configuration errors (sections too) stop us before any data is read
    _check_engine(ruleset, engine)
    run = ws.start_run("clean")
    records: list[RecordTokens] = []  # started once the export is loaded
    try:
        with _recorded(ws, run):
            return _clean(ws, run, ruleset, input_path, out_dir, fmt=fmt, output=output, read=read,
                          audit_log=audit_log, progress=progress, records=records, engine=(engine, spark_master))
    finally:
        for job in records:
            job.close()


@dataclass
class _CleanRun:
    """What clean's steps (read and check, write, seal and dedupe, record) hand on to the next."""

    ruleset: RuleSet
    input_path: Path
    out_dir: Path
    loaded: LoadResult
    engine: EngineResult
    hasher: KeyedHasher
    personal: set[str]
    fmt: str
    clean_path: Path
    rejects_path: Path
    mail: MailableSummary | None
    digest: FileDigests | None = None  # the input's SHA-256, read while the rules run
    inputs: list[dict[str, Any]] = field(default_factory=list)
    rule_files: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    stage: Stage | None = None  # the run's files, moved into ``out_dir`` only when every step has succeeded
    kept: str = ""  # the staging table (its name) of the kept rows: ``clean_<ds>`` once the files are in place

    @property
    def ds(self) -> str:
        """The dataset's name in the workspace (``clean_<ds>``)."""
        return dataset_name(self.input_path)


def _read_and_check(ws: Workspace, run: Run, ruleset: RuleSet, input_path: Path, out_dir: Path, *,
                    fmt: str | None, read: ReadOptions | None, progress: Progress | None,
                    records: list[RecordTokens], engine: tuple[str, str | None] = ("duckdb", None)) -> _CleanRun:
    """Load the export, start hashing its record keys, run the rules and work out who may be emailed."""
    from crmtool.privacy.mailable import mailable_for_ruleset

    loaded = _load(ws, run, ruleset, input_path, progress, read)
    _section_column_problems(ruleset, loaded.columns)
    hasher = ws.hasher  # fail on an unreadable key before the rules run
    # the audit log's record keys are hashed on a second connection while the rules run, and the
    # changes are recorded as the log writes them (personal values as keyed hashes)
    records.append(RecordTokens(ws, loaded.table, record_key_sql(ruleset)))
    digest = FileDigests([input_path])  # for the manifest and the run's header, read beside the rules
    personal = _personal_columns(ws, loaded, ruleset)
    result = _check(ws, run, ruleset, loaded, progress, recorded_as=audit_value_sql(personal),
                    engine_name=engine[0], spark_master=engine[1])
    fmt = _output_format(loaded, fmt)
    clean_path, rejects_path = output_names(input_path, out_dir, fmt)
    # with a consent section, the cleaned export says who may be emailed (consent granted, not
    # suppressed, bounced or erased); unknown consent is never taken as granted
    # (a run that deduplicates decides per person once its own clusters exist, not with the last run's)
    mail = (mailable_for_ruleset(ws, result.work_table, ruleset, raw_table=loaded.table,
                                 clusters="dedupe" not in ruleset.sections)
            if "consent" in ruleset.sections else None)
    return _CleanRun(ruleset, input_path, out_dir, loaded, result, hasher, personal, fmt, clean_path, rejects_path,
                     mail, digest)


def _remove_if_made_empty(out_dir: Path, created: bool) -> None:
    """Remove ``out_dir`` again when this run made it and left nothing in it."""
    if created and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def _open_audit(ws: Workspace, run: Run, state: _CleanRun, audit_log: Path | None) -> tuple[AuditWriter, Path, bool]:
    """Open the run's audit log (a log that cannot be continued, or is busy, stops the run before any
    output is made); returns the writer, the log's path and whether ``out_dir`` was made for it."""
    from crmtool.audit import AuditWriter, log_dir

    created = not state.out_dir.exists()
    audit_path = log_dir(ws, state.out_dir, audit_log)
    try:
        writer = AuditWriter(audit_path, run.run_id, state.hasher, command="clean", lock_timeout=ws.lock_timeout)
    except BaseException:
        _remove_if_made_empty(state.out_dir, created)  # made for the log of a :memory: workspace
        raise
    return writer, audit_path, created


def _keep_unrejected(ws: Workspace, state: _CleanRun, kept: str) -> None:
    """Copy the rows no rule rejected (with ``mailable``, when known) into ``kept`` and drop the working copy."""
    work = ident(state.engine.work_table)
    mail_col, mail_join = "", ""
    if state.mail is not None:
        mail_col, mail_join = ", m.mailable", f" JOIN {state.mail.table} m ON m._row = w._row"
    ws.con.execute(f"CREATE OR REPLACE TABLE {kept} AS SELECT w.*{mail_col} FROM {work} w{mail_join} "
                   f"ANTI JOIN (SELECT _row FROM {VIOLATIONS} WHERE reject) v ON w._row = v._row ORDER BY w._row")
    # the working copy (every row, normalised) has served: the kept rows are in the staging table,
    # the rejects are written from the loaded rows; its memory goes to the audit log
    ws.con.execute(f"DROP TABLE {work}")


def _start_change_set(ws: Workspace, run: Run, state: _CleanRun, writer: AuditWriter, records: list[RecordTokens],
                      progress: Progress | None) -> ChangeSetJob:
    """The run's header, then its change set started on a second cursor (:class:`ChangeSetJob`): it is
    written while the outputs are written; the run seals only after it."""
    from crmtool.manifest import file_entry

    loaded = state.loaded
    with run.timed("audit"):
        sha256 = None
        if state.digest is not None:  # read while the rules ran
            sha256 = state.digest.sha256(state.input_path)
            state.digest.close()
        state.inputs = [file_entry(state.input_path, sha256, format=loaded.format, encoding=loaded.encoding,
                                   delimiter=loaded.delimiter, rows=state.engine.rows + len(loaded.parse_rejects))]
        state.rule_files = [{"path": str(f), "sha256": file_sha256(f)} for f in state.ruleset.files]
        writer.add({"type": "run", "command": "clean", "input_sha256": state.inputs[0]["sha256"],
                    "key_fingerprint": state.hasher.fingerprint,
                    "rules_sha256": [r["sha256"] for r in state.rule_files], "erased_dropped": loaded.erased_dropped})
        if progress:
            progress("audit log")
        return ChangeSetJob(ws, writer, loaded, state.ruleset, records[0].table())


def _stage_outputs(ws: Workspace, run: Run, state: _CleanRun, job: ChangeSetJob, kept: str, stage: Stage,
                   output: OutputOptions, progress: Progress | None) -> None:
    """Write the clean and rejects files into ``stage`` and wait for the change set."""
    loaded = state.loaded
    if progress:
        progress("writing the clean and rejects files")
    with run.timed("write"):
        out_cols = ", ".join(ident(c) for c in [*loaded.columns, *(["mailable"] if state.mail else [])])
        write_query(ws.con, f"SELECT {out_cols} FROM {kept}", stage.path / state.clean_path.name, state.fmt,
                    options=output)
        state.rejected = _write_rejects(ws, loaded, state.ruleset, stage.path / state.rejects_path.name,
                                        state.fmt, output)
    with run.timed("audit"):  # what the change set takes beyond the outputs
        job.wait()
    run.timings["audit.background"] = round(job.seconds, 4)


def _write_outputs(ws: Workspace, run: Run, state: _CleanRun, writer: AuditWriter, created: bool,
                   records: list[RecordTokens], output: OutputOptions, progress: Progress | None) -> None:
    """Write the clean and rejects files into the run's stage (``state.stage``) and the audit change
    set beside them; the kept rows wait in ``state.kept`` for :func:`_publish`.

    On any failure the change set is stopped, and the staged files, the staging table and the run's
    audit entries are dropped.
    """
    out_dir = state.out_dir
    state.kept = f"__staging_clean_{state.ds}"
    job: ChangeSetJob | None = None
    try:
        state.stage = open_stage(out_dir)
        _keep_unrejected(ws, state, ident(state.kept))
        # started once the working copy is dropped (_keep_unrejected): started before, its first
        # parts ran beside the working copy and the staging sort, and clean's peak rose 0.2 GiB
        job = _start_change_set(ws, run, state, writer, records, progress)
        _stage_outputs(ws, run, state, job, ident(state.kept), state.stage, output, progress)
    except BaseException:
        if job is not None:
            job.cancel()  # before abort: no part of the change set may land after it
        _drop_staged(ws, state)
        writer.abort()  # the outputs did not land: neither do the run's audit entries
        _remove_if_made_empty(out_dir, created)
        raise


def _drop_staged(ws: Workspace, state: _CleanRun) -> None:
    """Remove the run's staged files and staging table: ``out_dir`` and ``clean_`` stay as they were."""
    if state.stage is not None:
        state.stage.remove()
        state.stage = None
    if state.kept:
        ws.con.execute(f"DROP TABLE IF EXISTS {ident(state.kept)}")


def _publish(ws: Workspace, state: _CleanRun, outputs: dict[str, Path]) -> None:
    """Move every staged file (clean, rejects and dedupe's) into ``out_dir``, then make the kept rows
    the workspace's ``clean_`` table: only once every step of the run has succeeded."""
    assert state.stage is not None
    state.stage.publish(outputs.values())
    state.stage.remove()
    state.stage = None
    clean_table = ident("clean_" + state.ds)
    ws.con.execute(f"DROP TABLE IF EXISTS {clean_table}; ALTER TABLE {ident(state.kept)} RENAME TO {clean_table}")
    state.kept = ""


def _clean_counts(ws: Workspace, state: _CleanRun) -> dict[str, Any]:
    """The run's counts: rows in, read, out and rejected, values fixed, erased rows dropped, and mailable rows."""
    engine, loaded = state.engine, state.loaded
    counts: dict[str, Any] = {"rows_in": engine.rows + len(loaded.parse_rejects), "rows_read": engine.rows,
                              "parse_rejects": len(loaded.parse_rejects), "rows_out": engine.rows - state.rejected,
                              "rejected": state.rejected + len(loaded.parse_rejects),
                              "fixed_values": sum(o.fixed for o in engine.outcomes),
                              "erased_dropped": loaded.erased_dropped}
    if state.mail is not None:
        clean_table = ident(state.kept)
        counts["mailable"] = ws.con.execute(f"SELECT count(*) FROM {clean_table} WHERE mailable").fetchall()[0][0]
        counts["not_mailable"] = dict(ws.con.execute(
            f"SELECT m.not_mailable_reason, count(*) FROM {clean_table} c JOIN {state.mail.table} m "
            f"ON m._row = c._row WHERE NOT c.mailable GROUP BY ALL ORDER BY ALL").fetchall())
    return counts


def _seal_and_dedupe(ws: Workspace, run: Run, state: _CleanRun, writer: AuditWriter, audit_path: Path,
                     counts: dict[str, Any], output: OutputOptions, progress: Progress | None
                     ) -> tuple[str, dict[str, Path], dict[str, Any]]:
    """Seal the run's audit entries, then deduplicate the kept rows when the rules have a dedupe
    section (its files staged beside clean's); returns the audit head, the data outputs (by the
    names they get in ``out_dir``) and the dedupe part of the manifest."""
    from crmtool.dedupe.entry import dedupe_ruleset

    assert state.stage is not None
    if progress:
        progress("writing the audit log")
    with run.timed("audit"):
        head = writer.seal({"counts": counts})
    outputs: dict[str, Path] = {"clean": state.clean_path, "rejects": state.rejects_path}
    extra: dict[str, Any] = {}
    # a dedupe section in the rules: deduplicate the cleaned rows; the dedupe run appends its own
    # sealed entries to the same audit log, so the head moves on
    with run.timed("dedupe"):
        deduped = dedupe_ruleset(ws, state.ruleset, state.kept, state.out_dir, fmt=state.fmt,
                                 audit_log=audit_path, progress=progress, run_command="dedupe", output=output,
                                 staged_in=state.stage.path)
    if deduped is not None:
        head = deduped.audit_head
        outputs.update(deduped.outputs)
        extra["dedupe"] = deduped.as_dict()
        if state.mail is not None:  # who may be emailed is decided per person, now that dedupe found them
            _mailable_per_person(ws, state.ruleset, state.kept, state.loaded, state.stage.path, outputs, state.fmt,
                                 output, counts)
    return head, outputs, extra


def _manifest_body(run: Run, state: _CleanRun, result: CleanResult, data_outputs: dict[str, Path],
                   extra: dict[str, Any], counts: dict[str, Any], writer: AuditWriter, audit_path: Path
                   ) -> dict[str, Any]:
    """The manifest of a clean run (before the step's own entries are added)."""
    from crmtool.manifest import common_keys, file_entry

    outputs = [file_entry(state.clean_path, rows=result.rows_out),
               file_entry(state.rejects_path, rows=counts["rejected"])]
    outputs += [file_entry(p) for name, p in data_outputs.items() if name not in ("clean", "rejects")]
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        **common_keys(run, "clean", inputs=state.inputs, outputs=outputs, status=result.status),
        "rule_files": state.rule_files,
        **extra,
        "counts": counts,
        "rules": result.rule_results(),
        "personal_data_columns": sorted(state.personal),
        "audit": {"path": str(audit_path), "head_sha256": result.audit_head, "entries": writer.count,
                  "aborted_runs": [e["aborted_run"] for e in writer.aborted]},
        "key_fingerprint": state.hasher.fingerprint,
    }


def _record_clean(ws: Workspace, run: Run, state: _CleanRun, result: CleanResult, body: dict[str, Any],
                  data_outputs: dict[str, Path], counts: dict[str, Any]) -> None:
    """Record the step (input, outputs, metrics), write the manifest and finish the run in ``crm_runs``."""
    from crmtool.manifest import write_manifest

    run.step.input(state.input_path, state.inputs[0]["rows"], sha256=state.inputs[0]["sha256"])
    for kind, entry in zip([*data_outputs], body["outputs"], strict=True):
        run.step.output(kind, Path(entry["path"]), entry.get("rows"), sha256=entry["sha256"])
    _record_metrics(run, state.engine, counts)
    body.update(run.step.manifest())
    result.manifest = write_manifest(result.outputs["manifest"], body)
    result.key_created = state.hasher.source if state.hasher.created else None
    status = str(result.status)
    ws.finish_run(run, status, result.status.exit_code, {"counts": counts, "outputs": body["outputs"]})


def _clean(ws: Workspace, run: Run, ruleset: RuleSet, input_path: Path, out_dir: Path, *, fmt: str | None,
           output: OutputOptions, read: ReadOptions | None, audit_log: Path | None,
           progress: Progress | None, records: list[RecordTokens],
           engine: tuple[str, str | None] = ("duckdb", None)) -> CleanResult:
    """Clean's steps in order: read and check, open the audit log, write, count, seal and dedupe, record.
    ``engine``: where the rules run (``duckdb`` or ``spark``) and the Spark master."""
    state = _read_and_check(ws, run, ruleset, input_path, out_dir, fmt=fmt, read=read, progress=progress,
                            records=records, engine=engine)
    writer, audit_path, created = _open_audit(ws, run, state, audit_log)
    _write_outputs(ws, run, state, writer, created, records, output, progress)
    try:
        try:
            counts = _clean_counts(ws, state)
        except BaseException:
            writer.abort()
            raise
        # a failure from here on (dedupe out of memory, a full disk) leaves out_dir and clean_ as they
        # were: the clean run's sealed entries stay in the log, but no file of this run is published
        head, outputs, extra = _seal_and_dedupe(ws, run, state, writer, audit_path, counts, output, progress)
        _publish(ws, state, outputs)
    except BaseException:
        _drop_staged(ws, state)
        _remove_if_made_empty(out_dir, created)
        raise
    data_outputs = dict(outputs)
    outputs.update({"audit": audit_path, "manifest": out_dir / "manifest.json"})
    parse = parse_check(ruleset, state.loaded, run.timings.get("load", 0.0))
    result = CleanResult(run.run_id, state.loaded, state.engine, ruleset, parse, {}, run.timings, outputs,
                         state.engine.rows - state.rejected, state.rejected, head)
    body = _manifest_body(run, state, result, data_outputs, extra, counts, writer, audit_path)
    _record_clean(ws, run, state, result, body, data_outputs, counts)
    return result
