"""Compare two loaded exports on a key, in DuckDB SQL: column matching, key problems, one delta table.

The comparison runs in an in-memory database attached to the workspace (``crm_diff``) through a
cursor of its own, so two million-row exports never land in the workspace file. Everything is
set-based: one aggregate per side for empty and duplicate keys, one full outer join that keeps
only the rows that differ (added, removed or changed), and one pass over that small table for the
counts per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.errors import InputError
from crmtool.kinds.base import ident, sql_str

if TYPE_CHECKING:
    import duckdb

OLD, NEW = "diff_old", "diff_new"
#: keys that occur more than once in a side (``side``, ``__k``, ``n``)
DUPLICATES = "diff_duplicates"
#: the rows that differ: old and new key and row, then ``__o{i}``/``__n{i}`` per compared column
DELTA = "diff_delta"
#: per side: ``_row``, the trimmed key ``__k`` and a fingerprint ``__h`` of the compared values
#: the keys and rows of the pairs whose fingerprints differ, and of added and removed keys
PAIRS = "diff_pairs"
#: per side: the values of the rows in PAIRS
VALUES = {"old": "diff_values_old", "new": "diff_values_new"}
KEYS = {"old": "diff_keys_old", "new": "diff_keys_new"}


@dataclass(frozen=True)
class ColumnPlan:
    """How the columns of the two sides line up (matched by name, case-insensitively, in any order)."""

    key_old: str
    key_new: str
    compared: list[tuple[str, str]]  # (old name, new name) of every common non-key column, in new order
    added: list[str]  # in NEW only
    removed: list[str]  # in OLD only
    retyped: list[str] = field(default_factory=list)  # common columns whose types differ (compared as text)


@dataclass(frozen=True)
class KeyProblems:
    """Rows a side cannot take part in the comparison with: empty keys and keys that repeat."""

    empty: int  # rows with a NULL or blank key
    duplicate_keys: int  # distinct key values that occur more than once
    duplicate_rows: int  # rows holding such a key


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row"]


def _find(columns: list[tuple[str, str]], wanted: str, side: str, label: str) -> str:
    exact = [c for c, _ in columns if c == wanted]
    folded = exact or [c for c, _ in columns if c.lower().strip() == wanted.lower().strip()]
    if len(folded) == 1:
        return folded[0]
    names = ", ".join(c for c, _ in columns)
    raise InputError(f"{label}: the key column '{wanted}' is not in the {side} export (columns: {names})",
                     "name the column that identifies a record with --key")


def plan_columns(con: duckdb.DuckDBPyConnection, key: str, labels: tuple[str, str]) -> ColumnPlan:
    """Match the columns of the two loaded sides by name; raise :class:`InputError` without the key."""
    old_cols, new_cols = _columns(con, OLD), _columns(con, NEW)
    key_old = _find(old_cols, key, "old", labels[0])
    key_new = _find(new_cols, key, "new", labels[1])
    old_by_name = {c.lower(): (c, t) for c, t in old_cols if c != key_old}
    new_names = {c.lower() for c, _ in new_cols}
    compared, added, retyped = [], [], []
    for col, ctype in new_cols:
        if col == key_new:
            continue
        if col.lower() in old_by_name:
            old_name, old_type = old_by_name[col.lower()]
            compared.append((old_name, col))
            if old_type != ctype:
                retyped.append(col)
        else:
            added.append(col)
    removed = [c for c, _ in old_cols if c != key_old and c.lower() not in new_names]
    return ColumnPlan(key_old, key_new, compared, added, removed, retyped)


def key_sql(column: str, alias: str = "") -> str:
    """A record key as compared: text, trimmed (``' C1 '`` and ``'C1'`` are the same record)."""
    prefix = f"{alias}." if alias else ""
    return f"trim(CAST({prefix}{ident(column)} AS VARCHAR))"


def _fingerprint_sql(columns: list[str], retyped: list[str]) -> str:
    """One 64-bit hash of a row's compared values (NULL and '' differ); columns of different types as text."""
    if not columns:
        return "0"
    parts = [f"CAST({ident(c)} AS VARCHAR)" if c in retyped else ident(c) for c in columns]
    return f"hash({', '.join(parts)})"


def find_key_problems(con: duckdb.DuckDBPyConnection, plan: ColumnPlan) -> dict[str, KeyProblems]:
    """Narrow key tables of both sides (row, key, fingerprint), :data:`DUPLICATES`, and the counts of
    empty and repeated keys per side: one scan of each loaded table."""
    sides = (("old", OLD, plan.key_old, [o for o, _ in plan.compared]),
             ("new", NEW, plan.key_new, [n for _, n in plan.compared]))
    for side, table, key, columns in sides:
        retyped = [o for o, n in plan.compared if n in plan.retyped] if side == "old" else plan.retyped
        con.execute(f"CREATE OR REPLACE TABLE {KEYS[side]} AS SELECT _row, {key_sql(key)} AS __k, "
                    f"{_fingerprint_sql(columns, retyped)} AS __h FROM {ident(table)}")
    parts = [f"SELECT {sql_str(side)} AS side, __k, count(*) AS n FROM {KEYS[side]} "
             f"WHERE coalesce(__k, '') <> '' GROUP BY 2 HAVING count(*) > 1" for side in ("old", "new")]
    con.execute(f"CREATE OR REPLACE TABLE {DUPLICATES} AS " + " UNION ALL ".join(parts))
    problems = {}
    for side in ("old", "new"):
        empty = con.execute(f"SELECT count(*) FROM {KEYS[side]} WHERE coalesce(__k, '') = ''").fetchall()[0][0]
        dup = con.execute(f"SELECT count(*), coalesce(sum(n), 0) FROM {DUPLICATES} WHERE side = ?", [side]
                          ).fetchall()[0]
        problems[side] = KeyProblems(int(empty), int(dup[0]), int(dup[1]))
    return problems


