"""The privacy registers (tables of keyed tokens) and private side databases for files in clear.

Identifiers, canonical forms and person matching live in :mod:`crmtool.identity` (the one place
that compares identifiers); this module keeps what is specific to the privacy feature: the
register tables and the helpers that read request, suppression and output files in a private
in-memory DuckDB, so their clear values never reach the workspace file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.identity.canonical import EMAIL, ID, NIF, PHONE, TYPES, canonical, id_sql, phone_key, phone_key_sql
from crmtool.identity.keys import (
    ID_NAMES,
    IdentityColumns,
    customer_tables,
    detect_identity_columns,
    table_columns,
)
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

    from crmtool.io.readers import LoadResult, ReadOptions

__all__ = [
    "EMAIL",
    "ID",
    "ID_NAMES",
    "NIF",
    "PHONE",
    "TYPES",
    "IdentityColumns",
    "canonical",
    "customer_tables",
    "detect_identity_columns",
    "ensure_tables",
    "id_sql",
    "load_side",
    "phone_key",
    "phone_key_sql",
    "table_columns",
    "to_temp_table",
]

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS privacy_suppressions (
    channel VARCHAR, token VARCHAR, kind VARCHAR, source VARCHAR, added_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS privacy_erasures (
    token VARCHAR, identifier_type VARCHAR, request_ref VARCHAR, requested_at TIMESTAMP,
    erased_at TIMESTAMP, run_id VARCHAR, status VARCHAR);
CREATE TABLE IF NOT EXISTS privacy_match_keys (
    key_token VARCHAR, identifier_type VARCHAR, added_at TIMESTAMP);
"""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(TABLES_SQL)
    # workspaces from before the status column: their rows keep NULL (outcome not recorded then)
    con.execute("ALTER TABLE privacy_erasures ADD COLUMN IF NOT EXISTS status VARCHAR")


def load_side(path: Path, table: str = "f", read: ReadOptions | None = None,
              ) -> tuple[duckdb.DuckDBPyConnection, LoadResult]:
    """Load a file into a private in-memory DuckDB: clear values from request, suppression and
    output files never touch the workspace file (``read``: the user's delimiter, encoding or xlsx
    sheet). The caller closes the connection."""
    import duckdb

    from crmtool.io.readers import load_file

    side = duckdb.connect()
    try:
        return side, load_file(side, path, table, read)
    except BaseException:
        side.close()
        raise


def to_temp_table(src: duckdb.DuckDBPyConnection, query: str, dst: duckdb.DuckDBPyConnection, name: str) -> int:
    """Copy the result of ``query`` on ``src`` into temp table ``name`` of ``dst`` (through Arrow)."""
    from crmtool.db import fetch_arrow

    data = fetch_arrow(src, query)
    dst.register("__privacy_transfer", data)
    dst.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS SELECT * FROM __privacy_transfer")
    dst.unregister("__privacy_transfer")
    return int(data.num_rows)
