"""Retention, after the rule chose its rows: whole people, the recorded decision, and everywhere they are.

The steps :func:`crmtool.privacy.retention.apply_retention` runs for each rule and table:

1. :func:`due_people` - a row is due only when every row of its person (dedupe cluster, else
   customer id) in the table is due: a person with one recent record is active, so retention
   never deletes or blanks half of someone. It also collects the identifiers that name the due
   people (``__retention_targets``) and their person ids (``__retention_pids``);
2. :func:`record_decision` - keyed tokens of those identifiers in ``privacy_retained`` (deleted)
   or ``privacy_anonymised`` (with the columns blanked): every later load (``clean``, ``dedupe``,
   ``segment``, ``emails``, ``export``) applies the same decision to the export before anything
   is persisted (:mod:`crmtool.identity.load`), so the next ``clean`` cannot bring them back;

and once per run, over everything the rules chose:

3. :func:`reach_tables` - the same people in every other customer table (golden records,
   clusters, segment tables ...): rows deleted or personal columns blanked;
4. :func:`reach_files` - every file crmtool wrote that is still as written (the ``crm_outputs``
   registry: every kept version of clean, rejects, golden, clusters, review, send lists,
   audiences ...): rows removed, or personal columns blanked, rewritten with the delimiter,
   encoding and byte-order mark the file had; subject exports of those people are deleted.

Identifiers recorded: the customer id and NIF (they name one person), and the email and phone of
a row without a customer id; an identifier a person who stays also holds is never recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.identity.keys import PersonKeys
    from crmtool.workspace import Run, Workspace

RETAINED, ANONYMISED = "privacy_retained", "privacy_anonymised"
TARGETS, PIDS, ROWS = "__retention_targets", "__retention_pids", "__retention_rows"
#: columns that structure a file or table and are never blanked (a cluster label, the row number)
STRUCTURAL = frozenset({"_row", "_line", "cluster_id", "_rejected_by", "_reasons"})


@dataclass(frozen=True)
class Blank:
    """What an anonymise rule blanks: ``columns`` (concrete names in the cleaned table); with
    ``personal`` also whatever looks personal in another table or file, except ``activity``."""

    columns: tuple[str, ...]
    personal: bool
    activity: tuple[str, ...]

    def columns_in(self, have: list[str], personal_there: set[str]) -> list[str]:
        wanted = set(self.columns) | (personal_there if self.personal else set())
        return [c for c in have if c in wanted and c not in self.activity and c not in STRUCTURAL]


def start(con: duckdb.DuckDBPyConnection) -> None:
    """The run's working tables (clear values: temporary, never in the workspace file)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TARGETS} (action VARCHAR, ref VARCHAR, type VARCHAR, value VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PIDS} (action VARCHAR, ref VARCHAR, pid VARCHAR)")


