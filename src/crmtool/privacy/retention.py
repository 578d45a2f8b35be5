"""Retention: records inactive longer than a period are deleted or anonymised.

A ``retention`` rule names the date columns that show activity (orders, events, signup) and
optionally a consent channel whose consent date counts as a renewal; the most recent of them is
the last activity. People whose every row is older than ``as_of - inactive_for`` are deleted,
or anonymised (personal-data columns blanked), in the cleaned table of each dataset, in its
loaded and working copies (same ``_row``), in every other customer table and in every file
crmtool wrote that is still as written (:mod:`crmtool.privacy.retention_reach`). The decision is
recorded as keyed tokens, so the next load of the same export applies it again before anything
is persisted. The audit log says how many rows each rule touched and why (records as keyed
hashes), and the run records its metrics in ``crm_metrics``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, InputError, Location, UsageError
from crmtool.privacy.consent import DATE_FORMATS, date_sql, parse_consent
from crmtool.privacy.identity import id_sql
from crmtool.sqltext import ident
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.ruleset import RuleSet
    from crmtool.workspace import Run, Workspace

_PERIOD = re.compile(r"^\s*([1-9][0-9]*)\s*(y|years?|m|months?|d|days?)\s*$")


@dataclass(frozen=True)
class ActivityFile:
    """Another export whose dates count as a customer's activity (orders, events)."""

    path: Path
    key: str
    date_column: str
    date_formats: tuple[str, ...]
    loc: Location


@dataclass(frozen=True)
class RetentionRule:
    name: str
    description: str
    years: int
    months: int
    days: int
    activity_columns: tuple[str, ...]
    consent_renewal: str | None
    date_formats: tuple[str, ...]
    action: str  # delete | anonymise
    anonymise_columns: tuple[str, ...] | None
    undated: str  # keep | apply
    loc: Location
    activity_files: tuple[ActivityFile, ...] = ()

    def cutoff(self, as_of: date) -> str:
        """SQL date expression: activity before it is too old."""
        return (
            f"(DATE '{as_of.isoformat()}' - INTERVAL {self.years} YEAR - INTERVAL {self.months} MONTH "
            f"- INTERVAL {self.days} DAY)"
        )

    @property
    def period(self) -> str:
        parts = [f"{n} {u}" for n, u in ((self.years, "years"), (self.months, "months"), (self.days, "days")) if n]
        return " ".join(parts)


def parse_period(text: str) -> tuple[int, int, int]:
    match = _PERIOD.match(text)
    if not match:
        raise ValueError(text)
    n, unit = int(match.group(1)), match.group(2)[0]
    return (n, 0, 0) if unit == "y" else (0, n, 0) if unit == "m" else (0, 0, n)


def _resolve(path: str, rule_file: str) -> Path:
    """A path from a rule file: relative to the rule file's folder, else to the working folder."""
    given = Path(path)
    if given.is_absolute():
        return given
    beside = Path(rule_file).parent / given
    return beside if beside.exists() or not given.exists() else given


def _activity_table(ws: Workspace, spec: RetentionRule, name: str) -> list[tuple[Location, str]]:
    """Temp table ``name (k, last)``: the latest date per customer id over the rule's activity files."""
    from crmtool.errors import InputError
    from crmtool.privacy.identity import load_side, table_columns, to_temp_table

    problems: list[tuple[Location, str]] = []
    parts = []
    for i, src in enumerate(spec.activity_files):
        try:
            side, loaded = load_side(src.path, "f")
        except InputError as exc:
            problems.append((src.loc, f"retention '{spec.name}': {exc.message}"))
            continue
        try:
            have = {c for c, _t in table_columns(side, "f")}
            missing = [c for c in (src.key, src.date_column) if c not in have]
            if missing:
                problems.append(
                    (
                        src.loc,
                        f"retention '{spec.name}': column '{missing[0]}' is not in {src.path} "
                        f"(columns: {', '.join(loaded.columns)})",
                    )
                )
                continue
            to_temp_table(
                side,
                f"SELECT {id_sql(ident(src.key))} AS k, max({date_sql(ident(src.date_column), src.date_formats)}) "
                f"AS last FROM f GROUP BY 1",
                ws.con,
                f"{name}_{i}",
            )
            parts.append(f"SELECT * FROM {name}_{i}")
        finally:
            side.close()
    if not problems:
        union = " UNION ALL ".join(parts) or "SELECT NULL::VARCHAR AS k, NULL::DATE AS last"
        ws.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT k, max(last) AS last FROM ({union}) GROUP BY k")
    for i in range(len(spec.activity_files)):
        ws.con.execute(f"DROP TABLE IF EXISTS {name}_{i}")
    return problems


