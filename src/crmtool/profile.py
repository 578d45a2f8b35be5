"""Profile a loaded table: per column type, null share, exact distinct count, lengths, min/max,
top values and shapes.

Shapes write every upper-case letter as ``A``, lower-case as ``a`` and digit as ``9``
(``Calle Mayor 12`` -> ``Aaaaa Aaaaa 99``), which shows formats without showing values. Top
values of personal-data columns are hidden unless asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.errors import UsageError
from crmtool.pii import detect_pii
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

TYPE_TESTS = [
    ("integer", r"^[+-]?[0-9]+$"),
    ("decimal", r"^[+-]?([0-9]{1,3}(\.[0-9]{3})*|[0-9]+)(,[0-9]+)?$|^[+-]?[0-9]+(\.[0-9]+)?$"),
    ("date", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$|^[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}$"),
    ("boolean", r"^(?i)(true|false|yes|no|s[ií]|s|n|y|0|1)$"),
    ("email", r"^[^@\s]+@[^@\s]+$"),
]
MAX_SHAPE = 40


@dataclass
class ColumnProfile:
    name: str
    type: str
    nulls: int
    null_share: float
    distinct: int
    min_length: int | None
    max_length: int | None
    top_values: list[tuple[str, int]] | None
    top_shapes: list[tuple[str, int]]
    personal_data: str | None = None
    #: smallest and largest value of a number or date column (as text); None for other text and,
    #: unless asked, for personal data
    min_value: str | None = None
    max_value: str | None = None


@dataclass
class Profile:
    rows: int
    columns: list[ColumnProfile] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [asdict(c) for c in self.columns]}


def shape_sql(v: str) -> str:
    s = f"regexp_replace({v}, '\\p{{Lu}}', 'A', 'g')"
    s = f"regexp_replace({s}, '\\p{{Ll}}', 'a', 'g')"
    s = f"regexp_replace({s}, '[0-9]', '9', 'g')"
    return f"left({s}, {MAX_SHAPE})"


def profile_table(con: duckdb.DuckDBPyConnection, table: str, *, top: int = 5, show_values: bool = False) -> Profile:
    if top < 0:
        raise UsageError(f"--top must be 0 or more, not {top}")
    cols = [r for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row"]
    total_row = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0]
    total = int(total_row[0]) if total_row else 0
    pii = detect_pii(con, table)
    profile = Profile(total)
    for name, ctype, *_ in cols:
        v = f"nullif(trim(CAST({ident(name)} AS VARCHAR)), '')"
        tests = ", ".join(f"count(*) FILTER (WHERE regexp_matches({v}, {sql_str(p)}))" for _t, p in TYPE_TESTS)
        # exact distinct count (approx_count_distinct can exceed the rows on small tables)
        row = con.execute(
            f"SELECT count(*) - count({v}), count(DISTINCT {v}), min(length({v})), max(length({v})), {tests} "
            f"FROM {ident(table)}"
        ).fetchall()[0]
        assert row is not None
        nulls, distinct, min_len, max_len, *hits = row
        nonblank = total - int(nulls)
        inferred = ctype.lower() if ctype != "VARCHAR" else "text"
        if ctype == "VARCHAR" and nonblank:
            for (tname, _p), n in zip(TYPE_TESTS, hits, strict=True):
                if n / nonblank >= 0.95:
                    inferred = tname
                    break
        if ctype == "VARCHAR" and not nonblank:
            inferred = "empty"
        hidden = name in pii and not show_values
        tops = None
        if not hidden:
            tops = [(str(val), int(n)) for val, n in con.execute(
                f"SELECT {v} AS val, count(*) AS n FROM {ident(table)} WHERE {v} IS NOT NULL "
                f"GROUP BY val ORDER BY n DESC, val LIMIT {top}").fetchall()]
        shapes = [(str(s), int(n)) for s, n in con.execute(
            f"SELECT {shape_sql(v)} AS s, count(*) AS n FROM {ident(table)} WHERE {v} IS NOT NULL "
            f"GROUP BY s ORDER BY n DESC, s LIMIT {top}").fetchall()]
        low, high = (None, None) if hidden or not nonblank else _bounds(con, table, name, ctype, inferred)
        profile.columns.append(ColumnProfile(
            name, inferred, int(nulls), round(int(nulls) / total, 4) if total else 0.0, int(distinct),
            min_len, max_len, tops, shapes, pii[name].category if name in pii else None, low, high))
    return profile


def _bounds(con: duckdb.DuckDBPyConnection, table: str, name: str, ctype: str,
            inferred: str) -> tuple[str | None, str | None]:
    """min and max of a number or date column, compared as numbers or dates (not as text)."""
    col = ident(name)
    if ctype != "VARCHAR" and ctype not in ("BOOLEAN", "BLOB"):
        expr = col
    elif inferred == "integer":
        expr = f"TRY_CAST(trim({col}) AS HUGEINT)"
    elif inferred == "decimal":  # 1.234,5 (Spanish) and 1234.5 alike
        text = f"trim({col})"
        expr = (f"TRY_CAST(CASE WHEN contains({text}, ',') THEN replace(replace({text}, '.', ''), ',', '.') "
                f"ELSE {text} END AS DOUBLE)")
    elif inferred == "date":
        expr = f"TRY_CAST(trim({col}) AS DATE)"
    else:
        return None, None
    row = con.execute(f"SELECT CAST(min({expr}) AS VARCHAR), CAST(max({expr}) AS VARCHAR) "
                      f"FROM {ident(table)}").fetchall()[0]
    return (row[0], row[1]) if row else (None, None)

