"""Person keys built on demand: a compact fingerprint of every row, exact lines only for the rows asked about.

:func:`~crmtool.identity.keys.person_keys` writes one line in clear per identifier of every row
(4M lines for a 1M-row table with four identifier columns); a command that asks about a few
thousand people (an erasure) reads almost none of them. :func:`lookup_keys` instead makes, per
table, in one scan:

* ``<name>_rows (rid, r, pid)``: every row's person, as :func:`person_keys` makes it;
* ``<name>_fp (rid, h)``: DuckDB's 64-bit ``hash`` of the type and value of every identifier
  line (canonical forms, and an address's plain form when its provider rules change it): no
  value in clear, one integer to join on, a superset filter only, never a decision;

and an empty ``<name> (rid, pid, type, value)``, filled by :meth:`LookupKeys.add_rows` and
:meth:`LookupKeys.add_values` with the *exact* lines (the same canonical forms as
:func:`person_keys`, computed again for those rows only) of the rows asked about: the rows of
some people, or the rows whose fingerprint matches one of a set of values. A fingerprint
collision only adds the true lines of an unrelated row, which no join on ``value`` then
matches; decisions are always made on the exact lines.

A query that joins ``<name>`` on ``(type, value)`` with the values passed to ``add_values``, or on
``pid`` with the people passed to ``add_rows``, sees exactly what it would see in the full keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.identity.keys import IdentityColumns, PersonKeys, key_sources, person_rows_sql, values_sql
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb


@dataclass
class LookupKeys(PersonKeys):
    """:class:`PersonKeys` whose line table holds only the rows asked about (see the module doc)."""

    table: str = ""
    cols: IdentityColumns = field(default_factory=IdentityColumns)
    region: str = "ES"

    @property
    def fingerprints(self) -> str:
        return f"{self.name}_fp"

    def _copy_rows(self, condition: str) -> str | None:
        """The rows meeting ``condition`` (SQL on the table's row) not added yet, copied once (one scan
        of the table) with their rowid as ``__rid``: the copy's name, or None without identity columns."""
        names = [ident(c) for c in self.cols.columns()]
        if not names:
            return None
        sub = f"{self.name}_sub"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {sub} AS SELECT rowid AS __rid, {', '.join(names)} "
                         f"FROM {ident(self.table)} WHERE ({condition}) "
                         f"AND rowid NOT IN (SELECT rid FROM {self.name}_done)")
        return sub

    def add_rows(self, rids_sql: str) -> None:
        """Add the exact lines of the rows ``rids_sql`` (SQL of one column ``rid``) not added yet."""
        con = self.con
        sub = self._copy_rows(f"rowid IN (SELECT rid FROM ({rids_sql}))")
        if sub is None:
            return
        parts, made = [], []
        try:
            if not con.execute(f"SELECT count(*) FROM {sub}").fetchall()[0][0]:
                return
            for kind, src in key_sources(con, sub, self.cols, rid="__rid"):
                sql, m = values_sql(con, kind, src, self.region)
                made += m
                parts.append(f"SELECT rid, '{kind}' AS type, value FROM ({sql}) WHERE value IS NOT NULL")
            _insert_lines(con, self.name, self.rows, parts)
            con.execute(f"INSERT INTO {self.name}_done SELECT __rid FROM {sub}")
        finally:
            for t in (*made, sub):
                con.execute(f"DROP TABLE IF EXISTS {t}")

    def add_values(self, values_sql_: str) -> None:
        """Add the exact lines of every row holding one of ``values_sql_`` (SQL ``type, value``)."""
        self.add_rows(f"SELECT f.rid FROM {self.fingerprints} f JOIN (SELECT DISTINCT hash(type, value) AS h "
                      f"FROM ({values_sql_})) v ON v.h = f.h")

    def add_people(self, pids_sql: str) -> None:
        """Add the exact lines of every row of the people ``pids_sql`` (SQL of one column ``pid``)."""
        self.add_rows(f"SELECT rid FROM {self.rows} WHERE pid IN ({pids_sql})")

    def drop(self) -> None:
        for t in (self.fingerprints, f"{self.name}_done"):
            self.con.execute(f"DROP TABLE IF EXISTS {t}")
        super().drop()


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
    region: str = "ES",
    clusters: bool = True,
    cluster_map: str | None = None,
    only: str | None = None,
) -> LookupKeys:
    """Rows and fingerprints of ``table`` (one scan per identifier column); exact lines on demand.

    ``only`` (SQL ``type, value``): one question known in advance; the scan keeps the exact lines of
    those values and no fingerprints are made (``add_values`` and ``add_rows`` are then unavailable)."""
    keys = LookupKeys(con, name, f"{name}_rows", table=table, cols=cols, region=region)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {keys.rows} AS "
                f"{person_rows_sql(con, table, cols, clusters=clusters, cluster_map=cluster_map)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (rid BIGINT, pid VARCHAR, type VARCHAR, value VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_done (rid BIGINT)")
    parts, made = [], []
    for kind, src in key_sources(con, table, cols):
        sql, m = values_sql(con, kind, src, region)
        made += m
        if only is None:
            parts.append(f"SELECT rid, hash('{kind}', value) AS h FROM ({sql}) WHERE value IS NOT NULL")
        else:
            parts.append(f"SELECT rid, '{kind}' AS type, value FROM ({sql}) WHERE value IS NOT NULL "
                         f"AND value IN (SELECT value FROM ({only}) WHERE type = '{kind}')")
    try:
        if only is not None:
            _insert_lines(con, name, keys.rows, parts)
            return keys
        body = " UNION ALL ".join(parts) or "SELECT NULL::BIGINT AS rid, NULL::UBIGINT AS h"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {keys.fingerprints} AS SELECT * FROM ({body}) WHERE rid IS NOT NULL")
    finally:
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return keys