def parse_retention(ruleset: RuleSet) -> list[RetentionRule]:
    """The ``retention`` section of a rule set (already schema-checked); empty when absent."""
    if "retention" not in ruleset.sections:
        return []
    doc, data = ruleset.sections["retention"]
    rules = []
    for i, raw in enumerate(data):
        y, m, d = parse_period(raw["inactive_for"])
        rules.append(
            RetentionRule(
                raw["name"],
                raw.get("description", ""),
                y,
                m,
                d,
                tuple(raw["activity_columns"]),
                raw.get("consent_renewal"),
                tuple(raw.get("date_formats", DATE_FORMATS)),
                raw["action"],
                tuple(raw["anonymise_columns"]) if "anonymise_columns" in raw else None,
                raw.get("undated", "keep"),
                doc.loc(("retention", i)),
                tuple(
                    ActivityFile(
                        _resolve(src["path"], doc.file),
                        src["key"],
                        src["date_column"],
                        tuple(src.get("date_formats", DATE_FORMATS)),
                        doc.loc(("retention", i, "activity_files", j)),
                    )
                    for j, src in enumerate(raw.get("activity_files", ()))
                ),
            )
        )
    return rules


@dataclass
class RetentionResult:
    run_id: str
    as_of: date
    rules: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    unparseable: dict[str, int] = field(default_factory=dict)  # table.column -> values kept as not dates
    tables: dict[str, int] = field(default_factory=dict)  # customer table -> rows deleted or blanked
    files: dict[str, int] = field(default_factory=dict)  # registered file -> rows changed (-1: deleted)
    audit_path: str = ""
    audit_head: str = ""

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "rules": self.rules,
            "outputs": self.outputs,
            "unparseable_dates": self.unparseable,
            "rows_changed_by_table": self.tables,
            "subject_exports_deleted": sorted(p for p, n in self.files.items() if n < 0),
            "audit": self.audit_path,
            "audit_head": self.audit_head,
        }


def _clean_tables(ws: Workspace, dataset: str | None) -> list[str]:
    tables = [
        r[0]
        for r in ws.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_name LIKE 'clean\\_%' ESCAPE '\\' ORDER BY table_name"
        ).fetchall()
    ]
    if dataset:
        tables = [t for t in tables if t == f"clean_{dataset}"]
    if not tables:
        raise UsageError(
            "no cleaned table in the workspace" + (f" for dataset {dataset}" if dataset else ""),
            "run 'crmtool clean' on the export first, with the same --workspace",
        )
    return tables


def _check_config(ws: Workspace, ruleset: RuleSet, specs: list[RetentionRule], consent: dict[str, Any],
                  tables: list[str]) -> None:
    """Configuration problems against the data, all at once (:class:`ConfigError`)."""
    from crmtool.privacy.identity import table_columns

    problems: list[tuple[Location, str]] = []
    for table in tables:
        have = {c for c, _t in table_columns(ws.con, table)}
        for spec in specs:
            for col in (*spec.activity_columns, *(spec.anonymise_columns or ())):
                if col not in have:
                    problems.append((spec.loc, f"retention '{spec.name}': column '{col}' is not in {table}"))
            if spec.activity_files and not (ruleset.dataset.key and ruleset.dataset.key in have):
                problems.append((spec.loc, f"retention '{spec.name}': activity_files need dataset.key (the "
                                           f"customer id column of {table})"))
            if spec.consent_renewal and spec.consent_renewal not in consent:
                problems.append((spec.loc, f"retention '{spec.name}': no consent settings for channel "
                                           f"'{spec.consent_renewal}'"))
    for i, spec in enumerate(specs):
        if spec.activity_files:
            problems += _activity_table(ws, spec, f"__retention_activity_{i}")
    if problems:
        raise ConfigError(problems)


