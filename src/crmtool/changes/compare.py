"""Compare two loaded exports on a key, in DuckDB SQL: column matching, key problems, one delta table.

The comparison runs in an in-memory database attached to the workspace (``crm_diff``) through a
cursor of its own, so two million-row exports never land in the workspace file. Everything is
set-based: one hash aggregate over the keys of both sides finds empty and repeated keys, added
and removed records and the pairs whose fingerprints differ; only those rows are joined back to
their values (a small table, the delta), and one pass over it gives the counts per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.errors import InputError
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

    from crmtool.changes.read import Side

OLD, NEW = "diff_old", "diff_new"
#: keys that occur more than once in a side (``side``, ``__k``, ``n``)
DUPLICATES = "diff_duplicates"
#: the rows that differ: old and new key and row, then ``__o{i}``/``__n{i}`` per compared column
DELTA = "diff_delta"
#: per key worth a look (empty, repeated, on one side only, fingerprints differ): rows per side
#: (``__no``, ``__nn``) and the lowest and highest row (``__lo``, ``__hi``, see :func:`pair_keys`)
GROUPS = "diff_groups"
#: the keys and rows of the pairs whose fingerprints differ, and of added and removed keys
PAIRS = "diff_pairs"


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


def _fingerprint_sql(columns: list[str], retyped: list[str], alias: str) -> str:
    """One 64-bit hash of a row's compared values (NULL and '' differ); columns of different types as text."""
    if not columns:
        return "0"
    parts = [f"CAST({alias}.{ident(c)} AS VARCHAR)" if c in retyped else f"{alias}.{ident(c)}" for c in columns]
    return f"hash({', '.join(parts)})"


def _usable(k: str) -> str:
    return f"coalesce({k}, '') <> ''"


#: added to a NEW row's number in the pairing aggregate, so ``min`` finds the OLD row of a key and
#: ``max`` the NEW one (no export has 2^40 rows)
_NEW_ROWS = 1 << 40


def pair_keys(con: duckdb.DuckDBPyConnection, plan: ColumnPlan,
              sides: dict[str, Side]) -> tuple[dict[str, KeyProblems], int]:
    """Pair the two sides on their keys in one hash aggregate; fills :data:`DUPLICATES` and :data:`PAIRS`.

    Each row of either side gives (trimmed key, row, fingerprint of its compared values, a mark on
    NEW rows), and one ``GROUP BY`` key keeps only plain aggregates: the rows per key (``count``),
    the NEW rows among them (``count`` of the mark), the lowest and highest row (a NEW row's number
    is raised by 2^40, so for a key that occurs once per side ``min`` is its OLD row and ``max``
    its NEW row) and the ``bit_xor`` of the fingerprints (0 for one row per side exactly when the
    two fingerprints are equal). The key uniqueness check is the same pass: a key with other than
    one row per side is kept. Only the keys worth looking at are kept: empty or repeated keys,
    keys on one side only (added, removed) and pairs whose fingerprints differ; a run that changed
    5% of the records keeps ~5% of the keys. Returns the key problems per side and the number of
    NEW rows that take part (a usable key repeated on neither side).
    """
    parts = []
    for side in ("old", "new"):
        names = [o for o, _n in plan.compared] if side == "old" else [n for _o, n in plan.compared]
        retyped = [o for o, n in plan.compared if n in plan.retyped] if side == "old" else plan.retyped
        key = plan.key_old if side == "old" else plan.key_new
        number, mark = ((f"CAST({sides[side].row_sql('t')} AS BIGINT)", "CAST(NULL AS BOOLEAN)") if side == "old"
                        else (f"CAST({sides[side].row_sql('t')} AS BIGINT) + {_NEW_ROWS}", "true"))
        parts.append(f"SELECT {key_sql(key, 't')} AS __k, {number} AS __e, "
                     f"{_fingerprint_sql(names, retyped, 't')} AS __h, {mark} AS __m FROM {ident(sides[side].table)} t")
    con.execute(f"""
        CREATE TEMP TABLE {GROUPS} AS
        SELECT __k, __n - __nn AS __no, __nn, __lo, __hi
        FROM (SELECT __k, count(*) AS __n, count(__m) AS __nn, min(__e) AS __lo, max(__e) AS __hi,
                     bit_xor(__h) AS __x
              FROM ({" UNION ALL ".join(parts)})
              GROUP BY __k)
        WHERE NOT {_usable("__k")} OR __n <> 2 OR __nn <> 1 OR __x <> 0""")
    con.execute(f"""
        CREATE TEMP TABLE {DUPLICATES} AS
        SELECT 'old' AS side, __k, __no AS n FROM {GROUPS} WHERE {_usable("__k")} AND __no > 1
        UNION ALL
        SELECT 'new' AS side, __k, __nn AS n FROM {GROUPS} WHERE {_usable("__k")} AND __nn > 1""")
    con.execute(f"""
        CREATE TEMP TABLE {PAIRS} AS
        SELECT CASE WHEN __no = 1 THEN __k END AS __ok, CASE WHEN __nn = 1 THEN __k END AS __nk,
               CASE WHEN __no = 1 THEN __lo END AS __orow, CASE WHEN __nn = 1 THEN __hi - {_NEW_ROWS} END AS __nrow
        FROM {GROUPS} WHERE {_usable("__k")} AND __no <= 1 AND __nn <= 1""")
    row = con.execute(f"""
        SELECT coalesce(sum(__no) FILTER (WHERE NOT {_usable("__k")}), 0),
               coalesce(sum(__nn) FILTER (WHERE NOT {_usable("__k")}), 0),
               count(*) FILTER (WHERE {_usable("__k")} AND __no > 1),
               coalesce(sum(__no) FILTER (WHERE {_usable("__k")} AND __no > 1), 0),
               count(*) FILTER (WHERE {_usable("__k")} AND __nn > 1),
               coalesce(sum(__nn) FILTER (WHERE {_usable("__k")} AND __nn > 1), 0),
               coalesce(sum(__nn) FILTER (WHERE {_usable("__k")} AND (__no > 1 OR __nn > 1)), 0)
        FROM {GROUPS}""").fetchall()[0]
    problems = {"old": KeyProblems(int(row[0]), int(row[2]), int(row[3])),
                "new": KeyProblems(int(row[1]), int(row[4]), int(row[5]))}
    # NEW rows with a usable key repeated on neither side: all rows, less empty keys, less rows
    # whose key is repeated on either side (a key repeated in OLD cannot be paired either)
    taking_part = sides["new"].rows - int(row[1]) - int(row[6])
    return problems, taking_part


