"""Person keys of a table: every row's identifiers in canonical form, and the person each row belongs to.

:func:`person_keys` builds two temp tables for any loaded table (one scan per identifier column):

* ``<name>_rows (rid, r, pid)``: every row (``rid`` its rowid, ``r`` its ``_row`` when the table
  has one) and its *person*: the dedupe cluster when dedupe ran (``c:<cluster>``), else the
  customer id (``i:<id>``), else the row itself (``r:<rid>``). Rows of one person share a ``pid``.
* ``<name> (rid, pid, type, value)``: one line per identifier of a row: ``id``, ``email``
  (canonical form, plus the plain form when the provider rules changed it), ``phone`` (E.164),
  ``nif``. Values are in clear: the tables are temporary (never in the workspace file) and
  :meth:`PersonKeys.drop` removes them.

Matching a register of keyed tokens (suppressions, bounces, erasures) is then one join on
``crm_token(value)``; matching a request file in clear is one join on ``value``. Either way the
match widens to the whole person: :meth:`PersonKeys.persons_matching` returns pids, and
:meth:`PersonKeys.rows_of` the rows of those people.

Vectorised: emails and NIFs take a SQL fast path (plain ASCII), phones the libphonenumber
metadata fast path (:mod:`crmtool.kinds.phone_sql`); Python runs only over the distinct odd values.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.identity.canonical import (
    DEFAULT_REGION,
    EMAIL,
    EMAIL_FAST,
    ID,
    NIF,
    NIF_FAST,
    PHONE,
    canonical_email,
    canonical_nif,
    canonical_phone,
    id_sql,
    legacy_nif,
    legacy_plain_email,
    plain_email,
    register_sql,
)
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

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
_counter = itertools.count(1)


@dataclass
class IdentityColumns:
    """Where a table keeps a person's identifiers."""

    id: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    nifs: list[str] = field(default_factory=list)
    cluster: str | None = None  # a cluster_id column (golden records, cluster tables)

    @property
    def empty(self) -> bool:
        return not (self.id or self.emails or self.phones or self.nifs)

    def columns(self) -> list[str]:
        """The identifier columns, each once (id, emails, phones, NIFs)."""
        return list(dict.fromkeys([*([self.id] if self.id else []), *self.emails, *self.phones, *self.nifs]))




def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def detect_identity_columns(con: duckdb.DuckDBPyConnection, table: str, key: str | None = None) -> IdentityColumns:
    """Id, email, phone and NIF columns of ``table`` by name (``key`` wins for the id when present)."""
    from crmtool.pii import category_from_name

    cols = table_columns(con, table)
    names = [c for c, _t in cols]
    found = IdentityColumns()
    lowered = {c.lower(): c for c in names}
    if key and key in names:
        found.id = key
    else:
        found.id = next((lowered[c] for c in ID_NAMES if c in lowered), None)
    if "cluster_id" in lowered:
        found.cluster = lowered["cluster_id"]
    for col, ctype in cols:
        if col == found.id or not (ctype.upper() in ("VARCHAR", "TEXT") or ctype.upper().startswith("VARCHAR")):
            continue
        category = category_from_name(col)
        if category == "email":
            found.emails.append(col)
        elif category == "phone":
            found.phones.append(col)
        elif category == "national_id":
            found.nifs.append(col)
    return found


def _odd_map(con: duckdb.DuckDBPyConnection, source: str, fast: str, fn: object) -> str | None:
    """Temp table ``(raw, norm)`` of ``fn`` over the distinct values of ``source`` (SQL ``SELECT v``)
    outside the fast-path pattern ``fast``; ``None`` when there are none.

    The values go to Python a batch at a time (:func:`crmtool.db.map_in_batches`), so a 10M-row
    export's odd values are never all held in Python at once."""
    from crmtool.db import map_in_batches

    name = f"__idk_map_{next(_counter)}"
    query = f"SELECT DISTINCT v FROM ({source}) WHERE v IS NOT NULL AND NOT regexp_matches(v, {sql_str(fast)})"
    if not map_in_batches(con, query, name, _odd_batch(fn), {"raw": "VARCHAR", "norm": "VARCHAR"}):
        con.execute(f"DROP TABLE {name}")
        return None
    return name


