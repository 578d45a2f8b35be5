"""Identifiers of a person (customer id, email, phone): normalisation, keyed tokens, row matching.

Contract shared with the other features: ``token = crm_token(normalised value)`` where emails go
through :func:`crmtool.normalise.normalise_email`, phones through
:func:`crmtool.normalise.phone_e164` (region ES, digits only when invalid) and ids are trimmed.

Matching a million rows must not call Python per row. Emails take a SQL fast path
(``lower(trim(v))``, exact for plain ASCII addresses) and Python only for the distinct odd
values. Phones are first narrowed in SQL by a *phone key* (the last 9 digits), then the few
candidate values are normalised exactly in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.kinds.base import ident, sql_str
from crmtool.normalise import normalise_email, phone_e164

if TYPE_CHECKING:
    import duckdb

    from crmtool.io.readers import LoadResult

ID, EMAIL, PHONE = "id", "email", "phone"
TYPES = (ID, EMAIL, PHONE)
PHONE_KEY_DIGITS = 9
DEFAULT_REGION = "ES"

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS privacy_suppressions (
    channel VARCHAR, token VARCHAR, kind VARCHAR, source VARCHAR, added_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS privacy_erasures (
    token VARCHAR, identifier_type VARCHAR, request_ref VARCHAR, requested_at TIMESTAMP,
    erased_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS privacy_match_keys (
    key_token VARCHAR, identifier_type VARCHAR, added_at TIMESTAMP);
"""
#: workspace tables that never hold customer values in clear (skipped when erasing)
TOKEN_TABLE_PREFIXES = ("crm_", "privacy_")

_DIGITS = re.compile(r"[^0-9]")
# plain ASCII addresses (spaces only around): normalise_email(v) == lower(trim(v)) exactly
EMAIL_FAST = r"^ *[A-Za-z0-9._%+\-@!#$&'*/=?^`{|}~]+ *$"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(TABLES_SQL)


def norm_email(value: str | None) -> str | None:
    if value is None:
        return None
    v = normalise_email(value)
    return v or None


def norm_phone(value: str | None, region: str = DEFAULT_REGION) -> str | None:
    if value is None:
        return None
    e164 = phone_e164(value, region)
    if e164:
        return e164
    digits = _DIGITS.sub("", value)
    return digits or None