def apply_retention_rules(
    ws: Workspace,
    ruleset: RuleSet,
    *,
    out_dir: Path = Path("out"),
    audit_log: Path | None = None,
    as_of: date | None = None,
    dataset: str | None = None,
    allow_unparseable_dates: bool = False,
) -> RetentionResult:
    """Apply every retention rule of the loaded rule files ``ruleset`` to the cleaned tables of the
    workspace (or of ``dataset``); :func:`crmtool.apply_retention` is the same from rule-file paths.

    A date that cannot be parsed is never read as old: such rows are counted and reported, and
    unless ``allow_unparseable_dates`` the run stops with :class:`~crmtool.errors.InputError`
    (exit 2) before anything is changed; when allowed, those rows are kept. A person is due when
    every record of theirs is. Deleted and anonymised people are recorded (keyed tokens in
    ``privacy_retained`` / ``privacy_anonymised``), reached in every customer table and every
    registered file (:mod:`crmtool.privacy.retention_reach`), and the next load applies the
    same decision before anything is persisted."""
    from crmtool.audit import log_dir
    from crmtool.manifest import file_entry
    from crmtool.privacy import retention_reach as reach

    specs = parse_retention(ruleset)
    if not specs:
        raise UsageError("the rule files have no 'retention' section", "see rules/40-privacy.yaml")
    consent = parse_consent(ruleset)
    hasher = ws.hasher
    con = ws.con
    as_of = as_of or datetime.now(UTC).date()
    tables = _clean_tables(ws, dataset)
    _check_config(ws, ruleset, specs, consent, tables)
    bad = _unparseable(ws, tables, specs)
    unparseable = {f"{t}.{c}": n for (t, c), n in sorted(bad.items())}
    run = ws.start_run("retention")
    if bad and not allow_unparseable_dates:
        _stop_on_unparseable(ws, run, specs, unparseable)
    result = RetentionResult(run.run_id, as_of, unparseable=unparseable)
    entries: list[dict[str, Any]] = []
    blanks: dict[str, Any] = {}
    con.execute("CREATE OR REPLACE TEMP TABLE __retention_audit "
                "(type VARCHAR, rule VARCHAR, record VARCHAR, action VARCHAR)")
    reach.start(con)
    try:
        with run.timed("rules"):
            for table in tables:
                _apply_table(ws, run, table, specs, ruleset, consent, as_of, result, entries, blanks)
        _drop_activity(ws, specs)
        with run.timed("tables"):
            result.tables = reach.reach_tables(ws, ruleset.dataset.key, blanks, ruleset.dataset.personal_data,
                                               ruleset.dataset.not_personal)
        with run.timed("outputs"):
            result.files = reach.reach_files(ws, run, ruleset.dataset.key, blanks)
    finally:
        reach.finish(con)
    written = [Path(p) for p, n in result.files.items() if n > 0]
    result.outputs = [str(p) for p in written]
    # the audit log is opened once the work is done: a run that stops early leaves no trace in it
    audit_path = log_dir(ws, out_dir, audit_log)
    entries_written = _write_audit(ws, run, audit_path, as_of, entries, result)
    _write_retention_manifest(run, out_dir, ruleset.files, result, written, hasher.fingerprint, entries_written)
    if not ws.in_memory:
        con.execute("CHECKPOINT")
    _metrics(run, result)
    ws.finish_run(run, Status.PASS, 0, {"rules": result.rules,
                                        "outputs": [file_entry(p.resolve()) for p in written]})
    return result