def _odd_batch(fn: object) -> Callable[[list[str]], dict[str, list[Any]]]:
    """The batch function of :func:`_odd_map`: ``fn`` once per distinct odd value."""

    def mapped(values: list[str]) -> dict[str, list[Any]]:
        return {"raw": values, "norm": [fn(v) for v in values]}  # type: ignore[operator]

    return mapped


def _phone_values(con: duckdb.DuckDBPyConnection, source: str, region: str) -> tuple[str, list[str]]:
    """SQL ``(rid, value)`` of the canonical phones of ``source`` and the temp tables it made.

    The libphonenumber fast path (:mod:`crmtool.kinds.phone_sql`) runs once per row into a temp table; a
    number plainly too short is invalid, and the canonical form of an invalid number is its digits,
    which are then its compact spelling. The library runs once per distinct value left open."""
    import pyarrow as pa

    from crmtool.db import fetch_arrow
    from crmtool.kinds.phone_sql import compact_sql, e164_fast_sql, invalid_fast_sql

    name = f"__idk_map_{next(_counter)}"
    settled = (f"coalesce({e164_fast_sql('', region, compact='f')}, "
               f"CASE WHEN {invalid_fast_sql('', region, compact='f')} THEN nullif(f, '') END)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_src AS SELECT rid, v, {settled} AS fast "
                f"FROM (SELECT rid, v, {compact_sql('v')} AS f FROM ({source}))")
    made = [f"{name}_src"]
    open_values = fetch_arrow(
        con, f"SELECT DISTINCT v FROM {name}_src WHERE v IS NOT NULL AND fast IS NULL"
    ).column(0).to_pylist()
    if not open_values:
        return f"SELECT rid, fast AS value FROM {name}_src", made
    normed = [canonical_phone(v, region) for v in open_values]  # once per distinct open value
    con.register("__idk_arrow", pa.table({"raw": pa.array(open_values, pa.string()),
                                          "norm": pa.array(normed, pa.string())}))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __idk_arrow")
    con.unregister("__idk_arrow")
    made.append(name)
    return (f"SELECT s.rid, coalesce(s.fast, m.norm) AS value FROM {name}_src s "
            f"LEFT JOIN {name} m ON m.raw = s.v AND s.fast IS NULL"), made


def values_sql(
    con: duckdb.DuckDBPyConnection, kind: str, source: str, region: str = DEFAULT_REGION, *, plain: bool = True
) -> tuple[str, list[str]]:
    """SQL over ``source`` (a query with columns ``rid, v``) giving ``(rid, value)`` rows of canonical
    ``kind`` values (emails: canonical and, with ``plain``, the plain form when different; NIFs likewise
    the :func:`~crmtool.identity.canonical.legacy_nif` form older registers hold), plus the
    temp tables it made (the caller drops them)."""
    register_sql(con)
    made: list[str] = []
    if kind == ID:
        return f"SELECT rid, {id_sql('v')} AS value FROM ({source})", made
    if kind == EMAIL:
        return _email_sql(con, source, plain=plain)
    if kind == NIF:
        odd = _odd_map(con, source, NIF_FAST, _nif_forms)
        if odd:
            made.append(odd)
            # an odd spelling's line is its canonical form and, with ``plain``, the form registers
            # written before NFKC hold (legacy_nif) when that differs
            sql = (f"SELECT s.rid, CASE WHEN m.raw IS NULL THEN crm_nif_canon(s.v) "
                   f"ELSE nullif(split_part(m.norm, chr(10), 1), '') END AS value, "
                   f"nullif(split_part(m.norm, chr(10), 2), '') AS old FROM ({source}) s "
                   f"LEFT JOIN {odd} m ON m.raw = s.v")
            also = " UNION ALL SELECT rid, old FROM n WHERE value IS NOT NULL AND old <> value" if plain else ""
        else:
            sql, also = f"SELECT rid, crm_nif_canon(v) AS value FROM ({source})", ""
        # materialised: a reader's `WHERE value IS NOT NULL` is otherwise pushed below the projection and
        # the macro (three regexp_replace) runs twice per text (927k texts: 0.49 -> 0.14 CPU-s)
        return f"WITH n AS MATERIALIZED ({sql}) SELECT rid, value FROM n{also}", made
    return _phone_values(con, source, region)


