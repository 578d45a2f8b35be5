"""Person keys of the rows asked about: every row's person, exact identifier lines only for some rows.

:func:`~crmtool.identity.keys.person_keys` writes one line in clear per identifier of every row
(4M lines for a 1M-row table with four identifier columns); a command that asks about a few
thousand people (an erasure) reads almost none of them. :func:`lookup_keys` instead makes, per
table, in one scan:

* ``<name>_rows (rid, r, pid)``: every row's person, as :func:`person_keys` makes it;
* ``<name> (rid, pid, type, value)``: the *exact* lines (the same canonical forms as
  :func:`person_keys`) of the values of one question known in advance (``only``), and no other.

:class:`LookupKeys` is also the base of :class:`~crmtool.identity.valuemap.SharedLookupKeys`,
which adds the lines of the rows asked about on demand, from value maps shared by several tables.
A query that joins ``<name>`` on ``(type, value)`` with the values asked about sees exactly what
it would see in the full keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.identity.keys import IdentityColumns, PersonKeys, key_sources, person_rows_sql, values_sql

if TYPE_CHECKING:
    import duckdb


@dataclass
class LookupKeys(PersonKeys):
    """:class:`PersonKeys` whose line table holds only the rows asked about (see the module doc)."""

    table: str = ""
    cols: IdentityColumns = field(default_factory=IdentityColumns)
    region: str = "ES"


def _insert_lines(con: duckdb.DuckDBPyConnection, name: str, rows: str, parts: list[str]) -> None:
    """Insert into ``name`` the exact lines ``parts`` (SQL ``rid, type, value`` each), with each row's person."""
    if parts:
        con.execute(f"INSERT INTO {name} SELECT DISTINCT k.rid, r.pid, k.type, k.value "
                    f"FROM ({' UNION ALL '.join(parts)}) k JOIN {rows} r ON r.rid = k.rid")


def lookup_keys(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    *,
    name: str,
    only: str,
    region: str = "ES",
    clusters: bool = True,
    cluster_map: str | None = None,
) -> LookupKeys:
    """Rows of ``table`` and the exact lines of the values ``only`` (SQL ``type, value``), one scan per
    identifier column; no other row's lines are made."""
    keys = LookupKeys(con, name, f"{name}_rows", table=table, cols=cols, region=region)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {keys.rows} AS "
                f"{person_rows_sql(con, table, cols, clusters=clusters, cluster_map=cluster_map)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (rid BIGINT, pid VARCHAR, type VARCHAR, value VARCHAR)")
    parts, made = [], []
    try:
        for kind, src in key_sources(con, table, cols):
            sql, m = values_sql(con, kind, src, region)
            made += m
            parts.append(f"SELECT rid, '{kind}' AS type, value FROM ({sql}) WHERE value IS NOT NULL "
                         f"AND value IN (SELECT value FROM ({only}) WHERE type = '{kind}')")
        _insert_lines(con, name, keys.rows, parts)
    finally:
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return keys