def _stop_on_unparseable(ws: Workspace, run: Run, specs: list[RetentionRule], unparseable: dict[str, int]) -> None:
    """Record the unparseable dates, finish the run as an error and raise it: nothing has been changed."""
    listed = ", ".join(f"{k}: {n}" for k, n in unparseable.items())
    error = InputError(
        f"retention: {sum(unparseable.values())} date values cannot be parsed ({listed}); none is taken as old",
        "add the format to date_formats, fix the data, or pass --allow-unparseable-dates to keep those rows",
    )
    _drop_activity(ws, specs)
    run.step.metric("unparseable_dates", sum(unparseable.values()))
    for col, n in unparseable.items():
        run.step.metric("unparseable_dates", n, col)
    ws.finish_run(run, "error", int(error.exit_code), {"error": error.message})
    raise error


def _write_audit(ws: Workspace, run: Run, audit_path: Path, as_of: date, entries: list[dict[str, Any]],
                 result: RetentionResult) -> int:
    """Append the run, its records and the files it reached to the audit log and seal it; return the entry count."""
    from crmtool.audit import AuditWriter
    from crmtool.manifest import file_entry

    hasher = ws.hasher
    con = ws.con
    writer = AuditWriter(audit_path, run.run_id, hasher, command="retention", lock_timeout=ws.lock_timeout)
    writer.add({"type": "run", "command": "retention", "as_of": as_of.isoformat(),
                "key_fingerprint": hasher.fingerprint})
    for entry in entries:
        writer.add(entry)
    for path_s, n in sorted(result.files.items()):
        file = {"type": "retention_output", "path": path_s, "rows": max(n, 0)}
        file.update({"deleted": True} if n < 0 else {"sha256": file_entry(Path(path_s))["sha256"]})
        writer.add(file)
    writer.add_set(con, "retention_records", "SELECT * FROM __retention_audit", order_by="record, rule")
    con.execute("DROP TABLE IF EXISTS __retention_audit")
    result.audit_path = str(audit_path)
    result.audit_head = writer.seal({"counts": {r["rule"] + ":" + r["dataset"]: r["rows"] for r in result.rules}})
    return int(writer.count)


def _write_retention_manifest(run: Run, out_dir: Path, rule_files: list[Path], result: RetentionResult,
                              written: list[Path], key_fingerprint: str, audit_entries: int) -> None:
    """Write ``retention.manifest.json``: common keys (inputs: the rule files), rules, audit head."""
    from crmtool.manifest import common_keys, file_entry, write_manifest

    write_manifest(
        out_dir / "retention.manifest.json",
        {
            **common_keys(run, "retention", inputs=[file_entry(Path(f)) for f in rule_files],
                          outputs=[file_entry(p) for p in written], status=Status.PASS),
            "as_of": result.as_of.isoformat(),
            "rule_files": [str(f) for f in rule_files],
            "rules": result.rules,
            "key_fingerprint": key_fingerprint,
            "audit": {"path": result.audit_path, "head_sha256": result.audit_head, "entries": audit_entries},
        },
    )


def _drop_activity(ws: Workspace, specs: list[RetentionRule]) -> None:
    for i in range(len(specs)):
        ws.con.execute(f"DROP TABLE IF EXISTS __retention_activity_{i}")


def _metrics(run: Any, result: RetentionResult) -> None:
    """Rows and people deleted or anonymised, per rule and in all; unparseable dates; files rewritten."""
    step = run.step
    for action, word in (("delete", "deleted"), ("anonymise", "anonymised")):
        step.metric(f"rows_{word}", sum(r["rows"] for r in result.rules if r["action"] == action))
        step.metric(f"people_{word}", sum(r["people"] for r in result.rules if r["action"] == action))
    for r in result.rules:
        step.metric("rule_rows", r["rows"], f"{r['rule']}:{r['dataset']}")
    step.metric("unparseable_dates", sum(result.unparseable.values()))
    for col, n in result.unparseable.items():
        step.metric("unparseable_dates", n, col)
    for table, n in result.tables.items():
        step.metric("table_rows_changed", n, table)
    step.metric("outputs_rewritten", sum(1 for n in result.files.values() if n > 0))
    step.metric("subject_exports_deleted", sum(1 for n in result.files.values() if n < 0))


