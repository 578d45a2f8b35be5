"""Person keys of several tables on demand, each distinct raw value canonicalised once for all of them.

:func:`~crmtool.identity.keys.person_keys` canonicalises every row of each table it is given;
a workspace holds the same export several times (``data_``, ``work_``, ``clean_``: mostly the same
raw values), so an erasure canonicalised each value three times or more. :func:`shared_lookup_keys`
instead makes, once per run:

* per kind of identifier (email, phone, NIF), a temp table ``<name>_<kind> (raw, value)``: every
  distinct text found in a column of that kind in any of the tables, and its canonical lines (the
  same :func:`~crmtool.identity.keys.values_sql` over the distinct texts that
  :func:`~crmtool.identity.keys.person_keys` runs over the rows: an email gives its canonical form,
  and its plain form when the provider rules changed it). A customer id's canonical form is a
  trim, cheaper than a lookup: it is computed in place;
* per table, an empty line table. No table of every row's person is made: a row's person (dedupe
  cluster, customer id, else the row) is computed for the rows copied when they are asked about,
  and the rows of some people are found by their id, cluster and rowid columns
  (:func:`~crmtool.identity.keys.people_candidates_sql`) before their persons are compared.

Canonical forms are a function of the raw text (and the region), so a row's lines made by joining
its texts with the map are the lines :func:`person_keys` makes for it. The exact lines of the rows
asked about are added on demand (:meth:`SharedLookupKeys.add_values`, ``add_people``); the rows
holding one of a set of values are found by their raw texts (the map's texts whose canonical line
is asked about), which is exact, not a superset.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.identity.canonical import DEFAULT_REGION, EMAIL, ID, NIF, PHONE, id_sql, register_sql
from crmtool.identity.keys import (
    IdentityColumns,
    cluster_map_sql,
    people_candidates_sql,
    people_ids_sql,
    person_sql,
    values_sql,
)
from crmtool.identity.lookup import LookupKeys
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

_counter = itertools.count(1)
MAPPED = (EMAIL, PHONE, NIF)


def _kind_columns(cols: IdentityColumns) -> list[tuple[str, str]]:
    """``(kind, column)`` of each identifier column, in the order of :func:`~crmtool.identity.keys.key_sources`."""
    out = [(ID, cols.id)] if cols.id else []
    for kind, columns in ((EMAIL, cols.emails), (PHONE, cols.phones), (NIF, cols.nifs)):
        out += [(kind, c) for c in columns]
    return out


@dataclass
class ValueMaps:
    """The temp tables ``(raw, value)`` per kind (see the module doc); :meth:`drop` removes them."""

    con: duckdb.DuckDBPyConnection
    name: str
    tables: dict[str, str] = field(default_factory=dict)  # kind -> temp table
    texts: dict[str, str] = field(default_factory=dict)  # kind -> temp table (v): every distinct text, once

    @classmethod
    def build(cls, con: duckdb.DuckDBPyConnection, tables: dict[str, IdentityColumns], name: str,
              region: str = DEFAULT_REGION) -> ValueMaps:
        register_sql(con)
        maps = cls(con, name)
        for kind in MAPPED:
            texts = [f"SELECT CAST({ident(col)} AS VARCHAR) AS v FROM {ident(table)}"
                     for table, cols in tables.items() for k, col in _kind_columns(cols) if k == kind]
            if not texts:
                continue
            # the distinct texts are kept (maps.texts): a file matched later copies them as they are,
            # rather than grouping the map's lines again (match_other_db)
            src, made = f"{name}_{kind}_src", list[str]()
            maps.texts[kind] = src
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {src} AS SELECT DISTINCT v "
                            f"FROM ({' UNION ALL '.join(texts)}) WHERE v IS NOT NULL")
                # each text is its own row key: the lines come out keyed by the text (no join back)
                sql, made = values_sql(con, kind, f"SELECT v AS rid, v FROM {src}", region)
                maps.tables[kind] = f"{name}_{kind}"
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_{kind} AS SELECT rid AS raw, value "
                            f"FROM ({sql}) WHERE value IS NOT NULL")
            except BaseException:
                maps.drop()
                raise
            finally:
                for t in made:
                    con.execute(f"DROP TABLE IF EXISTS {t}")
        return maps

    def lines_sql(self, kind: str, table: str, column: str, rid: str = "rowid") -> str:
        """SQL ``(rid, type, value)``: the canonical lines of ``table.column`` (a column of ``kind``)."""
        text = f"t.{ident(column)}"
        if kind == ID:
            return (f"SELECT rid, '{ID}' AS type, value FROM (SELECT t.{rid} AS rid, "
                    f"{id_sql(f'CAST({text} AS VARCHAR)')} AS value FROM {ident(table)} t) WHERE value IS NOT NULL")
        return (f"SELECT t.{rid} AS rid, '{kind}' AS type, m.value FROM {ident(table)} t "
                f"JOIN {self.tables[kind]} m ON m.raw = CAST({text} AS VARCHAR)")

    def raws_matching(self, values_sql_: str) -> str:
        """Temp table ``(type, raw)``: the texts of the maps one of whose lines is in ``values_sql_``
        (SQL ``type, value``); ids are their own texts here (see :meth:`rows_holding_sql`)."""
        out = f"{self.name}_asked_{next(_counter)}"
        parts = [f"SELECT '{ID}' AS type, value AS raw FROM asked WHERE type = '{ID}'"]
        parts += [f"SELECT DISTINCT '{kind}' AS type, m.raw FROM {t} m JOIN asked a ON a.type = '{kind}' "
                  f"AND a.value = m.value" for kind, t in self.tables.items()]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS WITH asked AS MATERIALIZED "
                         f"(SELECT DISTINCT type, value FROM ({values_sql_})) {' UNION ALL '.join(parts)}")
        return out

    def holding_sql(self, cols: IdentityColumns, raws: str) -> str:
        """SQL condition on a table's row: it holds a text of ``raws`` (from :meth:`raws_matching`)."""
        parts = []
        for kind, col in _kind_columns(cols):
            text = f"CAST({ident(col)} AS VARCHAR)"
            if kind == ID or kind in self.tables:
                expr = id_sql(text) if kind == ID else text
                parts.append(f"{expr} IN (SELECT raw FROM {raws} WHERE type = '{kind}')")
        return " OR ".join(parts) or "false"

    def rows_holding_sql(self, table: str, cols: IdentityColumns, raws: str) -> str:
        """SQL ``rid``: the rows of ``table`` with a text in ``raws`` (from :meth:`raws_matching`)."""
        return f"SELECT rowid AS rid FROM {ident(table)} WHERE {self.holding_sql(cols, raws)}"

    def drop(self) -> None:
        for t in (*self.tables.values(), *self.texts.values()):
            self.con.execute(f"DROP TABLE IF EXISTS {t}")
        self.tables.clear()
        self.texts.clear()