def _nif_forms(value: str) -> str:
    """``canonical\nlegacy`` of an odd NIF spelling (empty parts for none)."""
    return f"{canonical_nif(value) or ''}\n{legacy_nif(value) or ''}"


def _email_sql(con: duckdb.DuckDBPyConnection, source: str, *, plain: bool) -> tuple[str, list[str]]:
    """:func:`values_sql` for emails: plain ASCII addresses in SQL (``lower(trim(v))``, then the provider
    rules of ``crm_email_canon``), the others through Python once per distinct value. Each row's
    canonical form, and its plain form as a second row when the provider rules changed it."""
    made: list[str] = []
    odd = _odd_map(con, source, EMAIL_FAST, _email_forms)
    plain_sql = "lower(trim(s.v))"
    if odd:
        made.append(odd)
        p = f"coalesce(split_part(m.norm, chr(10), 1), {plain_sql})"
        c = f"coalesce(split_part(m.norm, chr(10), 2), crm_email_canon({plain_sql}))"
        old = "split_part(m.norm, chr(10), 3)"
        join = f"LEFT JOIN {odd} m ON m.raw = s.v"
    else:
        p, c, old, join = plain_sql, f"crm_email_canon({plain_sql})", "NULL", ""
    inner = (f"SELECT s.rid, nullif({p}, '') AS p, nullif({c}, '') AS c, nullif({old}, '') AS o "
             f"FROM ({source}) s {join} WHERE s.v IS NOT NULL")
    if not plain:
        return f"SELECT rid, c AS value FROM ({inner}) WHERE c IS NOT NULL", made
    # each row is canonicalised once (a materialised CTE; a list per row and unnest cost 6x as much);
    # an odd address also carries the plain form older registers hold (legacy_plain_email) when it differs
    legacy = " UNION ALL SELECT rid, o FROM e WHERE o <> p AND o <> c" if odd else ""
    return (
        f"WITH e AS MATERIALIZED ({inner}) "
        f"SELECT rid, c AS value FROM e WHERE c IS NOT NULL UNION ALL SELECT rid, p FROM e WHERE p <> c{legacy}"
    ), made


def _email_forms(value: str) -> str:
    """``plain\ncanonical\nlegacy plain`` of an odd address (empty parts for none)."""
    return f"{plain_email(value) or ''}\n{canonical_email(value) or ''}\n{legacy_plain_email(value) or ''}"


@dataclass
class PersonKeys:
    """The two temp tables of :func:`person_keys` and the helpers that read them."""

    con: duckdb.DuckDBPyConnection
    name: str
    rows: str
    made: list[str] = field(default_factory=list)

    def persons_matching(self, register_sql: str, *, tokens: bool = True) -> str:
        """SQL: distinct ``pid`` of people with an identifier in ``register_sql`` (``type, token``, or
        ``type, value`` when ``tokens`` is false)."""
        on = "crm_token(k.value) = g.token" if tokens else "k.value = g.value"
        return f"SELECT DISTINCT k.pid FROM {self.name} k JOIN ({register_sql}) g ON g.type = k.type AND {on}"

    def rows_of(self, pids_sql: str) -> str:
        """SQL: ``rid`` of every row of the people in ``pids_sql``."""
        return f"SELECT rid FROM {self.rows} WHERE pid IN ({pids_sql})"

    def drop(self) -> None:
        for t in (self.name, self.rows, *self.made):
            self.con.execute(f"DROP TABLE IF EXISTS {t}")
        self.made.clear()


