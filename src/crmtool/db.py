"""Small DuckDB helpers shared by every floor."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def fetch_arrow(con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    """Run ``query`` and return an Arrow table without an extra copy.

    DuckDB 2 refuses relation work while a DB-API ``execute()`` result is unfinished (e.g. after
    ``fetchone()``), so the pending result is run to its end first.
    """
    con.complete()
    return con.sql(query).to_arrow_table()


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> Any:
    """The first column of the first row (``None`` when there is no row)."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows else None


@contextmanager
def setting_for(con: duckdb.DuckDBPyConnection, name: str, value: str) -> Iterator[None]:
    """``SET name = value`` for a block, then ``RESET``; a workspace session has its configuration
    locked (:meth:`crmtool.workspace.Workspace.open`), so there the block runs with the session's
    setting unchanged."""
    locked = bool(scalar(con, "SELECT current_setting('lock_configuration')"))
    if not locked:
        con.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        if not locked:
            con.execute(f"RESET {name}")


#: from this many values up, Python lists travel between DuckDB and Python through Arrow; below
#: it as plain rows and list parameters, which spares a small run the import of pyarrow (and of
#: numpy and pandas, which ``pa.array`` pulls in): about a third of a 10-row ``validate``. Both
#: ways give the same values and the same table.
ARROW_FROM = 50_000


def fetch_column(con: duckdb.DuckDBPyConnection, query: str) -> list[Any]:
    """The first column of ``query`` as a Python list (through Arrow only when it is long).

    A short result is read in the one execution that finds it short; only a long one is run again
    through Arrow (a count first would run every query twice)."""
    con.complete()
    rows = con.execute(query).fetchmany(ARROW_FROM)
    if len(rows) < ARROW_FROM:
        return [row[0] for row in rows]
    return list(fetch_arrow(con, query).column(0).to_pylist())


@contextmanager
def python_relation(con: duckdb.DuckDBPyConnection, columns: dict[str, list[Any]],
                    varchar: Collection[str] = ()) -> Iterator[tuple[str, list[Any]]]:
    """Python lists of one length as a relation for one statement: ``(sql, parameters)``.

    The columns named in ``varchar`` are strings; the others take the type DuckDB (or Arrow, for
    long lists) infers, so cast them in the statement.
    """
    from crmtool.sqltext import ident

    rows = len(next(iter(columns.values()), []))
    if rows < ARROW_FROM:
        unnests = ", ".join(f"unnest(${i + 1}{'::VARCHAR[]' if name in varchar else ''}) AS {ident(name)}"
                            for i, name in enumerate(columns))
        yield f"(SELECT {unnests})", list(columns.values())
        return
    import pyarrow as pa

    frame = pa.table({name: pa.array(v, type=pa.string()) if name in varchar else pa.array(v)
                      for name, v in columns.items()})
    con.register("__python_relation", frame)
    try:
        yield "__python_relation", []
    finally:
        con.unregister("__python_relation")


#: distinct values handed to Python at a time by :func:`map_in_batches`: what Python holds outside
#: DuckDB's capped pool is one batch of values and their results, whatever the size of the input
MAP_BATCH = 100_000


def map_in_batches(con: duckdb.DuckDBPyConnection, values_query: str, name: str,
                   func: Callable[[list[Any]], dict[str, list[Any]]], types: dict[str, str]) -> int:
    """Create temp table ``name`` (columns ``types``, names to DuckDB types) from ``func`` over the
    values of ``values_query`` (its first column), :data:`MAP_BATCH` values at a time; returns
    how many values there were.

    The values are first kept in a temp table (in DuckDB's pool, which spills), then read and
    mapped a batch at a time: ``func`` takes a list of values and returns the columns of
    ``types`` as lists of one length. The table gets the rows in the order of the values.
    """
    from crmtool.sqltext import ident

    todo = f"{name}__todo"
    con.complete()
    con.execute(f"CREATE OR REPLACE TEMP TABLE {todo} AS SELECT * FROM ({values_query})")
    cols = ", ".join(f"{ident(k)} {t}" for k, t in types.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({cols})")
    casts = ", ".join(f"CAST(s.{ident(k)} AS {t})" for k, t in types.items())
    varchar = [k for k, t in types.items() if t == "VARCHAR"]
    total = int(scalar(con, f"SELECT count(*) FROM {todo}") or 0)
    for start in range(0, total, MAP_BATCH):
        rows = con.execute(f"SELECT * FROM {todo} WHERE rowid >= {start} AND rowid < {start + MAP_BATCH} "
                           "ORDER BY rowid").fetchall()
        columns = func([r[0] for r in rows])
        del rows
        with python_relation(con, columns, varchar) as (source, params):
            con.execute(f"INSERT INTO {name} SELECT {casts} FROM {source} s", params)
        del columns
    con.execute(f"DROP TABLE {todo}")
    return total