@dataclass
class SharedLookupKeys(LookupKeys):
    """:class:`LookupKeys` whose exact lines come from shared :class:`ValueMaps` (see the module doc)."""

    maps: ValueMaps | None = None
    cluster_map: str | None = None  # SQL (record_id, cluster_id) the persons are read through, if any

    def _persons_sql(self, condition: str, pids_sql: str | None = None) -> str:
        """SQL ``(__rid, __pid, *)``: the rows of the table meeting ``condition`` (SQL on its row ``t``),
        with their rowid and their person (:func:`~crmtool.identity.keys.person_sql`, computed only for
        those rows); with ``pids_sql`` (one column ``pid``), only the rows of those people."""
        cmap = self.cluster_map
        if cmap and self.cols.id:
            # only the map's lines of these rows' ids: no hash table over the whole map per question
            cmap = (f"SELECT record_id, cluster_id FROM ({cmap}) WHERE record_id IN "
                    f"(SELECT {id_sql(f't.{ident(self.cols.id)}')} FROM __s t)")
        pid, join = person_sql(self.con, self.table, self.cols, clusters=cmap is not None, cluster_map=cmap,
                               rid="__rid")
        sql = (f"WITH __s AS MATERIALIZED (SELECT rowid AS __rid, * FROM {ident(self.table)} t "
               f"WHERE {condition}) SELECT t.*, {pid} AS __pid FROM __s t {join}")
        return f"SELECT * FROM ({sql}) WHERE __pid IN ({pids_sql})" if pids_sql else sql

    def persons_of_sql(self, pids_sql: str) -> str:
        """SQL ``(rid, pid)``: every row of the people ``pids_sql`` (one column ``pid``) and its person
        (one scan of the table; persons are computed only for the rows that may be theirs)."""
        cand = people_candidates_sql(self.table, self.cols, pids_sql, cluster_map=self.cluster_map)
        return f"SELECT __rid AS rid, __pid AS pid FROM ({self._persons_sql(cand, pids_sql)})"

    def added_persons_of_sql(self, pids_sql: str) -> str:
        """SQL ``(rid, pid)``: the rows of the people ``pids_sql`` among the rows added so far (no scan of
        the table). Every row of theirs is there once :meth:`add_people` ran for them, or when each of
        them is a row without an id (``r:``) added by one of its values."""
        return f"SELECT rid, pid FROM {self.name}_done WHERE pid IN ({pids_sql})"

    def rows_of(self, pids_sql: str) -> str:
        return f"SELECT rid FROM ({self.persons_of_sql(pids_sql)})"

    def add_rows(self, rids_sql: str) -> None:
        """Add the exact lines of the rows ``rids_sql`` (SQL of one column ``rid``) not added yet."""
        self._add_where(f"t.rowid IN (SELECT rid FROM ({rids_sql}))")

    def _add_where(self, condition: str, pids_sql: str | None = None) -> None:
        """Add the exact lines of the rows meeting ``condition`` (SQL on the table's row ``t``; with
        ``pids_sql``, of those people only) not added yet."""
        add_rows_where([self], {self.name: condition}, pids_sql)

    def add_raws(self, raws: str) -> None:
        """Add the exact lines of every row holding a text of ``raws`` (:meth:`ValueMaps.raws_matching`)."""
        assert self.maps is not None
        self._add_where(self.maps.holding_sql(self.cols, raws))  # one scan of the table

    def add_values(self, values_sql_: str) -> None:
        """Add the exact lines of every row holding one of ``values_sql_`` (SQL ``type, value``)."""
        assert self.maps is not None
        raws = self.maps.raws_matching(values_sql_)
        try:
            self.add_raws(raws)
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {raws}")

    def add_people(self, pids_sql: str) -> None:
        """Add the exact lines of every row of the people ``pids_sql`` (SQL of one column ``pid``)."""
        add_people([self], pids_sql)

    def drop(self) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {self.name}_done")
        super().drop()