def norm_id(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return v or None


def normalise(kind: str, value: str | None) -> str | None:
    """Normalised form of an identifier of type ``kind`` (id, email, phone); ``None`` when blank."""
    if kind == EMAIL:
        return norm_email(value)
    if kind == PHONE:
        return norm_phone(value)
    return norm_id(value)


def phone_key(value: str | None) -> str | None:
    """Last 9 digits: equal for two raw spellings whenever their normalised phones are equal."""
    if value is None:
        return None
    digits = _DIGITS.sub("", value)
    return digits[-PHONE_KEY_DIGITS:] or None


def phone_key_sql(column_sql: str) -> str:
    return f"nullif(right(regexp_replace(CAST({column_sql} AS VARCHAR), '[^0-9]', '', 'g'), {PHONE_KEY_DIGITS}), '')"


def id_sql(column_sql: str) -> str:
    return f"nullif(trim(CAST({column_sql} AS VARCHAR)), '')"


_map_counter = 0
_maps: list[str] = []


def drop_maps(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables of normalised values made so far (they hold clear values)."""
    while _maps:
        con.execute(f"DROP TABLE IF EXISTS {_maps.pop()}")


def _register_map(con: duckdb.DuckDBPyConnection, raw: list[str], normed: list[str | None]) -> str:
    import pyarrow as pa

    global _map_counter
    _map_counter += 1
    name = f"__privacy_map_{_map_counter}"
    con.register(
        "__privacy_arrow",
        pa.table({"raw": pa.array(raw, pa.string()), "norm": pa.array(normed, pa.string())}),
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __privacy_arrow")
    con.unregister("__privacy_arrow")
    _maps.append(name)
    return name


def email_norm(con: duckdb.DuckDBPyConnection, table: str, column: str, alias: str = "t") -> tuple[str, str]:
    """``(expr, join)``: SQL giving the normalised email of ``alias.column``; ``join`` must follow FROM."""
    expr, join, _odd = email_norm_parts(con, table, column, alias)
    return expr, join


def email_norm_parts(
    con: duckdb.DuckDBPyConnection, table: str, column: str, alias: str = "t"
) -> tuple[str, str, str | None]:
    """As :func:`email_norm`, plus the alias of the joined map of odd spellings (``None``: no odd value)."""
    from crmtool.db import fetch_arrow

    col = f"{alias}.{ident(column)}"
    odd = (
        fetch_arrow(
            con,
            f"SELECT DISTINCT CAST({ident(column)} AS VARCHAR) AS v FROM {ident(table)} "
            f"WHERE {ident(column)} IS NOT NULL AND NOT regexp_matches(CAST({ident(column)} AS VARCHAR), "
            f"{sql_str(EMAIL_FAST)})",
        )
        .column(0)
        .to_pylist()
    )
    # every value outside the fast path is in the map (its Python normal form, '' when blank), so the
    # fast path needs no per-row test: lower(trim(v)) is exact for the values the map lacks
    fast = f"lower(trim(CAST({col} AS VARCHAR)))"
    if not odd:
        return f"({fast})", "", None
    name = _register_map(con, odd, [norm_email(v) or "" for v in odd])
    m = f"__em_{alias}_{_map_counter}"
    return f"coalesce({m}.norm, {fast})", f"LEFT JOIN {name} {m} ON {m}.raw = CAST({col} AS VARCHAR)", m


def phone_norm_map(con: duckdb.DuckDBPyConnection, values: list[str]) -> str:
    """Temp table ``(raw, norm)`` of exact normalised phones for the given distinct raw values."""
    return _register_map(con, values, [norm_phone(v) for v in values])


@dataclass
class IdentityColumns:
    """Where a table keeps a person's identifiers."""

    id: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.id or self.emails or self.phones)


ID_NAMES = (
    "customer_id",
    "client_id",
    "id_cliente",
    "cliente_id",
    "customerid",
    "clientid",
    "member_id",
    "user_id",
    "contact_id",
    "record_id",
    "id",
    "__id",
)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def detect_identity_columns(con: duckdb.DuckDBPyConnection, table: str, key: str | None = None) -> IdentityColumns:
    """Id, email and phone columns of ``table`` by name (``key`` wins for the id when present)."""
    from crmtool.pii import category_from_name

    cols = table_columns(con, table)
    names = [c for c, _t in cols]
    found = IdentityColumns()
    if key and key in names:
        found.id = key
    else:
        lowered = {c.lower(): c for c in names}
        for candidate in ID_NAMES:
            if candidate in lowered:
                found.id = lowered[candidate]
                break
    for col, ctype in cols:
        if ctype.upper() not in ("VARCHAR", "TEXT") and not ctype.upper().startswith("VARCHAR"):
            continue
        category = category_from_name(col)
        if category == "email":
            found.emails.append(col)
        elif category == "phone":
            found.phones.append(col)
    return found


def customer_tables(con: duckdb.DuckDBPyConnection, key: str | None = None) -> dict[str, IdentityColumns]:
    """Every workspace table that holds customer rows in clear, with its identifier columns."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        ).fetchall()
    ]
    out: dict[str, IdentityColumns] = {}
    for table in tables:
        if table.startswith(TOKEN_TABLE_PREFIXES):
            continue
        cols = detect_identity_columns(con, table, key)
        if not cols.empty:
            out[table] = cols
    return out


def load_side(path: Path, table: str = "f") -> tuple[duckdb.DuckDBPyConnection, LoadResult]:
    """Load a file into a private in-memory DuckDB: clear values from request, suppression and
    output files never touch the workspace file. The caller closes the connection."""
    import duckdb

    from crmtool.io.readers import load_file

    side = duckdb.connect()
    try:
        return side, load_file(side, path, table)
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