def side_sql(side: str, problems: dict[str, KeyProblems]) -> str:
    """The rows of one side that take part: a usable key that is repeated on neither side (a key
    repeated in OLD cannot be paired with its row in NEW, so that row is neither added nor kept)."""
    select = f"SELECT _row, __k, __h FROM {KEYS[side]} WHERE coalesce(__k, '') <> ''"
    if any(p.duplicate_keys for p in problems.values()):
        select += f" AND __k NOT IN (SELECT __k FROM {DUPLICATES})"
    return select


def _distinct_sql(plan: ColumnPlan, i: int, old_name: str, new_name: str) -> str:
    """``old IS DISTINCT FROM new`` for compared column ``i`` of the delta; different types compare as text."""
    o, n = f"__o{i}", f"__n{i}"
    if new_name in plan.retyped:
        o, n = f"CAST({o} AS VARCHAR)", f"CAST({n} AS VARCHAR)"
    return f"{o} IS DISTINCT FROM {n}"


def build_delta(con: duckdb.DuckDBPyConnection, plan: ColumnPlan, problems: dict[str, KeyProblems]) -> None:
    """:data:`DELTA`: the rows that differ, with their values side by side.

    A full outer join of the narrow key tables finds added and removed keys and the pairs whose
    fingerprints differ; only those rows are then joined back to their values (by row number),
    and a pair is kept when a value really differs (a fingerprint collision cannot hide a change
    from the counts of a kept pair, and its chance to hide one is 2^-64 per pair).
    """
    differs = " OR ".join(_distinct_sql(plan, i, o, n) for i, (o, n) in enumerate(plan.compared)) or "false"
    con.execute(f"""
        CREATE OR REPLACE TABLE {PAIRS} AS
        SELECT a.__k AS __ok, b.__k AS __nk, a._row AS __orow, b._row AS __nrow
        FROM ({side_sql("old", problems)}) a FULL OUTER JOIN ({side_sql("new", problems)}) b
          ON a.__k = b.__k
        WHERE a.__k IS NULL OR b.__k IS NULL OR a.__h <> b.__h""")
    # each side's values of those rows, by an inner join on the row number (a plan DuckDB runs as
    # a scan with a filter on the few rows), then the pairs side by side
    for side, table, alias, names in (("old", OLD, "o", [o for o, _n in plan.compared]),
                                      ("new", NEW, "n", [n for _o, n in plan.compared])):
        cols = "".join(f", t.{ident(c)} AS __{alias}{i}" for i, c in enumerate(names))
        con.execute(f"CREATE OR REPLACE TABLE {VALUES[side]} AS SELECT t._row{cols} FROM {ident(table)} t "
                    f"JOIN (SELECT __{alias}row AS r FROM {PAIRS} WHERE __{alias}row IS NOT NULL) p "
                    f"ON t._row = p.r")
    con.execute(f"""
        CREATE OR REPLACE TABLE {DELTA} AS
        SELECT p.*, o.* EXCLUDE (_row), n.* EXCLUDE (_row)
        FROM {PAIRS} p LEFT JOIN {VALUES["old"]} o ON o._row = p.__orow
             LEFT JOIN {VALUES["new"]} n ON n._row = p.__nrow
        WHERE p.__ok IS NULL OR p.__nk IS NULL OR {differs}""")
    for table in VALUES.values():
        con.execute(f"DROP TABLE {table}")


def delta_counts(con: duckdb.DuckDBPyConnection, plan: ColumnPlan) -> tuple[dict[str, int], dict[str, int]]:
    """(added, removed, changed) and the changed count per compared column, in one pass over the delta."""
    per_field = []
    for i, (_old, new_name) in enumerate(plan.compared):
        o, n = f"__o{i}", f"__n{i}"
        if new_name in plan.retyped:
            o, n = f"CAST({o} AS VARCHAR)", f"CAST({n} AS VARCHAR)"
        per_field.append(f"count(*) FILTER (WHERE __ok IS NOT NULL AND __nk IS NOT NULL AND {o} IS DISTINCT FROM {n})")
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE __ok IS NULL), count(*) FILTER (WHERE __nk IS NULL), "
        f"count(*) FILTER (WHERE __ok IS NOT NULL AND __nk IS NOT NULL)"
        f"{''.join(', ' + p for p in per_field)} FROM {DELTA}"
    ).fetchall()[0]
    counts = {"added": int(row[0]), "removed": int(row[1]), "changed": int(row[2])}
    by_field = {new_name: int(row[3 + i]) for i, (_o, new_name) in enumerate(plan.compared)}
    return counts, by_field