def add_rows_where(keys: list[SharedLookupKeys], conditions: dict[str, str], pids_sql: str | None = None) -> None:
    """One round over several tables: add to each key the exact lines of its table's rows meeting
    ``conditions[key.name]`` (SQL on the row ``t``; with ``pids_sql``, of those people only) not added yet.

    Each table is scanned once for the rows (no join there); the persons of the rows copied from all
    tables are then read through one look-up in the cluster map (the map's lines of their ids), and
    their canonical lines through one join with each value map: a round reads the cluster map and
    the maps once, not once per table. The keys share their value maps and cluster map."""
    keys = [k for k in keys if k.cols.columns()]
    if not keys:
        return
    con, maps, cmap = keys[0].con, keys[0].maps, keys[0].cluster_map
    assert maps is not None
    tag = f"{keys[0].name}_r{next(_counter)}"
    made: list[str] = []
    try:
        subs = []
        for i, k in enumerate(keys):
            names = k.cols.columns() + ([k.cols.cluster] if k.cols.cluster and k.cols.cluster not in k.cols.columns()
                                        else [])
            sub = f"{tag}_{i}"
            made.append(sub)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {sub} AS SELECT t.rowid AS __rid, "
                        f"{', '.join(f't.{ident(c)}' for c in names)} FROM {ident(k.table)} t "
                        f"WHERE ({conditions[k.name]}) AND t.rowid NOT IN (SELECT rid FROM {k.name}_done)")
            subs.append(sub)
        clustered = [(k, sub) for k, sub in zip(keys, subs, strict=True) if cmap and k.cols.id and not k.cols.cluster]
        cl = None
        if clustered:
            # the cluster map's lines of the copied rows' ids, read once for every table of the round
            cl = f"{tag}_cl"
            made.append(cl)
            ids = " UNION ALL ".join(f"SELECT {id_sql(ident(str(k.cols.id)))} FROM {sub}" for k, sub in clustered)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {cl} AS SELECT record_id, cluster_id FROM ({cmap}) "
                        f"WHERE record_id IN ({ids})")
        texts: dict[str, list[str]] = {}
        ids_parts: list[str] = []
        persons = []
        for i, (k, sub) in enumerate(zip(keys, subs, strict=True)):
            pid, join = person_sql(con, k.table, k.cols, clusters=cl is not None,
                                   cluster_map=f"SELECT record_id, cluster_id FROM {cl}" if cl else None, rid="__rid")
            rows = f"SELECT t.*, {pid} AS __pid FROM {sub} t {join}"
            if pids_sql:
                rows = f"SELECT * FROM ({rows}) WHERE __pid IN ({pids_sql})"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {sub}_p AS {rows}")
            made.append(f"{sub}_p")
            persons.append(f"{sub}_p")
            for kind, col in _kind_columns(k.cols):
                text = f"CAST({ident(col)} AS VARCHAR)"
                if kind == ID:
                    ids_parts.append(f"SELECT {i} AS k, __rid AS rid, __pid AS pid, '{ID}' AS type, "
                                     f"{id_sql(text)} AS value FROM {sub}_p")
                elif kind in maps.tables:
                    texts.setdefault(kind, []).append(f"SELECT {i} AS k, __rid AS rid, __pid AS pid, {text} AS raw "
                                                      f"FROM {sub}_p")
        # every table's new lines in one statement: each value map is joined once per round
        parts = [f"SELECT * FROM ({' UNION ALL '.join(ids_parts)}) WHERE value IS NOT NULL"] if ids_parts else []
        parts += [f"SELECT s.k, s.rid, s.pid, '{kind}' AS type, m.value FROM ({' UNION ALL '.join(srcs)}) s "
                  f"JOIN {maps.tables[kind]} m ON m.raw = s.raw" for kind, srcs in texts.items()]
        lines = f"{tag}_lines"
        made.append(lines)
        none = "SELECT 0 AS k, NULL::BIGINT AS rid, NULL AS pid, NULL AS type, NULL AS value WHERE false"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {lines} AS SELECT DISTINCT k, rid, pid, type, value "
                    f"FROM ({' UNION ALL '.join(parts) or none})")
        for i, (k, rows_t) in enumerate(zip(keys, persons, strict=True)):
            con.execute(f"INSERT INTO {k.name} SELECT rid, pid, type, value FROM {lines} WHERE k = {i}")
            con.execute(f"INSERT INTO {k.name}_done SELECT __rid, __pid FROM {rows_t}")
    finally:
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")