def finish(con: duckdb.DuckDBPyConnection) -> None:
    for t in (TARGETS, PIDS, ROWS, "__retention_hit", "__erase_targets", "__erase_pids"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def due_people(ws: Workspace, table: str, keys: PersonKeys, action: str, rule: str) -> int:
    """Narrow ``__retention_rows`` to whole people, add their identifiers and person ids to the
    run's targets; returns the number of people."""
    con = ws.con
    present = f"(SELECT _row FROM {ident(table)})"
    staying = f"""SELECT p.pid FROM {keys.rows} p WHERE p.r IN {present}
        AND p.r NOT IN (SELECT _row FROM {ROWS})"""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {ROWS} AS SELECT x.* FROM {ROWS} x
        JOIN {keys.rows} p ON p.r = x._row WHERE p.pid NOT IN ({staying})""")
    due = f"SELECT p.rid, p.pid FROM {keys.rows} p WHERE p.r IN (SELECT _row FROM {ROWS})"
    others = f"""SELECT o.type, o.value FROM {keys.name} o JOIN {keys.rows} q ON q.rid = o.rid
        WHERE q.r IN {present} AND q.r NOT IN (SELECT _row FROM {ROWS})"""
    con.execute(f"""INSERT INTO {TARGETS} SELECT DISTINCT ?, ?, k.type, k.value FROM {keys.name} k
        JOIN ({due}) d ON d.rid = k.rid
        WHERE (k.type IN ('id', 'nif') OR d.pid LIKE 'r:%')
          AND (k.type, k.value) NOT IN (SELECT (type, value) FROM ({others}))""", [action, rule])
    con.execute(f"INSERT INTO {PIDS} SELECT DISTINCT ?, ?, pid FROM ({due}) WHERE pid NOT LIKE 'r:%'",
                [action, rule])
    return int(con.execute(f"SELECT count(DISTINCT pid) FROM ({due})").fetchall()[0][0])


def record_decision(ws: Workspace, action: str, rule: str, columns: tuple[str, ...], as_of: date,
                    run_id: str) -> None:
    """Keyed tokens of the rule's targets, so every later load applies the decision again."""
    con = ws.con
    if action == "delete":
        con.execute(f"CREATE TABLE IF NOT EXISTS {RETAINED} (token VARCHAR, identifier_type VARCHAR, rule VARCHAR, "
                    "as_of DATE, run_id VARCHAR)")
        con.execute(f"""INSERT INTO {RETAINED} SELECT DISTINCT crm_token(value), type, ?, ?, ? FROM {TARGETS} g
            WHERE g.action = 'delete' AND g.ref = ?
              AND NOT EXISTS (SELECT 1 FROM {RETAINED} p WHERE p.token = crm_token(g.value))""",
                    [rule, as_of, run_id, rule])
        return
    con.execute(f"CREATE TABLE IF NOT EXISTS {ANONYMISED} (token VARCHAR, identifier_type VARCHAR, "
                "columns VARCHAR[], rule VARCHAR, as_of DATE, run_id VARCHAR)")
    con.execute(f"""INSERT INTO {ANONYMISED} SELECT DISTINCT crm_token(value), type, ?, ?, ?, ? FROM {TARGETS} g
        WHERE g.action = 'anonymise' AND g.ref = ?
          AND NOT EXISTS (SELECT 1 FROM {ANONYMISED} p WHERE p.token = crm_token(g.value) AND p.rule = ?)""",
                [list(columns), rule, as_of, run_id, rule, rule])


def _personal(con: duckdb.DuckDBPyConnection, table: str, extra: tuple[str, ...], not_personal: tuple[str, ...]
              ) -> set[str]:
    from crmtool.pii import detect_pii

    return (set(detect_pii(con, table)) | set(extra)) - set(not_personal)


def reach_tables(ws: Workspace, key: str | None, blanks: dict[str, Blank], personal_data: tuple[str, ...],
                 not_personal: tuple[str, ...]) -> dict[str, int]:
    """Delete or blank the due people in every customer table; returns rows changed per table.

    Every table's matching rows are found first and changed afterwards: blanking a dedupe table's
    ids must not change who the next table's rows belong to."""
    from crmtool.identity.keys import customer_tables, person_keys

    con = ws.con
    con.execute("CREATE OR REPLACE TEMP TABLE __retention_hit (tbl VARCHAR, rid BIGINT, action VARCHAR, ref VARCHAR)")
    tables = customer_tables(con, key)
    kinds = {str(r[0]) for r in con.execute(f"SELECT DISTINCT type FROM {TARGETS}").fetchall()}
    for table, cols in tables.items():
        # only the kinds of identifier the targets hold are derived (an email or phone costs the most)
        cols.emails = cols.emails if "email" in kinds else []
        cols.phones = cols.phones if "phone" in kinds else []
        cols.nifs = cols.nifs if "nif" in kinds else []
        keys = person_keys(con, table, cols)
        try:
            con.execute(f"""INSERT INTO __retention_hit SELECT DISTINCT {sql_str(table)}, h.rid, h.action, h.ref
                FROM (SELECT k.rid, t.action, t.ref FROM {keys.name} k
                      JOIN {TARGETS} t ON t.type = k.type AND t.value = k.value
                UNION SELECT r.rid, p.action, p.ref FROM {keys.rows} r JOIN {PIDS} p ON p.pid = r.pid) h""")
        finally:
            keys.drop()
    changed: dict[str, int] = {}
    for table, action, ref in con.execute(
        "SELECT DISTINCT tbl, action, ref FROM __retention_hit ORDER BY action, tbl, ref"
    ).fetchall():
        rows = f"SELECT rid FROM __retention_hit WHERE tbl = {sql_str(table)} AND ref = {sql_str(ref)}"
        if action == "delete":
            n = int(con.execute(f"SELECT count(*) FROM {ident(table)} WHERE rowid IN ({rows})").fetchall()[0][0])
            con.execute(f"DELETE FROM {ident(table)} WHERE rowid IN ({rows})")
        else:
            have = [c for c, _t in _columns(con, table)]
            blank = blanks[ref].columns_in(have, _personal(con, table, personal_data, not_personal))
            if set(blank) & _not_null(con, table):
                # a value that cannot be blanked (a NOT NULL key, e.g. segment membership history):
                # the row goes, as a deletion would take it
                n = int(con.execute(f"SELECT count(*) FROM {ident(table)} WHERE rowid IN ({rows})").fetchall()[0][0])
                con.execute(f"DELETE FROM {ident(table)} WHERE rowid IN ({rows})")
            else:
                n = _blank(con, table, blank, rows, "rowid")
        if n:
            changed[table] = changed.get(table, 0) + n
    con.execute("DROP TABLE IF EXISTS __retention_hit")
    return changed


def _not_null(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """Columns of ``table`` declared NOT NULL."""
    rows = con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND NOT is_nullable "
                       "AND schema_name = 'main' AND NOT internal", [table]).fetchall()
    return {str(r[0]) for r in rows}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    from crmtool.identity.keys import table_columns

    return table_columns(con, table)


def _blank(con: duckdb.DuckDBPyConnection, table: str, cols: list[str], rows_sql: str, by: str) -> int:
    """Set ``cols`` to NULL in the rows of ``rows_sql`` (``by``: rowid or _row); returns rows that changed."""
    if not cols:
        return 0
    any_value = " OR ".join(f"{ident(c)} IS NOT NULL" for c in cols)
    n = int(con.execute(
        f"SELECT count(*) FROM {ident(table)} WHERE {by} IN ({rows_sql}) AND ({any_value})").fetchall()[0][0])
    if n:
        sets = ", ".join(f"{ident(c)} = NULL" for c in cols)
        con.execute(f"UPDATE {ident(table)} SET {sets} WHERE {by} IN ({rows_sql}) AND ({any_value})")
    return n


def reach_files(ws: Workspace, run: Run, key: str | None, blanks: dict[str, Blank]) -> dict[str, int]:
    """Rewrite every registered file still as crmtool wrote it without the deleted people and with the
    anonymised people's personal columns blanked; delete their subject exports. Returns rows
    changed per file (a deleted subject export counts its file as -1)."""
    from crmtool.privacy.erase.match import PIDS as ERASE_PIDS
    from crmtool.privacy.erase.match import TARGETS as ERASE_TARGETS
    from crmtool.privacy.erase.outputs import registered_outputs, scrub_file
    from crmtool.privacy.subject import KIND as SUBJECT
    from crmtool.privacy.subject import drop_subject_exports

    con = ws.con
    n_delete = int(con.execute(f"SELECT count(*) FROM {TARGETS} WHERE action = 'delete'").fetchall()[0][0]) + int(
        con.execute(f"SELECT count(*) FROM {PIDS} WHERE action = 'delete'").fetchall()[0][0])
    anonymise = bool(blanks)
    if not n_delete and not anonymise:
        return {}
    # the erasure's rewrite reads its own two tables: the deleted people, as the erasure would name them
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ERASE_TARGETS} AS SELECT DISTINCT ref, type, value FROM {TARGETS} "
                "WHERE action = 'delete'")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ERASE_PIDS} AS SELECT DISTINCT ref, pid FROM {PIDS} "
                "WHERE action = 'delete'")
    changed: dict[str, int] = {}
    for path, kind in registered_outputs(ws).current:
        if kind == SUBJECT:
            continue
        n = scrub_file(ws, path, key) if n_delete else 0
        if anonymise:
            n += blank_file(ws, path, key, blanks)
        if n:
            changed[str(path)] = n
            run.step.output(kind, path)  # the new version, registered when the run is recorded
    for path in drop_subject_exports(ws, f"SELECT DISTINCT type, value FROM {TARGETS}"):
        changed[str(path)] = -1
    return changed