def _distinct_sql(plan: ColumnPlan, i: int, old_name: str, new_name: str) -> str:
    """``old IS DISTINCT FROM new`` for compared column ``i`` of the delta; different types compare as text."""
    o, n = f"__o{i}", f"__n{i}"
    if new_name in plan.retyped:
        o, n = f"CAST({o} AS VARCHAR)", f"CAST({n} AS VARCHAR)"
    return f"{o} IS DISTINCT FROM {n}"


def build_delta(con: duckdb.DuckDBPyConnection, plan: ColumnPlan, sides: dict[str, Side]) -> None:
    """:data:`DELTA`: the rows that differ, with their values side by side.

    :func:`pair_keys` found added and removed keys and the pairs whose fingerprints differ; only
    those rows are joined back to their values, and a pair is kept when a value really differs (a
    fingerprint collision cannot hide a change from the counts of a kept pair, and its chance to
    hide one is 2^-64 per pair). Each side's values come from a semi-join of its relation on the
    bare row column (``rowid``, the loader's ``_row``, a Parquet file's row number) against the few
    rows of :data:`PAIRS`: DuckDB then builds its hash table on those rows and pushes a filter on
    them into the scan, where a join written the other way round would hash a whole export.
    """
    differs = " OR ".join(_distinct_sql(plan, i, o, n) for i, (o, n) in enumerate(plan.compared)) or "false"
    values = []
    for side, alias, names in (("old", "o", [o for o, _n in plan.compared]),
                               ("new", "n", [n for _o, n in plan.compared])):
        row, offset = sides[side].row_column, sides[side].row_base
        cols = "".join(f", {ident(c)} AS __{alias}{i}" for i, c in enumerate(names))
        values.append(f"__v{alias} AS (SELECT {row} AS __r{cols} FROM {ident(sides[side].table)} "
                      f"WHERE {row} IN (SELECT __{alias}row - {offset} FROM {PAIRS}))")
    o_off, n_off = sides["old"].row_base, sides["new"].row_base
    con.execute(f"""
        CREATE TEMP TABLE {DELTA} AS
        WITH {", ".join(values)}
        SELECT p.*, __vo.* EXCLUDE (__r), __vn.* EXCLUDE (__r)
        FROM {PAIRS} p LEFT JOIN __vo ON __vo.__r = p.__orow - {o_off}
             LEFT JOIN __vn ON __vn.__r = p.__nrow - {n_off}
        WHERE p.__ok IS NULL OR p.__nk IS NULL OR {differs}""")


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