def add_people(keys: list[SharedLookupKeys], pids_sql: str) -> None:
    """One round (:func:`add_rows_where`) adding every row, in every table of ``keys``, of the people
    ``pids_sql`` (one column ``pid``). The ids those people may hold are read from the cluster map
    once for all tables (:func:`~crmtool.identity.keys.people_ids_sql`)."""
    keys = [k for k in keys if k.cols.columns()]
    if not keys:
        return
    con, cmap = keys[0].con, keys[0].cluster_map
    ids = f"{keys[0].name}_pids_{next(_counter)}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ids} AS SELECT DISTINCT v FROM ({people_ids_sql(pids_sql, cmap)}) x(v)")
    try:
        conds = {k.name: people_candidates_sql(k.table, k.cols, pids_sql, cluster_map=cmap,
                                               ids_sql=f"SELECT v FROM {ids}") for k in keys}
        add_rows_where(keys, conds, pids_sql)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {ids}")


def shared_lookup_keys(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, IdentityColumns],
    *,
    name: str,
    region: str = DEFAULT_REGION,
    clusters: bool = True,
    cluster_map: str | None = None,
) -> tuple[ValueMaps, dict[str, SharedLookupKeys]]:
    """The value maps of ``tables`` and, per table, an empty line table (``<name>_<i>``); the persons of
    rows are computed when they are asked about (:meth:`SharedLookupKeys.persons_of_sql`).

    The caller drops every key and then the maps."""
    cmap = (cluster_map or cluster_map_sql(con)) if clusters else None
    maps = ValueMaps.build(con, tables, f"{name}_map", region)
    out: dict[str, SharedLookupKeys] = {}
    try:
        for i, (table, cols) in enumerate(tables.items()):
            k = SharedLookupKeys(con, f"{name}_{i}", f"{name}_{i}_rows", table=table, cols=cols, region=region,
                                 maps=maps, cluster_map=cmap)
            out[table] = k
            con.execute(f"CREATE OR REPLACE TEMP TABLE {k.name} (rid BIGINT, pid VARCHAR, type VARCHAR, value VARCHAR)")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {k.name}_done (rid BIGINT, pid VARCHAR)")
    except BaseException:
        for k in out.values():
            k.drop()
        maps.drop()
        raise
    return maps, out


