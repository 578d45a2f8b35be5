"""Small DuckDB helpers shared by every floor."""

from __future__ import annotations

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