def person_sql(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    *,
    clusters: bool = True,
    cluster_map: str | None = None,
    rid: str = "rowid",
) -> tuple[str, str]:
    """``(pid, join)``: the SQL of a row's person (on the table's row ``t``, numbered by its column
    ``rid``) and the join it needs after ``FROM <table> t`` (the cluster map's ``dc``, or nothing);
    see the module doc."""
    idv = id_sql(f"t.{ident(cols.id)}") if cols.id else "CAST(NULL AS VARCHAR)"
    pid = f"coalesce('i:' || {idv}, 'r:' || {sql_str(table)} || ':' || CAST(t.{rid} AS VARCHAR))"
    join = ""
    if cols.cluster:
        pid = f"coalesce('c:' || CAST(t.{ident(cols.cluster)} AS VARCHAR), {pid})"
    elif clusters and cols.id and (cmap := cluster_map or cluster_map_sql(con)):
        join = f"LEFT JOIN ({cmap}) dc ON dc.record_id = {idv}"
        pid = f"coalesce('c:' || dc.cluster_id, {pid})"
    return pid, join


def people_ids_sql(pids_sql: str, cluster_map: str | None = None) -> str:
    """SQL of one column: the customer ids whose rows may belong to the people ``pids_sql`` (one
    column ``pid``): the ids of ``i:`` people and, with ``cluster_map``, the record ids of the ``c:``
    clusters. Made once, it serves :func:`people_candidates_sql` for every table (``ids_sql``)."""
    ids = _pids_of(pids_sql, "i:")
    if cluster_map:
        ids += f" UNION ALL SELECT record_id FROM ({cluster_map}) WHERE cluster_id IN ({_pids_of(pids_sql, 'c:')})"
    return ids


def _pids_of(pids_sql: str, prefix: str) -> str:
    return f"SELECT substr(pid, {len(prefix) + 1}) FROM ({pids_sql}) WHERE starts_with(pid, {sql_str(prefix)})"


def people_candidates_sql(table: str, cols: IdentityColumns, pids_sql: str, *, cluster_map: str | None = None,
                          ids_sql: str | None = None) -> str:
    """SQL condition on a row ``t`` of ``table``: it may belong to one of the people ``pids_sql`` (one
    column ``pid``). Every row whose person (:func:`person_sql`, with ``cluster_map`` the map it was
    given, or None without one) is among them meets it, so filtering on the person after it is exact;
    it reads the id, cluster and rowid columns only, no join. ``ids_sql``: :func:`people_ids_sql` of the
    same people and map, made once by the caller (it then reads no cluster map here)."""
    parts = [f"t.rowid IN (SELECT TRY_CAST(substr(pid, {len('r:' + table + ':') + 1}) AS BIGINT) FROM ({pids_sql}) "
             f"WHERE starts_with(pid, {sql_str('r:' + table + ':')}))"]
    if cols.cluster:
        parts.append(f"CAST(t.{ident(cols.cluster)} AS VARCHAR) IN ({_pids_of(pids_sql, 'c:')})")
    if cols.id:
        ids = ids_sql if ids_sql is not None and not cols.cluster else people_ids_sql(
            pids_sql, None if cols.cluster else cluster_map)
        parts.append(f"{id_sql(f't.{ident(cols.id)}')} IN ({ids})")
    return " OR ".join(f"({p})" for p in parts)