def match_other_db(
    other: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    maps: ValueMaps,
    targets: str,
    other_targets: str,
    region: str = DEFAULT_REGION,
) -> tuple[str, list[str]]:
    """SQL on ``other`` (another database, e.g. the private one a file is read into) giving ``(rid, ref)``:
    the rows of ``table`` holding the canonical value of a target, and the temp tables it made there.

    ``targets`` (on the maps' connection) and ``other_targets`` (on ``other``) hold the same
    ``(ref, type, value)``. A text the maps know has its canonical lines there already: the texts
    whose line is a target come over, and every known text once, so that only the texts the maps do
    not hold are canonicalised (``values_sql``, as :func:`~crmtool.identity.lookup.lookup_keys` does
    for every row). Same rows as canonicalising every row of ``table``."""
    parts, made = [], []
    for i, (kind, col) in enumerate(_kind_columns(cols)):
        text = f"CAST(s.{ident(col)} AS VARCHAR)"
        if kind == ID:
            parts.append(f"SELECT s.rowid AS rid, t.ref FROM {ident(table)} s JOIN {other_targets} t "
                         f"ON t.type = '{ID}' AND t.value = {id_sql(text)}")
            continue
        hit, new = f"__vm_hit_{i}", f"__vm_new_{i}"
        made += [hit, new]
        if kind in maps.tables:
            known = f"__vm_known_{i}"
            made.append(known)
            _copy(maps.con, f"SELECT v AS raw FROM {maps.texts[kind]}", other, known)
            _copy(maps.con, f"SELECT DISTINCT m.raw, t.ref FROM {maps.tables[kind]} m JOIN {targets} t "
                            f"ON t.type = '{kind}' AND t.value = m.value", other, hit)
            unknown = f"AND v NOT IN (SELECT raw FROM {known})"
        else:
            other.execute(f"CREATE OR REPLACE TEMP TABLE {hit} (raw VARCHAR, ref VARCHAR)")
            unknown = ""
        other.execute(f"CREATE OR REPLACE TEMP TABLE {new} AS SELECT DISTINCT v FROM "
                      f"(SELECT {text} AS v FROM {ident(table)} s) WHERE v IS NOT NULL {unknown}")
        sql, m = values_sql(other, kind, f"SELECT v AS rid, v FROM {new}", region)
        made += m
        other.execute(f"INSERT INTO {hit} SELECT DISTINCT x.rid, t.ref FROM ({sql}) x JOIN {other_targets} t "
                      f"ON t.type = '{kind}' AND t.value = x.value")
        parts.append(f"SELECT s.rowid AS rid, h.ref FROM {ident(table)} s JOIN {hit} h ON h.raw = {text}")
    return " UNION ALL ".join(parts) or "SELECT NULL::BIGINT AS rid, NULL::VARCHAR AS ref WHERE false", made


def _copy(src: duckdb.DuckDBPyConnection, query: str, dst: duckdb.DuckDBPyConnection, name: str) -> None:
    """Temp table ``name`` on ``dst`` with the result of ``query`` on ``src`` (through Arrow)."""
    from crmtool.db import fetch_arrow

    dst.register("__vm_arrow", fetch_arrow(src, query))
    try:
        dst.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __vm_arrow")
    finally:
        dst.unregister("__vm_arrow")