def _apply_table(ws: Workspace, run: Any, table: str, specs: list[RetentionRule], ruleset: RuleSet,
                 consent: dict[str, Any], as_of: date, result: RetentionResult, entries: list[dict[str, Any]],
                 blanks: dict[str, Any]) -> None:
    """Every rule on one cleaned table and its loaded and working copies (same ``_row``)."""
    from crmtool.identity.keys import detect_identity_columns, person_keys
    from crmtool.pii import detect_pii
    from crmtool.privacy import retention_reach as reach
    from crmtool.privacy.identity import table_columns

    con = ws.con
    key = ruleset.dataset.key
    ds = table[len("clean_"):]
    siblings = [t for t in (f"data_{ds}", f"work_{ds}", table) if ws.table_exists(t)]
    personal = set(detect_pii(con, table)) | set(ruleset.dataset.personal_data)
    personal -= set(ruleset.dataset.not_personal)
    have = {c for c, _t in table_columns(con, table)}
    has_key = bool(key) and key in have
    cols = detect_identity_columns(con, table, key)
    if cols.id and not con.execute(
            f"SELECT count(*) FROM {ident(table)} WHERE nullif(trim(CAST({ident(cols.id)} AS VARCHAR)), '') IS NULL"
    ).fetchall()[0][0]:  # every row has an id: the id and NIF name the person, emails and phones are not needed
        cols.emails, cols.phones = [], []
    keys = person_keys(con, table, cols)
    try:
        for n_spec, spec in enumerate(specs):
            key_sql = f"t.{ident(key or '')}" if has_key else "t._row"
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {reach.ROWS} AS SELECT t._row, "
                f"{id_sql(key_sql) if has_key else 'NULL'} AS kid, "
                f"crm_token(CAST({key_sql} AS VARCHAR)) AS record FROM {ident(table)} t "
                f"{_activity_join(spec, n_spec, key)} WHERE {_due_condition(spec, n_spec, consent, as_of)}"
            )
            people = reach.due_people(ws, table, keys, spec.action, spec.name)
            n = int(con.execute(f"SELECT count(*) FROM {reach.ROWS}").fetchall()[0][0])
            cutoff = con.execute(f"SELECT CAST({spec.cutoff(as_of)} AS DATE)").fetchall()[0][0]
            reason = spec.description or f"no activity in {spec.period}"
            blank = sorted(set(spec.anonymise_columns or personal - set(spec.activity_columns)) & have
                           - reach.STRUCTURAL)
            if n:
                reach.record_decision(ws, spec.action, spec.name, tuple(blank), as_of, run.run_id)
                _change_siblings(ws, table, siblings, key if has_key else None, spec.action, blank)
                if spec.action == "anonymise":
                    earlier = blanks.get(spec.name)
                    blanks[spec.name] = reach.Blank(
                        tuple(sorted(set(blank) | set(earlier.columns if earlier else ()))),
                        spec.anonymise_columns is None, spec.activity_columns)
            entries.append({"type": "retention", "rule": spec.name, "dataset": ds, "action": spec.action, "rows": n,
                            "people": people, "reason": reason, "last_activity_before": str(cutoff),
                            "period": spec.period})
            # one change set row per record, built in SQL (keyed hashes only)
            con.execute(f"INSERT INTO __retention_audit SELECT 'retention_record', ?, 'k:' || record, ? "
                        f"FROM {reach.ROWS}", [spec.name, spec.action])
            result.rules.append({"rule": spec.name, "dataset": ds, "action": spec.action, "rows": n,
                                 "people": people, "reason": reason, "last_activity_before": str(cutoff)})
    finally:
        keys.drop()
        con.execute(f"DROP TABLE IF EXISTS {reach.ROWS}")


