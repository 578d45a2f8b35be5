"""Small DuckDB helpers shared by every floor."""

from __future__ import annotations

from collections.abc import Collection, Iterator
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
