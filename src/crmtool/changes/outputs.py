"""The detail of a diff as files (added, removed, changes in long format, key issues, summary).

Each file is one SQL query written atomically by :func:`crmtool.io.writers.write_query`, in the
CSV dialect the caller's :class:`crmtool.io.writers.OutputOptions` give (UTF-8 with commas by
default; ``;``, a decimal comma, cp1252 or a byte-order mark when asked). Values
of personal-data columns are keyed hashes (``k:`` + the workspace key's HMAC, as in the audit
log) unless the caller asks for values: equal values still give equal hashes, so a reader sees
*that* an email changed, not what it changed from or to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.changes.compare import DELTA, DUPLICATES, ColumnPlan, key_sql
from crmtool.io.writers import write_query
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.changes.read import Side
    from crmtool.io.writers import OutputOptions

TOKEN_PREFIX = "k:"  # as the audit log marks a keyed hash

#: how a value of a column is written: (column name, SQL expression) -> SQL expression
Rendering = Callable[[str, str], str]


def rendering(personal: set[str], show_values: bool) -> Rendering:
    """Clear text for every column with ``show_values``; else keyed hashes for ``personal`` columns."""

    def value(column: str, expr: str) -> str:
        if not show_values and column.lower() in personal:
            return f"{sql_str(TOKEN_PREFIX)} || crm_token({expr})"
        return f"CAST({expr} AS VARCHAR)"

    return value


def _rows_query(con: duckdb.DuckDBPyConnection, side: Side, row_col: str, where: str, render: Rendering) -> str:
    """The whole records of one side whose rows the delta names, in file order."""
    columns = [r[0] for r in con.execute(f"DESCRIBE {ident(side.table)}").fetchall()
               if r[0] != side.hidden]
    cols = ", ".join(f"{render(c, 'd.' + ident(c))} AS {ident(c)}" for c in columns)
    # a semi-join on the bare row column: DuckDB hashes the delta's few rows and filters the scan
    row, offset = side.row_column, side.row_base
    return (f"SELECT {cols} FROM {ident(side.table)} d "
            f"WHERE d.{row} IN (SELECT {row_col} - {offset} FROM {DELTA} WHERE {where}) ORDER BY d.{row}")


def added_query(con: duckdb.DuckDBPyConnection, new: Side, render: Rendering) -> str:
    return _rows_query(con, new, "__nrow", "__ok IS NULL", render)


def removed_query(con: duckdb.DuckDBPyConnection, old: Side, render: Rendering) -> str:
    return _rows_query(con, old, "__orow", "__nk IS NULL", render)


def changes_query(plan: ColumnPlan, by_field: dict[str, int], render: Rendering) -> str:
    """Long format: one line per changed field of a record (key, column, old, new), in file order."""
    parts = []
    for i, (_old, new_name) in enumerate(plan.compared):
        if not by_field.get(new_name):
            continue
        o, n = f"__o{i}", f"__n{i}"
        differs = (f"CAST({o} AS VARCHAR) IS DISTINCT FROM CAST({n} AS VARCHAR)" if new_name in plan.retyped
                   else f"{o} IS DISTINCT FROM {n}")
        parts.append(
            f"SELECT __nrow AS __r, {i} AS __c, {render(plan.key_new, '__nk')} AS {ident(plan.key_new)}, "
            f"{sql_str(new_name)} AS field, {render(new_name, o)} AS old_value, {render(new_name, n)} AS new_value "
            f"FROM {DELTA} WHERE __ok IS NOT NULL AND __nk IS NOT NULL AND {differs}")
    if not parts:
        return (f"SELECT CAST(NULL AS VARCHAR) AS {ident(plan.key_new)}, CAST(NULL AS VARCHAR) AS field, "
                f"CAST(NULL AS VARCHAR) AS old_value, CAST(NULL AS VARCHAR) AS new_value WHERE false")
    return f"SELECT * EXCLUDE (__r, __c) FROM ({' UNION ALL '.join(parts)}) ORDER BY __r, __c"


def key_issues_query(plan: ColumnPlan, sides: dict[str, Side], render: Rendering) -> str:
    """Every row left out of the comparison: its side, the issue (empty or duplicate key), key and row."""
    parts = []
    for side, key in (("old", plan.key_old), ("new", plan.key_new)):
        k = key_sql(key, "d")
        parts.append(
            f"SELECT {sql_str(side)} AS side, CASE WHEN coalesce({k}, '') = '' THEN 'empty key' "
            f"ELSE 'duplicate key' END AS issue, {render(plan.key_new, k)} AS key, "
            f"{sides[side].row_sql('d')} AS row "
            f"FROM {ident(sides[side].table)} d WHERE coalesce({k}, '') = '' "
            f"OR {k} IN (SELECT __k FROM {DUPLICATES} WHERE side = {sql_str(side)})")
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY side DESC, row"


def write_detail(con: duckdb.DuckDBPyConnection, out_dir: Path, plan: ColumnPlan, sides: dict[str, Side],
                 by_field: dict[str, int], render: Rendering, with_key_issues: bool,
                 output: OutputOptions | None = None) -> dict[str, tuple[Path, str]]:
    """Write the CSV files of a diff (``output``: how they look); returns ``{kind: (path, query)}``
    for registration and counting."""
    files = {
        "diff_added": (out_dir / "added.csv", added_query(con, sides["new"], render)),
        "diff_removed": (out_dir / "removed.csv", removed_query(con, sides["old"], render)),
        "diff_changes": (out_dir / "changes.csv", changes_query(plan, by_field, render)),
    }
    if with_key_issues:
        files["diff_key_issues"] = (out_dir / "key_issues.csv", key_issues_query(plan, sides, render))
    for path, query in files.values():
        write_query(con, query, path, "csv", options=output)
    return files