def _activity_join(spec: RetentionRule, n_spec: int, key: str | None) -> str:
    if not spec.activity_files:
        return ""
    return f"LEFT JOIN __retention_activity_{n_spec} act ON act.k = {id_sql('t.' + ident(key or ''))}"


def _due_condition(spec: RetentionRule, n_spec: int, consent: dict[str, Any], as_of: date) -> str:
    """SQL over ``t``: the row's last activity is before the rule's cutoff (never an unparseable date)."""
    dates = [date_sql(f"t.{ident(c)}", spec.date_formats) for c in spec.activity_columns]
    if spec.activity_files:
        dates.append("act.last")
    if spec.consent_renewal:
        renewal = consent[spec.consent_renewal].date_sql("t")
        if renewal:
            dates.append(renewal)
    last = f"greatest({', '.join(dates)})" if len(dates) > 1 else dates[0]
    condition = f"{last} < {spec.cutoff(as_of)}"
    all_blank = " AND ".join(f"nullif(trim(CAST(t.{ident(c)} AS VARCHAR)), '') IS NULL"
                             for c in spec.activity_columns)
    if spec.undated == "apply":  # no activity date at all: every column blank (not unparseable)
        condition = f"({condition} OR ({last} IS NULL AND {all_blank}))"
    # a value that is there but not a date is never old: the row is kept
    return f"({condition}) AND NOT ({_unparseable_sql(spec, 't')})"


def _change_siblings(ws: Workspace, table: str, siblings: list[str], key: str | None, action: str,
                     blank: list[str]) -> None:
    """Delete or blank the due rows in the cleaned table and, where the key agrees, in its loaded
    and working copies (the same ``_row`` of another load is another customer)."""
    from crmtool.privacy import retention_reach as reach
    from crmtool.privacy.identity import table_columns

    con = ws.con
    for sib in siblings:
        sib_cols = {c for c, _t in table_columns(con, sib)}
        if sib != table and not (key and key in sib_cols):
            continue
        same = (
            f"_row IN (SELECT _row FROM {reach.ROWS})"
            if sib == table
            else f"EXISTS (SELECT 1 FROM {reach.ROWS} r WHERE r._row = {ident(sib)}._row "
            f"AND r.kid = {id_sql(f'{ident(sib)}.{ident(key or chr(0))}')})"
        )
        if action == "delete":
            con.execute(f"DELETE FROM {ident(sib)} WHERE {same}")
        else:
            sets = ", ".join(f"{ident(c)} = NULL" for c in blank if c in sib_cols)
            if sets:
                con.execute(f"UPDATE {ident(sib)} SET {sets} WHERE {same}")


def _unparseable_sql(spec: RetentionRule, alias: str) -> str:
    """SQL: true when an activity column holds text that is not a date in the rule's formats."""
    parts = [
        f"(nullif(trim(CAST({alias}.{ident(c)} AS VARCHAR)), '') IS NOT NULL "
        f"AND {date_sql(f'{alias}.{ident(c)}', spec.date_formats)} IS NULL)"
        for c in spec.activity_columns
    ]
    return " OR ".join(parts) or "false"


def _unparseable(ws: Workspace, tables: list[str], specs: list[RetentionRule]) -> dict[tuple[str, str], int]:
    """Per (table, activity column): values present that no date format of the rule reads."""
    out: dict[tuple[str, str], int] = {}
    for table in tables:
        for spec in specs:
            for c in spec.activity_columns:
                n = int(ws.con.execute(
                    f"SELECT count(*) FROM {ident(table)} t WHERE nullif(trim(CAST(t.{ident(c)} AS VARCHAR)), '') "
                    f"IS NOT NULL AND {date_sql(f't.{ident(c)}', spec.date_formats)} IS NULL"
                ).fetchall()[0][0])
                if n:
                    out[(table, c)] = max(out.get((table, c), 0), n)
    return out
