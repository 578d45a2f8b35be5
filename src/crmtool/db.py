"""Small DuckDB helpers shared by every floor."""

from __future__ import annotations

from collections.abc import Iterator
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