def blank_file(ws: Workspace, path: Path, key: str | None, blanks: dict[str, Blank]) -> int:
    """Blank the anonymised people's personal columns in ``path`` (an ad-platform audience, which
    holds nothing but their hashed identifiers, loses their rows); returns rows changed."""
    from crmtool.errors import InputError
    from crmtool.io.writers import FORMATS, OutputOptions, write_query
    from crmtool.privacy.erase.outputs import SCRUB, load_output, match_file
    from crmtool.privacy.identity import to_temp_table

    try:
        side, loaded = load_output(path, SCRUB)
    except InputError:
        return 0
    try:
        to_temp_table(ws.con, f"SELECT ref, type, value FROM {TARGETS} WHERE action = 'anonymise'", side,
                      "__scrub_targets")
        to_temp_table(ws.con, f"SELECT ref, pid FROM {PIDS} WHERE action = 'anonymise'", side, "__scrub_pids")
        if "_raw" in loaded.columns or set(loaded.columns) - {"_row"} == {"email", "phone"}:
            match_file(side, loaded, "__scrub_targets", "__scrub_pids", key)  # raw lines, hashed audiences
        else:
            _file_hits(side, key)
        hits = "SELECT rid FROM __scrub_hits"
        if set(loaded.columns) - {"_row"} == {"email", "phone"}:  # an audience: hashed identifiers only
            n = int(side.execute("SELECT count(DISTINCT rid) FROM __scrub_hits").fetchall()[0][0])
            side.execute(f"DELETE FROM {SCRUB} WHERE rowid IN ({hits})")
        else:
            personal = _personal(side, SCRUB, (), ())
            n = 0
            for (ref,) in side.execute("SELECT DISTINCT ref FROM __scrub_hits ORDER BY 1").fetchall():
                cols = blanks[str(ref)].columns_in(loaded.columns, personal)
                if "_raw" in loaded.columns:
                    cols.append("_raw")  # the whole line of a row the reader could not parse
                n += _blank(side, SCRUB, cols, f"{hits} WHERE ref = {sql_str(str(ref))}", "rowid")
        if n:
            with path.open("rb") as fh:
                bom = fh.read(3) == b"\xef\xbb\xbf"
            encoding = "utf-8" if (loaded.encoding or "utf-8") in ("utf-8", "utf-8-sig") else str(loaded.encoding)
            options = OutputOptions(delimiter=loaded.delimiter or ",", encoding=encoding, bom=bom,
                                    neutralise_formulas=False)  # read back as written: already neutralised
            fmt = loaded.format if loaded.format in FORMATS else "csv"
            cols_sql = ", ".join(ident(c) for c in loaded.columns)
            write_query(side, f"SELECT {cols_sql} FROM {SCRUB} ORDER BY rowid", path, fmt, options=options)
        return n
    finally:
        side.close()