def person_rows_sql(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    *,
    clusters: bool = True,
    cluster_map: str | None = None,
    also: str = "",
) -> str:
    """SQL ``(rid, r, pid)``: every row of ``table`` and its person (see the module doc); ``also``: more
    columns of the same scan (SQL select items on the table's row ``t``, e.g. ``t.x AS x``)."""
    t = ident(table)
    names = {c for c, _t in table_columns(con, table)}
    r_expr = "t._row" if "_row" in names else "t.rowid"
    pid, join = person_sql(con, table, cols, clusters=clusters, cluster_map=cluster_map)
    more = f", {also}" if also else ""
    return f"SELECT t.rowid AS rid, {r_expr} AS r, {pid} AS pid{more} FROM {t} t {join}"


def key_sources(
    con: duckdb.DuckDBPyConnection, table: str, cols: IdentityColumns, extra: list[tuple[str, str, str]] | None = None,
    *, rid: str = "rowid",
) -> list[tuple[str, str]]:
    """``(kind, SQL (rid, v))`` per identifier column of ``table`` (and of ``extra``, see :func:`person_keys`);
    ``rid``: the column that numbers the rows (a copy of some rows keeps their ``rowid`` in a column)."""
    t = ident(table)
    names = {c for c, _t in table_columns(con, table)}
    sources: list[tuple[str, str]] = []
    if cols.id:
        sources.append((ID, f"SELECT t.{rid} AS rid, CAST(t.{ident(cols.id)} AS VARCHAR) AS v FROM {t} t"))
    for kind, columns in ((EMAIL, cols.emails), (PHONE, cols.phones), (NIF, cols.nifs)):
        for col in columns:
            sources.append((kind, f"SELECT t.{rid} AS rid, CAST(t.{ident(col)} AS VARCHAR) AS v FROM {t} t"))
    for other, col, kind in extra or []:
        if "_row" in names:
            sources.append((kind, f"SELECT t.{rid} AS rid, CAST(o.{ident(col)} AS VARCHAR) AS v FROM {t} t "
                                  f"JOIN {ident(other)} o ON o._row = t._row"))
    return sources


def person_keys(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    *,
    name: str | None = None,
    extra: list[tuple[str, str, str]] | None = None,
    region: str = DEFAULT_REGION,
    clusters: bool = True,
    cluster_map: str | None = None,
) -> PersonKeys:
    """Build the person keys of ``table`` (see the module doc).

    ``extra`` adds identifier columns of *another* table holding the same rows by ``_row``:
    ``(table, column, kind)``: the address as loaded, before a rule fixed it, is one of the
    person's addresses too (bounces name the address that was sent). ``cluster_map``: SQL
    ``(record_id, cluster_id)`` made once by the caller (:func:`cluster_map_table`) for several tables.
    """
    register_sql(con)
    name = name or f"__idk_{next(_counter)}"
    keys = PersonKeys(con, name, f"{name}_rows")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {keys.rows} AS "
                f"{person_rows_sql(con, table, cols, clusters=clusters, cluster_map=cluster_map)}")
    body, distinct = person_lines_sql(con, table, cols, keys.made, extra=extra, region=region)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {'DISTINCT ' if distinct else ''}k.rid, r.pid, k.type, k.value "
        f"FROM ({body}) k JOIN {keys.rows} r ON r.rid = k.rid"
    )
    return keys


