"""Retention: records inactive longer than a period are deleted or anonymised.

A ``retention`` rule names the date columns that show activity (orders, events, signup) and
optionally a consent channel whose consent date counts as a renewal; the most recent of them is
the last activity. Rows whose last activity is older than ``as_of - inactive_for`` are deleted,
or anonymised (personal-data columns blanked), in the cleaned table of each dataset and in its
loaded and working copies (same ``_row``). A new version of the cleaned export is written, and
the audit log says how many rows each rule touched and why (records as keyed hashes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, InputError, Location, UsageError
from crmtool.kinds.base import ident
from crmtool.privacy.consent import DATE_FORMATS, date_sql, parse_consent
from crmtool.privacy.identity import id_sql

if TYPE_CHECKING:
    from crmtool.rulefile import RuleSet
    from crmtool.workspace import Workspace

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
    audit_path: str = ""
    audit_head: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "rules": self.rules,
            "outputs": self.outputs,
            "unparseable_dates": self.unparseable,
            "audit": self.audit_path,
            "audit_head": self.audit_head,
        }


def _clean_output_for(ws: Workspace, dataset: str) -> Path | None:
    """The cleaned export of ``dataset`` the newest run wrote, still as it wrote it.

    Several day folders may hold a cleaned export of the same dataset; the workspace's cleaned
    table is the one the latest run made, so that run's file gets the new version, never an
    older day's file. Files come from the output registry (newest registration last).
    """
    from crmtool.io.readers import file_sha256

    seen: set[Path] = set()
    for rec in reversed(ws.outputs(kinds=("clean",))):
        path = rec.path.resolve()
        if path in seen:
            continue  # an older registration of a path registered again later
        seen.add(path)
        stem = path.name.split(".")[0]
        if (re.sub(r"[^0-9a-zA-Z]+", "_", stem).strip("_").lower() == dataset and path.is_file()
                and file_sha256(path) == rec.sha256):
            return path
    return None


def apply_retention(
    ws: Workspace,
    rules: list[Path],
    *,
    out_dir: Path = Path("out"),
    audit_log: Path | None = None,
    as_of: date | None = None,
    dataset: str | None = None,
    allow_unparseable_dates: bool = False,
) -> RetentionResult:
    """Apply every retention rule to the cleaned tables of the workspace (or of ``dataset``).

    A date that cannot be parsed is never read as old: such rows are counted and reported, and
    unless ``allow_unparseable_dates`` the run stops with :class:`~crmtool.errors.InputError`
    (exit 2) before anything is changed; when allowed, those rows are kept. Deleted people are
    recorded (keyed tokens in ``privacy_retained``), so the next load drops them again."""
    from crmtool.audit import AuditWriter, log_dir
    from crmtool.io.writers import write_query
    from crmtool.manifest import file_entry, write_manifest
    from crmtool.pii import detect_pii
    from crmtool.privacy.identity import table_columns
    from crmtool.rulefile import load_rules

    ruleset = load_rules(rules)
    specs = parse_retention(ruleset)
    if not specs:
        raise UsageError("the rule files have no 'retention' section", "see rules/40-privacy.yaml")
    consent = parse_consent(ruleset)
    hasher = ws.hasher
    con = ws.con
    as_of = as_of or datetime.now(UTC).date()
    tables = [
        r[0]
        for r in con.execute(
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
    # configuration problems against the data, all at once
    problems: list[tuple[Location, str]] = []
    for table in tables:
        have = {c for c, _t in table_columns(con, table)}
        for spec in specs:
            for col in (*spec.activity_columns, *(spec.anonymise_columns or ())):
                if col not in have:
                    problems.append((spec.loc, f"retention '{spec.name}': column '{col}' is not in {table}"))
            if spec.activity_files and not (ruleset.dataset.key and ruleset.dataset.key in have):
                problems.append(
                    (
                        spec.loc,
                        f"retention '{spec.name}': activity_files need dataset.key (the customer id column of {table})",
                    )
                )
            if spec.consent_renewal and spec.consent_renewal not in consent:
                problems.append(
                    (
                        spec.loc,
                        f"retention '{spec.name}': no consent settings for channel '{spec.consent_renewal}'",
                    )
                )
    for i, spec in enumerate(specs):
        if spec.activity_files:
            problems += _activity_table(ws, spec, f"__retention_activity_{i}")
    if problems:
        raise ConfigError(problems)
    bad = _unparseable(ws, tables, specs)
    if bad and not allow_unparseable_dates:
        listed = ", ".join(f"{t}.{c}: {n}" for (t, c), n in sorted(bad.items()))
        raise InputError(
            f"retention: {sum(bad.values())} date values cannot be parsed ({listed}); none is taken as old",
            "add the format to date_formats, fix the data, or pass --allow-unparseable-dates to keep those rows",
        )
    run = ws.start_run("retention")
    key = ruleset.dataset.key
    result = RetentionResult(run.run_id, as_of)
    audit_path = log_dir(ws, out_dir, audit_log)
    # the log is opened (locked, its pending note written) only when the run has its entries:
    # a retention that fails on the way leaves the log untouched
    writer = AuditWriter(audit_path, run.run_id, hasher, command="retention", lock_timeout=ws.lock_timeout,
                         defer=True)
    writer.add(
        {
            "type": "run",
            "command": "retention",
            "as_of": as_of.isoformat(),
            "key_fingerprint": hasher.fingerprint,
        }
    )
    con.execute("CREATE OR REPLACE TEMP TABLE __retention_audit "
                "(type VARCHAR, rule VARCHAR, record VARCHAR, action VARCHAR)")
    written: list[Path] = []
    for table in tables:
        ds = table[len("clean_") :]
        siblings = [t for t in (f"data_{ds}", f"work_{ds}", table) if ws.table_exists(t)]
        personal = set(detect_pii(con, table)) | set(ruleset.dataset.personal_data)
        personal -= set(ruleset.dataset.not_personal)
        changed = False
        for spec in specs:
            dates = [date_sql(f"t.{ident(c)}", spec.date_formats) for c in spec.activity_columns]
            activity_join = ""
            if spec.activity_files:
                n_spec = specs.index(spec)
                activity_join = (
                    f"LEFT JOIN __retention_activity_{n_spec} act ON act.k = {id_sql('t.' + ident(key or ''))}"
                )
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
            condition = f"({condition}) AND NOT ({_unparseable_sql(spec, 't')})"
            has_key = bool(key) and key in {c for c, _t in table_columns(con, table)}
            key_sql = f"t.{ident(key or '')}" if has_key else "t._row"
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE __retention_rows AS SELECT t._row, "
                f"{id_sql(key_sql) if has_key else 'NULL'} AS kid, "
                f"crm_token(CAST({key_sql} AS VARCHAR)) AS record FROM {ident(table)} t {activity_join} "
                f"WHERE {condition}"
            )
            n = int(con.execute("SELECT count(*) FROM __retention_rows").fetchall()[0][0])
            cutoff = con.execute(f"SELECT CAST({spec.cutoff(as_of)} AS DATE)").fetchall()[0][0]
            reason = spec.description or f"no activity in {spec.period}"
            if n:
                changed = True
                for sib in siblings:
                    # the same _row in data_/work_ is the same person only when the key agrees too
                    sib_has_key = has_key and key in {c for c, _t in table_columns(con, sib)}
                    if sib != table and not sib_has_key:
                        continue
                    sib_key = id_sql(f"{ident(sib)}.{ident(key or '')}")
                    same = (
                        "_row IN (SELECT _row FROM __retention_rows)"
                        if sib == table
                        else f"EXISTS (SELECT 1 FROM __retention_rows r WHERE r._row = {ident(sib)}._row "
                        f"AND r.kid = {sib_key})"
                    )
                    if spec.action == "delete":
                        if sib == table:
                            _record_retained(ws, table, key, spec.name, as_of, run.run_id)
                        con.execute(f"DELETE FROM {ident(sib)} WHERE {same}")
                    else:
                        blank = set(spec.anonymise_columns or personal - set(spec.activity_columns))
                        have = {c for c, _t in table_columns(con, sib)}
                        sets = ", ".join(f"{ident(c)} = NULL" for c in sorted(blank & have))
                        if sets:
                            con.execute(f"UPDATE {ident(sib)} SET {sets} WHERE {same}")
            writer.add(
                {
                    "type": "retention",
                    "rule": spec.name,
                    "dataset": ds,
                    "action": spec.action,
                    "rows": n,
                    "reason": reason,
                    "last_activity_before": str(cutoff),
                    "period": spec.period,
                }
            )
            # one change set row per record, built in SQL (keyed hashes only)
            con.execute(
                "INSERT INTO __retention_audit SELECT 'retention_record', ?, 'k:' || record, ? FROM __retention_rows",
                [spec.name, spec.action],
            )
            result.rules.append(
                {
                    "rule": spec.name,
                    "dataset": ds,
                    "action": spec.action,
                    "rows": n,
                    "reason": reason,
                    "last_activity_before": str(cutoff),
                }
            )
        con.execute("DROP TABLE IF EXISTS __retention_rows")
        # the new version replaces the file the workspace's cleaned table was last written to
        # (each table's own, and only once per table)
        target = _clean_output_for(ws, ds)
        if changed and target is not None:
            cols = ", ".join(ident(c) for c, _t in table_columns(con, table) if c != "_row")
            fmt = "parquet" if target.suffix == ".parquet" else "csv"
            write_query(con, f"SELECT {cols} FROM {ident(table)} ORDER BY _row", target, fmt)
            written.append(target)
            ws.register_output(run, "clean", target)
            writer.add({"type": "retention_output", "path": str(target), "sha256": file_entry(target)["sha256"]})
    for i in range(len(specs)):
        con.execute(f"DROP TABLE IF EXISTS __retention_activity_{i}")
    written += _retained_outputs(ws, run, key)
    result.outputs = [str(p) for p in written]
    result.unparseable = {f"{t}.{c}": n for (t, c), n in sorted(bad.items())}
    result.audit_path = str(audit_path)
    writer.add_set(con, "retention_records", "SELECT * FROM __retention_audit", order_by="record, rule")
    con.execute("DROP TABLE IF EXISTS __retention_audit")
    result.audit_head = writer.seal({"counts": {r["rule"] + ":" + r["dataset"]: r["rows"] for r in result.rules}})
    write_manifest(
        out_dir / "retention.manifest.json",
        {
            "run_id": run.run_id,
            "command": "retention",
            "as_of": as_of.isoformat(),
            "rule_files": [str(f) for f in ruleset.files],
            "rules": result.rules,
            "outputs": [file_entry(p) for p in written],
            "key_fingerprint": hasher.fingerprint,
            "audit": {"path": str(audit_path), "head_sha256": result.audit_head, "entries": writer.count},
            "status": "pass",
        },
    )
    if not ws.in_memory:
        con.execute("CHECKPOINT")
    ws.finish_run(run, "pass", 0, {"rules": result.rules, "outputs": [file_entry(p.resolve()) for p in written]})
    return result


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


RETAINED = "privacy_retained"


def _record_retained(ws: Workspace, table: str, key: str | None, rule: str, as_of: date, run_id: str) -> None:
    """Keyed tokens of every identifier of the rows about to be deleted (``__retention_rows``), so the
    next load drops them too, and the people's clusters and ids for the other tables and files."""
    from crmtool.identity.keys import detect_identity_columns, person_keys

    con = ws.con
    con.execute(f"CREATE TABLE IF NOT EXISTS {RETAINED} (token VARCHAR, identifier_type VARCHAR, rule VARCHAR, "
                "as_of DATE, run_id VARCHAR)")
    keys = person_keys(con, table, detect_identity_columns(con, table, key))
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __retention_gone AS SELECT DISTINCT k.type, k.value
            FROM {keys.name} k JOIN {keys.rows} r ON r.rid = k.rid
            JOIN {ident(table)} t ON t.rowid = r.rid WHERE t._row IN (SELECT _row FROM __retention_rows)
            AND k.type IN ('id', 'nif')""")
        con.execute(f"""INSERT INTO {RETAINED} SELECT DISTINCT crm_token(value), type, ?, ?, ? FROM __retention_gone g
            WHERE NOT EXISTS (SELECT 1 FROM {RETAINED} p WHERE p.token = crm_token(g.value))""", [rule, as_of, run_id])
        # the same people in the other customer tables (golden records, clusters, segments ...)
        con.execute("CREATE TEMP TABLE IF NOT EXISTS __retention_ids_all (type VARCHAR, value VARCHAR)")
        con.execute("INSERT INTO __retention_ids_all SELECT * FROM __retention_gone")
    finally:
        keys.drop()
        con.execute("DROP TABLE IF EXISTS __retention_gone")


def _retained_outputs(ws: Workspace, run: Any, key: str | None) -> list[Path]:
    """Delete the retained people from every other customer table and rewrite every registered file
    (every kept version) without them, through the erasure's matching; returns the files rewritten."""
    from crmtool.identity.keys import customer_tables, person_keys
    from crmtool.privacy.erase.outputs import registered_outputs, scrub_file

    con = ws.con
    if not ws.table_exists("__retention_ids_all"):
        return []
    try:
        con.execute("""CREATE OR REPLACE TEMP TABLE __erase_targets AS
            SELECT DISTINCT 'retention' AS ref, type, value FROM __retention_ids_all""")
        con.execute("CREATE OR REPLACE TEMP TABLE __erase_pids (ref VARCHAR, pid VARCHAR)")
        for table, cols in customer_tables(con, key).items():
            keys = person_keys(con, table, cols)
            try:
                gone = (f"SELECT DISTINCT k.pid FROM {keys.name} k JOIN __erase_targets t "
                        f"ON t.type = k.type AND t.value = k.value")
                con.execute(f"INSERT INTO __erase_pids SELECT 'retention', pid FROM ({gone})")
                con.execute(f"DELETE FROM {ident(table)} WHERE rowid IN ({keys.rows_of(gone)})")
            finally:
                keys.drop()
        written = []
        for path, kind in registered_outputs(ws).current:
            if scrub_file(ws, path, key):
                ws.register_output(run, kind, path)
                written.append(path)
        return written
    finally:
        for t in ("__retention_ids_all", "__erase_targets", "__erase_pids"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