def _file_hits(side: duckdb.DuckDBPyConnection, key: str | None) -> None:
    """``__scrub_hits (rid, ref)`` on ``side``: rows of the file naming a target, through person keys
    of only the identifier kinds the targets hold (the erasure's match derives every kind)."""
    from crmtool.identity.keys import detect_identity_columns, person_keys
    from crmtool.privacy.erase.outputs import SCRUB

    kinds = {str(r[0]) for r in side.execute("SELECT DISTINCT type FROM __scrub_targets").fetchall()}
    cols = detect_identity_columns(side, SCRUB, key)
    cols.emails = cols.emails if "email" in kinds else []
    cols.phones = cols.phones if "phone" in kinds else []
    cols.nifs = cols.nifs if "nif" in kinds else []
    keys = person_keys(side, SCRUB, cols, clusters=False)
    try:
        side.execute(f"""CREATE OR REPLACE TEMP TABLE __scrub_hits AS
            SELECT DISTINCT k.rid, t.ref FROM {keys.name} k
            JOIN __scrub_targets t ON t.type = k.type AND t.value = k.value
            UNION SELECT DISTINCT r.rid, p.ref FROM {keys.rows} r JOIN __scrub_pids p ON p.pid = r.pid
            WHERE p.pid NOT LIKE 'r:%'""")
    finally:
        keys.drop()