def person_lines_sql(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    made: list[str],
    *,
    extra: list[tuple[str, str, str]] | None = None,
    region: str = DEFAULT_REGION,
) -> tuple[str, bool]:
    """SQL ``(rid, type, value)``: the identifier lines of every row of ``table`` that :func:`person_keys`
    stores (``extra`` as there), not materialised; the temp tables it needs are appended to ``made``
    (the caller drops them). The flag says a line may repeat (two columns of one kind): only then
    does a reader that needs each line once pay a DISTINCT."""
    parts: list[str] = []
    sources = key_sources(con, table, cols, extra)
    for kind, src in sources:
        sql, m = values_sql(con, kind, src, region)
        made.extend(m)
        parts.append(f"SELECT rid, '{kind}' AS type, value FROM ({sql}) WHERE value IS NOT NULL")
    body = " UNION ALL ".join(parts) or (
        "SELECT NULL::BIGINT AS rid, NULL::VARCHAR AS type, NULL::VARCHAR AS value WHERE false")
    # one source per kind gives each (rid, type, value) once by construction (a row's plain email
    # differs from its canonical one): DISTINCT over millions of lines is only paid when two
    # columns of one kind may repeat a value
    kinds = [kind for kind, _src in sources]
    return body, len(kinds) != len(set(kinds))


def cluster_map_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """SQL ``(record_id, cluster_id)`` from every dedupe table that maps a record id to a cluster
    (``dedupe_records`` and other ``dedupe*`` tables with an id and a ``cluster_id``); ``None``: none."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database() AND table_name LIKE 'dedupe%' ORDER BY table_name"
        ).fetchall()
    ]
    parts = []
    for table in tables:
        cols = detect_identity_columns(con, table)
        if cols.id and cols.cluster and cols.id != cols.cluster:
            parts.append(
                f"SELECT {id_sql(ident(cols.id))} AS record_id, CAST({ident(cols.cluster)} AS VARCHAR) AS cluster_id "
                f"FROM {ident(table)}"
            )
    if not parts:
        return None
    return (
        f"SELECT record_id, min(cluster_id) AS cluster_id FROM ({' UNION ALL '.join(parts)}) "
        f"WHERE record_id IS NOT NULL AND cluster_id IS NOT NULL GROUP BY record_id"
    )


def cluster_map_table(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """:func:`cluster_map_sql` made once into temp table ``name`` (for the person keys of several tables);
    returns SQL reading it, ``None`` when there is no dedupe table. The caller drops ``name``."""
    sql = cluster_map_sql(con)
    if sql is None:
        return None
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    return f"SELECT record_id, cluster_id FROM {name}"


#: workspace tables that never hold customer values in clear
TOKEN_TABLE_PREFIXES = ("crm_", "privacy_", "email_bounces", "dedupe_model", "emails_mx")
#: run-history tables that do hold customer ids in clear despite their prefix (campaign arms)
CLEAR_HISTORY_TABLES = ("crm_campaign_members",)


def customer_tables(con: duckdb.DuckDBPyConnection, key: str | None = None) -> dict[str, IdentityColumns]:
    """Every workspace table that holds customer rows in clear, with its identifier columns."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' AND table_catalog = current_database() ORDER BY table_name"
        ).fetchall()
    ]
    out: dict[str, IdentityColumns] = {}
    for table in tables:
        if table.startswith(TOKEN_TABLE_PREFIXES) and table not in CLEAR_HISTORY_TABLES:
            continue
        cols = detect_identity_columns(con, table, key)
        if not cols.empty:
            out[table] = cols
    return out


def value_map(con: duckdb.DuckDBPyConnection, table: str, column: str, kind: str) -> tuple[str, list[str]]:
    """Temp table ``(raw, value)``: each distinct text of ``table.column`` and its canonical ``kind`` form.

    Returns the table's name and every temp table made (the caller drops them)."""
    register_sql(con)
    name = f"__idk_vmap_{next(_counter)}"
    source = (
        f"SELECT row_number() OVER () AS rid, v FROM (SELECT DISTINCT CAST({ident(column)} AS VARCHAR) AS v "
        f"FROM {ident(table)} WHERE {ident(column)} IS NOT NULL)"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_src AS {source}")
    sql, made = values_sql(con, kind, f"SELECT rid, v FROM {name}_src", plain=False)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT s.v AS raw, x.value FROM {name}_src s "
                f"JOIN ({sql}) x ON x.rid = s.rid")
    return name, [name, f"{name}_src", *made]
