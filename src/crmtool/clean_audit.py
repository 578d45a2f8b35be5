"""Clean's audit change set: the keyed record hashes (computed while the rules run), the recorded
form of changed values, and the change set of one run (decision 0005)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmtool.engine import CHANGES, VIOLATIONS, RecordedAs
from crmtool.sqltext import ident

if TYPE_CHECKING:
    from crmtool.audit import AuditWriter
    from crmtool.io.readers import LoadResult
    from crmtool.progress import Progress
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

    The table lives in an in-memory database attached as ``crm_scratch``; :meth:`table` waits for
    it, :meth:`close` drops it.
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
        try:
            self._cur.execute("ATTACH IF NOT EXISTS ':memory:' AS crm_scratch")
            self._cur.execute(f"CREATE OR REPLACE TABLE {self.TABLE} AS SELECT d._row, crm_token({key_sql}) AS token "
                              f"FROM {ident(table)} d")
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


def write_change_set(ws: Workspace, writer: AuditWriter, loaded: LoadResult, ruleset: RuleSet, header: dict[str, Any],
           records: str, progress: Progress | None = None) -> None:
    """The run's header, then one change set row per change and per rejected row, in one Parquet file.

    The changes table holds old and new values as JSON text already (:func:`audit_value_sql`:
    personal values as keyed hashes); ``records`` is a table of each row's keyed record hash
    (``_row``, ``token``; see RecordTokens). Rows are sorted by record hash, so ``audit show
    --record`` reads one row group per run.
    """
    import pyarrow as pa

    from crmtool.audit import TOKEN_PREFIX

    con = ws.con
    writer.add({"type": "run", **header})
    names = [r.name for r in ruleset.rules] or [""]
    con.register("__rule_names", pa.table({"rule": pa.array(range(len(names)), pa.int32()),
                                           "name": pa.array(names, pa.string())}))
    con.register("__parse_rejects_audit", pa.table({
        "line": pa.array([r.line for r in loaded.parse_rejects], pa.int64()),
        "reason": pa.array([r.reason.split(":")[0] for r in loaded.parse_rejects], pa.string())}))
    if progress:
        progress("audit log")
    # rows per rule name: the writer puts the rows of rare rules in a part of their own (its index by rule)
    rule_counts: dict[str, int] = {}
    for name, n in con.execute(f"""
            SELECT n.name, count(*) FROM (SELECT rule FROM {CHANGES} UNION ALL
                                          SELECT rule FROM {VIOLATIONS} WHERE reject) c
            JOIN __rule_names n USING (rule) GROUP BY ALL""").fetchall():
        rule_counts[str(name)] = rule_counts.get(str(name), 0) + int(n)
    if loaded.parse_rejects:
        rule_counts["parse"] = rule_counts.get("parse", 0) + len(loaded.parse_rejects)
    try:
        # each part joins only the record hashes of its range ({part}); parse rejects go in the last
        writer.add_set(con, "changes", f"""
            WITH r AS (SELECT _row, token FROM {records} WHERE left(token, 1) {{part}})
            SELECT 'change' AS type, n.name AS rule, c._row AS "row", CAST(NULL AS BIGINT) AS line,
                   '{TOKEN_PREFIX}' || r.token AS record, c."column" AS field, c.old, c.new,
                   CAST(NULL AS VARCHAR) AS reason
            FROM {CHANGES} c JOIN r USING (_row) JOIN __rule_names n USING (rule)
            UNION ALL
            SELECT 'reject', n.name, v._row, NULL, '{TOKEN_PREFIX}' || r.token, v."column", NULL, NULL, v.reason
            FROM {VIOLATIONS} v JOIN r USING (_row) JOIN __rule_names n USING (rule)
            WHERE v.reject
            UNION ALL
            SELECT 'reject', 'parse', NULL, line, NULL, NULL, NULL, NULL, reason FROM __parse_rejects_audit
            WHERE {{last}}""",
            order_by='record, "row", field, rule, line', parts=AUDIT_PARTS, rule_counts=rule_counts)
    finally:
        con.unregister("__rule_names")
        con.unregister("__parse_rejects_audit")
