"""Step 1 of an erasure: read a request file into canonical identifiers, one request per row.

A request file is any export crmtool reads (CSV in any common encoding and delimiter, Parquet,
xlsx) with a request reference column (``request_ref``, ``ref``, ``ticket``, ``expediente`` ...;
``row-N`` when absent), an optional date and one or more identifier columns: customer id, email,
phone, NIF/NIE/CIF. A single unnamed column is read value by value. The file is read in a private
in-memory database: its clear values never reach the workspace file.

Temp tables made on the workspace connection (dropped by :func:`drop_request_tables`):

* ``__erase_refs (ref, requested_at)``: every request of the file, with or without an identifier;
* ``__erase_req (ref, type, value, requested_at)``: its canonical identifiers (:mod:`crmtool.identity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.privacy.consent import date_sql
from crmtool.sqltext import ident

if TYPE_CHECKING:
    from crmtool.workspace import Workspace

REF_NAMES = (
    "request_ref",
    "ref",
    "reference",
    "referencia",
    "request",
    "request_id",
    "ticket",
    "solicitud",
    "expediente",
)
STAGING = "__privacy_requests"
# an address that is still not one address once canonical (``a@x.es; b@y.es``, two ``@``): not a usable
# identifier, so the request says so (exit 1, a person decides) instead of a bare "not found"
UNREADABLE_EMAIL_SQL = "(regexp_matches(v.value, '[;,<>\\s\\p{Z}]') OR v.value LIKE '%@%@%')"
REQ, REFS = "__erase_req", "__erase_refs"


def load_requests(ws: Workspace, path: Path) -> int:
    """Read ``path`` into ``__erase_refs`` and ``__erase_req``; returns the number of request rows."""
    from crmtool.identity.canonical import register_sql
    from crmtool.identity.keys import values_sql
    from crmtool.privacy.identity import load_side, to_temp_table
    from crmtool.privacy.suppress import classify_columns, identifier_rows_sql

    con = ws.con
    register_sql(con)
    side, loaded = load_side(path, STAGING)
    try:
        found = classify_columns(side, STAGING, path, ref_names=REF_NAMES)
        ref = (
            f"coalesce(nullif(trim(CAST({ident(found.ref_column)} AS VARCHAR)), ''), 'row-' || _row)"
            if found.ref_column
            else "'row-' || _row"
        )
        when = f"CAST({date_sql(ident(found.date_column))} AS TIMESTAMP)" if found.date_column else "NULL"
        to_temp_table(side, f"SELECT {ref} AS ref, min({when}) AS requested_at FROM {STAGING} GROUP BY 1", con, REFS)
        to_temp_table(
            side, identifier_rows_sql(found, f", {ref} AS ref, {when} AS requested_at"), con, "__erase_raw"
        )
    finally:
        side.close()
    made: list[str] = []
    try:
        parts = []
        for kind in ("id", "email", "phone", "nif"):
            src = f"SELECT rowid AS rid, raw AS v FROM __erase_raw WHERE type = '{kind}'"
            sql, m = values_sql(con, kind, src, plain=False)
            made += m
            parts.append(f"SELECT rid, '{kind}' AS type, value FROM ({sql})")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {REQ} AS
            SELECT DISTINCT r.ref, v.type, v.value, r.requested_at
            FROM ({" UNION ALL ".join(parts)}) v JOIN __erase_raw r ON r.rowid = v.rid
            WHERE v.value IS NOT NULL AND NOT (v.type = 'email' AND {UNREADABLE_EMAIL_SQL})""")
    finally:
        for t in ("__erase_raw", *made):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return loaded.rows


def drop_request_tables(ws: Workspace) -> None:
    for t in (REQ, REFS):
        ws.con.execute(f"DROP TABLE IF EXISTS {t}")
