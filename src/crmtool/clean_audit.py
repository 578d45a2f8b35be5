"""Clean's audit change set: the keyed record hashes (computed while the rules run), the recorded
form of changed values, and the change set of one run (decision 0005)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmtool.engine import CHANGES, VIOLATIONS, RecordedAs
from crmtool.sqltext import ident

if TYPE_CHECKING:

    import duckdb

    from crmtool.audit import AuditWriter
    from crmtool.io.readers import LoadResult
    from crmtool.rulefile import RuleSet
    from crmtool.workspace import Workspace


def record_key_sql(ruleset: RuleSet) -> str:
    """The record key of a row of the loaded table (alias d) as the audit log hashes it.

    Keys are hashed trimmed, as every feature normalises ids (``audit show --record`` trims too).
    """
    key = ruleset.dataset.key
    return f"trim(CAST(d.{ident(key)} AS VARCHAR))" if key else "CAST(d._row AS VARCHAR)"


class RecordTokens:
    """Keyed hashes of every record key of a loaded table, computed on a second DuckDB connection
    in a thread, so the work overlaps the rules (which leave spare CPU between statements).

    The table (``_row``, ``record`` = ``k:<hash>``, ``pos`` = the row's place in the order of the
    change set, by record hash then row) lives in an in-memory database attached as
    ``crm_scratch``; :meth:`table` waits for it, :meth:`close` drops it. With ``pos`` worked out
    here, the change set sorts on one integer instead of the record hash.
    """

    TABLE = "crm_scratch.record_tokens"

    def __init__(self, ws: Workspace, table: str, key_sql: str) -> None:
        import threading

        self._cur = ws.con.cursor()
        ws.hasher.register_sql(self._cur)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(table, key_sql), name="crmtool-record-tokens",
                                        daemon=True)
        self._thread.start()

    def _run(self, table: str, key_sql: str) -> None:
        from crmtool.audit import TOKEN_PREFIX

        try:
            self._cur.execute("ATTACH IF NOT EXISTS ':memory:' AS crm_scratch")
            self._cur.execute(f"CREATE OR REPLACE TABLE {self.TABLE} AS SELECT _row, record, "
                              f"row_number() OVER (ORDER BY record, _row) AS pos FROM ("
                              f"SELECT d._row, '{TOKEN_PREFIX}' || crm_token({key_sql}) AS record "
                              f"FROM {ident(table)} d)")
        except BaseException as exc:  # raised again by table()
            self._error = exc

    def table(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.TABLE

    def close(self) -> None:
        self._thread.join()
        try:
            self._cur.execute(f"DROP TABLE IF EXISTS {self.TABLE}")
        finally:
            self._cur.close()


#: the columns of clean's change set, in their order (decision 0008)
CHANGE_COLUMNS = 'type, rule, "row", line, record, field, old, new, reason'

#: parts of clean's change set: each is sorted alone (an eighth of the sort's memory; 16 parts cost
#: 2 s more at 1M rows on a quiet machine for no lower peak, decision 0008)
AUDIT_PARTS = 8


def audit_value_sql(personal: set[str]) -> RecordedAs:
    """How the audit log writes a changed value: JSON text, a keyed hash for personal-data columns.

    Given to the engine, so each distinct change is put in this form once, before it is joined
    to its rows (``crm_token`` is the workspace key's SQL macro).
    """

    from crmtool.audit import TOKEN_PREFIX, json_str_sql

    def value(column: str, expr: str) -> str:
        if column in personal:
            return f"coalesce('\"{TOKEN_PREFIX}' || crm_token({expr}) || '\"', 'null')"
        return json_str_sql(expr)

    return value


class ChangeSetJob:
    """clean's change set written on a second cursor in a thread, while the main connection writes
    the clean and rejects files, so the two overlap (DuckDB releases the GIL while it runs; format 1
    wrote its log from background threads the same way, decision 0008).

    The engine's result tables live in ``crm_scratch`` so that the cursor sees them. :meth:`wait`
    returns when every part is written (and raises what the thread raised); the run seals only
    after it. :meth:`cancel` interrupts the cursor and waits, so :meth:`AuditWriter.abort` never
    races a part being written.
    """

    def __init__(self, ws: Workspace, writer: AuditWriter, loaded: LoadResult, ruleset: RuleSet, records: str) -> None:
        import threading

        self._cur = ws.con.cursor()
        self._error: BaseException | None = None
        #: wall seconds the change set took in its thread (overlapped with the outputs)
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(writer, loaded, ruleset, records),
                                        name="crmtool-change-set", daemon=True)
        self._thread.start()

    def _run(self, writer: AuditWriter, loaded: LoadResult, ruleset: RuleSet, records: str) -> None:
        import time

        start = time.perf_counter()
        try:
            write_change_set(self._cur, writer, loaded, ruleset, records)
        except BaseException as exc:  # raised again by wait()
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - start

    def wait(self) -> None:
        self._thread.join()  # a Ctrl-C here leaves the cursor to cancel(), which stops the thread first
        self._cur.close()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Stop the change set (a statement running is interrupted, the next ones too) and wait."""
        while self._thread.is_alive():
            self._cur.interrupt()
            self._thread.join(0.05)
        self._cur.close()


def write_change_set(con: duckdb.DuckDBPyConnection, writer: AuditWriter, loaded: LoadResult, ruleset: RuleSet,
                     records: str) -> None:
    """One change set row per change and per rejected row, in :data:`AUDIT_PARTS` Parquet parts
    (and the rare rules' part), written by ``writer`` from ``con`` (a cursor of the workspace).

    The changes table holds old and new values as JSON text already (:func:`audit_value_sql`:
    personal values as keyed hashes); ``records`` is a table of each row's keyed record hash
    (``_row``, ``record``, ``pos``; see RecordTokens). Rows are sorted by record hash, so ``audit
    show --record`` reads one row group per run. The run's header is the caller's (:meth:`AuditWriter.add`).
    """
    import pyarrow as pa

    from crmtool.audit import TOKEN_PREFIX

    names = [r.name for r in ruleset.rules] or [""]
    ranks = {name: i for i, name in enumerate(sorted(set(names)))}
    con.register("__rule_names", pa.table({"rule": pa.array(range(len(names)), pa.int32()),
                                           "name": pa.array(names, pa.string()),
                                           "rank": pa.array([ranks[n] for n in names], pa.int64())}))
    con.register("__parse_rejects_audit", pa.table({
        "line": pa.array([r.line for r in loaded.parse_rejects], pa.int64()),
        "reason": pa.array([r.reason.split(":")[0] for r in loaded.parse_rejects], pa.string())}))
    # rows per rule name (the writer puts the rows of rare rules in a part of their own, its index
    # by rule) and the fields changed or rejected (ranked for the sort key below)
    rule_counts: dict[str, int] = {}
    fields: set[str] = set()
    for name, field, n in con.execute(f"""
            SELECT n.name, c."column", count(*) FROM (SELECT rule, "column" FROM {CHANGES} UNION ALL
                                                      SELECT rule, "column" FROM {VIOLATIONS} WHERE reject) c
            JOIN __rule_names n USING (rule) GROUP BY ALL""").fetchall():
        rule_counts[str(name)] = rule_counts.get(str(name), 0) + int(n)
        if field is not None:
            fields.add(str(field))
    if loaded.parse_rejects:
        rule_counts["parse"] = rule_counts.get("parse", 0) + len(loaded.parse_rejects)
    con.register("__audit_fields", pa.table({"column": pa.array(sorted(fields), pa.string()),
                                             "rank": pa.array(range(len(fields)), pa.int64())}))
    # the order of the set is record, row, field, rule (then reject after change, and parse rejects
    # by line at the end): one BIGINT, from the row's place by record (RecordTokens) and the ranks of
    # its field and rule name (Python sorts str by code point, DuckDB VARCHAR by UTF-8 bytes: the same)
    shift = max(len(fields), len(names)).bit_length() + 1
    digit = len(TOKEN_PREFIX) + 1  # the record hash's first hex digit picks the part
    order = f"((r.pos << {2 * shift}) | (coalesce(f.rank, {(1 << shift) - 1}) << {shift}) | (n.rank << 1))"
    try:
        # each part joins only the record hashes of its range ({part}); parse rejects go in the last
        writer.add_set(con, "changes", f"""
            WITH r AS (SELECT _row, record, pos FROM {records} WHERE substr(record, {digit}, 1) {{part}})
            SELECT 'change' AS type, n.name AS rule, c._row AS "row", CAST(NULL AS BIGINT) AS line,
                   r.record, c."column" AS field, c.old, c.new, CAST(NULL AS VARCHAR) AS reason, {order} AS _order
            FROM {CHANGES} c JOIN r USING (_row) JOIN __rule_names n USING (rule)
                 LEFT JOIN __audit_fields f USING ("column")
            UNION ALL
            SELECT 'reject', n.name, v._row, NULL, r.record, v."column", NULL, NULL, v.reason, {order} | 1
            FROM {VIOLATIONS} v JOIN r USING (_row) JOIN __rule_names n USING (rule)
                 LEFT JOIN __audit_fields f USING ("column")
            WHERE v.reject
            UNION ALL
            SELECT 'reject', 'parse', NULL, line, NULL, NULL, NULL, NULL, reason, NULL FROM __parse_rejects_audit
            WHERE {{last}}""",
            order_by="_order, line", parts=AUDIT_PARTS, rule_counts=rule_counts, columns=CHANGE_COLUMNS)
    finally:
        for view in ("__rule_names", "__parse_rejects_audit", "__audit_fields"):
            con.unregister(view)
