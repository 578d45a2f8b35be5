"""Per-customer features compiled to DuckDB SQL over the customers, orders and events tables.

Steps (each a temp table): ``seg_customers`` (one row per trimmed customer id), ``seg_order_agg``
and ``seg_event_agg`` (one pass each over the input: rows parsed, given a skip reason or used, and
aggregated per customer), ``seg_scores`` (RFM), then ``seg_features``: the
customer columns plus every built-in feature (:data:`crmtool.segments.model.BUILTIN_FEATURES`),
the event counts and the user's SQL features in dependency order.

Rows that cannot be used are never dropped silently: each skipped order/event has one reason
(``unknown_customer``, ``unparseable_date``, ``future_date``, ``missing_amount``,
``negative_amount``) and the counts are in :attr:`InputStats.skipped`.

RFM scores and their tie rule: among customers with at least one valid order (the others get
NULL scores and ``rfm_segment = 'no_orders'``), sort by the value (recency: most days first;
frequency and monetary: smallest first) and give each customer
``score = 1 + floor(5 * (rank - 1) / n)``, where ``rank`` is the SQL ``rank()`` (ties share the
rank of the first of them) and ``n`` the number of scored customers. So equal values always get
the same score, that score is the one of the first customer of the tie group, and when one value
holds more than a fifth of the customers some scores are skipped (e.g. 60% with one order: they
all get F=1 and the next value starts at F=4). Distinct values split into even fifths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from crmtool.errors import ConfigError, InputError, Location
from crmtool.segments.conditions import Compiler
from crmtool.segments.holdout import id_sql
from crmtool.segments.model import BUILTIN_FEATURES, CLV_FEATURES, FunnelStage, SegmentsSpec
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

AMOUNT = "DECIMAL(18,2)"
DEFAULT_FUNNEL_DAYS = 90


@dataclass
class InputStats:
    customers: int = 0
    blank_ids: int = 0
    duplicate_ids: int = 0
    orders_read: int = 0
    orders_used: int = 0
    events_read: int = 0
    events_used: int = 0
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    shadowed_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "customers": self.customers,
            "blank_ids": self.blank_ids,
            "duplicate_ids": self.duplicate_ids,
            "orders_read": self.orders_read,
            "orders_used": self.orders_used,
            "events_read": self.events_read,
            "events_used": self.events_used,
            "skipped": self.skipped,
            "shadowed_columns": self.shadowed_columns,
        }


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table or ``(query)``."""
    return {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()}


def date_expr(col_sql: str, ctype: str, formats: tuple[str, ...]) -> str:
    """A DATE from a typed or text column; text tries ``formats`` in order (NULL when none fits)."""
    t = ctype.upper()
    if t == "DATE":
        return col_sql
    if t.startswith("TIMESTAMP"):
        return f"CAST({col_sql} AS DATE)"
    return f"CAST({ts_expr(col_sql, ctype, formats)} AS DATE)"


def ts_expr(col_sql: str, ctype: str, formats: tuple[str, ...]) -> str:
    t = ctype.upper()
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"CAST({col_sql} AS TIMESTAMP)"
    fmts = "[" + ", ".join(sql_str(f) for f in formats) + "]"
    return f"try_strptime(trim(CAST({col_sql} AS VARCHAR)), {fmts})"


_NUMBERS = ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "INT", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT",
            "UINTEGER", "NUMERIC")


def _is_number(ctype: str) -> bool:
    return ctype.upper().startswith(_NUMBERS)


def _is_date(ctype: str) -> bool:
    """A DATE or TIMESTAMP column: :func:`date_expr` and :func:`ts_expr` only cast it."""
    t = ctype.upper()
    return t == "DATE" or t.startswith("TIMESTAMP")


def amount_expr(col_sql: str, ctype: str, decimal_comma: bool,
                double_cast: Callable[[str], str] | None = None) -> str:
    """A DECIMAL(18,2) from a number or text such as ``1.234,56`` / ``1,234.56`` / ``12.5 €``
    (``double_cast``: the SQL of that cast from a DOUBLE, for an engine that rounds it otherwise)."""
    if double_cast is not None and ctype.upper() in ("DOUBLE", "FLOAT", "REAL"):
        return double_cast(col_sql)
    if _is_number(ctype):
        return f"CAST({col_sql} AS {AMOUNT})"
    v = f"replace(replace(replace(trim(CAST({col_sql} AS VARCHAR)), ' ', ''), '€', ''), chr(160), '')"
    comma = (
        f"WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,3}}(\\.[0-9]{{3}})*(,[0-9]+)?|[+-]?[0-9]+(,[0-9]+)?') "
        f"THEN TRY_CAST(replace(replace({v}, '.', ''), ',', '.') AS {AMOUNT}) "
    )
    point = (
        f"WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,3}}(,[0-9]{{3}})*(\\.[0-9]+)?|[+-]?[0-9]+(\\.[0-9]+)?') "
        f"THEN TRY_CAST(replace({v}, ',', '') AS {AMOUNT}) "
    )
    return "CASE " + (comma if decimal_comma else "") + point + "END"


def register_macros(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec) -> None:
    """``seg_date(x)`` and ``seg_num(x)`` for user SQL: parse text dates/amounts like the inputs."""
    con.execute(f"CREATE OR REPLACE TEMP MACRO seg_date(x) AS {date_expr('x', 'VARCHAR', spec.date_formats)}")
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO seg_num(x) AS {amount_expr('x', 'VARCHAR', spec.decimal_comma)}"
    )


def _need(cols: dict[str, str], column: str | None, what: str, spec: SegmentsSpec, key: str) -> None:
    if column is not None and column not in cols:
        raise InputError(
            f"{what} has no column '{column}' (columns: {', '.join(c for c in cols if c != '_row')})",
            f"map it under {key} in {spec.file}",
        )


def _optional(cols: dict[str, str], column: str | None, key: str, explicit: frozenset[str]) -> str | None:
    """A mapped column that may be absent when the file does not name it explicitly."""
    if column is None:
        return None
    if column in cols or key in explicit:
        return column
    return None


@dataclass(frozen=True)
class CustomerColumns:
    """The customer columns actually present (``None``: not in this table)."""

    id: str
    email: str | None
    phone: str | None
    consent: str | None
    signup_date: str | None


def prepare_customers(
    con: duckdb.DuckDBPyConnection, table: str, spec: SegmentsSpec, stats: InputStats
) -> CustomerColumns:
    cols = columns_of(con, ident(table))
    c = spec.customers
    _need(cols, c.id, "the customers file", spec, "inputs.customers.id")
    cc = CustomerColumns(
        id=c.id,
        email=_optional(cols, c.email, "email", c.explicit),
        phone=_optional(cols, c.phone, "phone", c.explicit),
        consent=c.consent,  # absence of a consent column is an error unless 'consent: null' (api checks)
        signup_date=_optional(cols, c.signup_date, "signup_date", c.explicit),
    )
    for key, col in (("email", cc.email), ("phone", cc.phone), ("signup_date", cc.signup_date)):
        _need(cols, col, "the customers file", spec, f"inputs.customers.{key}")
    order = "_row" if "_row" in cols else "customer_id"
    drop = [x for x in ("_row", "customer_id") if x in cols]
    keep = f"* EXCLUDE ({', '.join(ident(x) for x in drop)})" if drop else "*"
    trimmed = f"nullif({id_sql(ident(c.id))}, '')"
    # the counts first, over the id alone: the customer rows are copied once, and numbered per id
    # (the first row of an id wins) only when some id repeats
    blank, total, distinct = con.execute(
        f"SELECT count(*) FILTER (WHERE i IS NULL), count(i), count(DISTINCT i) "
        f"FROM (SELECT {trimmed} AS i FROM {ident(table)})").fetchall()[0]
    stats.blank_ids = int(blank)
    first = "" if total == distinct else (
        f"QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY "
        f"{'__row' if order == '_row' else 'customer_id'}) = 1")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_customers AS
        SELECT * EXCLUDE (__row) FROM (
            SELECT {trimmed} AS customer_id, {keep}, {"_row" if "_row" in cols else "NULL"} AS __row
            FROM {ident(table)})
        WHERE customer_id IS NOT NULL {first}""")
    stats.customers = int(distinct)
    stats.duplicate_ids = int(total) - stats.customers
    _consent_of_repeated_ids(con, table, trimmed, cc.consent if cc.consent in cols else None, total != distinct)
    return cc


def _consent_of_repeated_ids(con: duckdb.DuckDBPyConnection, table: str, trimmed: str, consent: str | None,
                             repeated: bool) -> None:
    """``seg_id_consent(pid, consent)`` when an id repeats: the most restrictive consent of all the id's
    rows (``seg_customers`` keeps only the first row, and a "no" on a later row of the same customer
    must still keep them off every send list). Dropped when no id repeats."""
    con.execute("DROP TABLE IF EXISTS seg_id_consent")
    if not (repeated and consent):
        return
    from crmtool.identity.registers import person_consent_sql
    from crmtool.privacy.consent import normalise_consent_sql

    rows = (f"SELECT {trimmed} AS pid, {normalise_consent_sql(ident(consent))} AS cs "
            f"FROM {ident(table)} WHERE {trimmed} IS NOT NULL")
    con.execute(f"CREATE TEMP TABLE seg_id_consent AS {person_consent_sql(rows)}")


ORDER_REASONS = ("unparseable_date", "future_date", "missing_amount", "unparseable_amount", "negative_amount")
EVENT_REASONS = ("unparseable_date", "future_date")


@dataclass(frozen=True)
class Agg:
    """A decomposable per-customer aggregate of the usable rows: ``expr`` per raw id over the rows
    where ``where`` holds (besides being usable), ``second`` merges per trimmed id. ``empty`` is its
    value for an id with no usable row (0 for a count)."""

    name: str
    expr: str
    second: str
    where: str | None = None
    empty: str = "NULL"

    def over(self, *conditions: str | None) -> str:
        """``expr`` with a FILTER of ``conditions`` and the aggregate's own condition."""
        kept = [c for c in (*conditions, self.where) if c]
        return f"{self.expr} FILTER (WHERE {' AND '.join(kept)})" if kept else self.expr


def _aggregate(con: duckdb.DuckDBPyConnection, source: str, reasons: tuple[str, ...], skip: str,
               aggs: list[Agg], target: str, *, typed: bool = False, result: str | None = None,
               where: str | None = None) -> tuple[int, dict[str, int]]:
    """Per-customer aggregates of the usable rows (``skip`` IS NULL) of ``source`` into ``target`` (known
    customers only), and the count of skipped rows per reason. ``result``: the columns of ``target``
    as a SELECT list over ``customer_id`` and the aggregates (default: those as they are), ``where``
    a condition on them: the caller's casts and filter, applied as ``target`` is written.

    Two levels so that per-row work stays minimal: rows are grouped by the raw id as written, then
    the (far fewer) groups are merged by the normalised id. Unknown customers are found on the
    groups, not on every row: the same answer as a join of all rows, for much less work. When no
    raw id has white space to trim (the usual export), every group is already one customer: the
    merge would aggregate each group alone, so it is skipped and the values are only cast to the
    types the merge gives.

    ``typed``: ``skip`` reads typed columns (dates, timestamps, numbers), cheap to test twice, so
    the usable rows are grouped alone, without a filter on every aggregate, and the skipped ones
    are counted in a pass of their own (which DuckDB skips outright when the column statistics
    rule every skip out, as for a clean Parquet export): issue 19, ~20% less work on 10M orders."""
    raw = f"{target}_raw"
    drops = [f"DROP TABLE {raw}"]
    if typed:
        drops = _raw_typed(con, source, reasons, skip, aggs, raw)
    else:
        first = ", ".join(["count(*) AS n_rows",
                           *(f"count(*) FILTER (WHERE skip = {sql_str(r)}) AS {ident('skip:' + r)}" for r in reasons),
                           *(f"{a.over('skip IS NULL')} AS {ident(a.name)}" for a in aggs)])
        con.execute(f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT raw_id, {first} "
                    f"FROM (SELECT *, {skip} AS skip FROM ({source})) GROUP BY raw_id")
    counts = ["n_rows", *("skip:" + r for r in reasons)]
    second = ", ".join([*(f"sum({ident(c)}) AS {ident(c)}" for c in counts),
                        *(f"{a.second.format(ident(a.name))} AS {ident(a.name)}" for a in aggs)])
    merged = f"SELECT {id_sql('raw_id')} AS customer_id, {second} FROM {raw} GROUP BY 1"
    if not con.execute(f"SELECT count(*) FROM {raw} WHERE raw_id <> {id_sql('raw_id')}").fetchall()[0][0]:
        types = columns_of(con, f"({merged})")
        merged = "SELECT " + ", ".join(
            f"CAST({'raw_id' if n == 'customer_id' else ident(n)} AS {t}) AS {ident(n)}" for n, t in types.items()
        ) + f" FROM {raw}"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target}_all AS
        SELECT a.*, k.customer_id IS NOT NULL AS known
        FROM ({merged}) a
        LEFT JOIN (SELECT customer_id FROM seg_customers) k USING (customer_id)""")
    con.execute("; ".join(drops))
    known = "known"
    sums = ", ".join(f"coalesce(sum({ident('skip:' + r)}) FILTER (WHERE known), 0)" for r in reasons)
    row = con.execute(f"SELECT coalesce(sum(n_rows), 0), coalesce(sum(n_rows) FILTER (WHERE NOT known), 0), "
                      f"{sums} FROM {target}_all").fetchall()[0]
    skipped = {"unknown_customer": int(row[1])} | {r: int(n) for r, n in zip(reasons, row[2:], strict=True)}
    result = result or "customer_id, " + ", ".join(ident(a.name) for a in aggs)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {result} FROM {target}_all "
                f"WHERE {known}{f' AND ({where})' if where else ''}")
    con.execute(f"DROP TABLE {target}_all")
    return int(row[0]), {k: v for k, v in sorted(skipped.items()) if v}


def _raw_typed(con: duckdb.DuckDBPyConnection, source: str, reasons: tuple[str, ...], skip: str,
               aggs: list[Agg], raw: str) -> list[str]:
    """``raw`` as the one-pass statement of :func:`_aggregate` makes it (same columns, types and
    values), from a pass over the usable rows and one over the skipped rows; returns the statements
    that drop what it made once ``raw`` has been read. With no skipped row (a clean export)
    ``raw`` is a view of the usable groups with zero counts, not a copy of them."""
    rows = f"(SELECT *, {skip} AS skip FROM ({source}))"
    usable = ", ".join(f"{a.over()} AS {ident(a.name)}" for a in aggs)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {raw}_usable AS SELECT raw_id, count(*) AS n_rows, {usable} "
                f"FROM {rows} WHERE skip IS NULL GROUP BY raw_id")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {raw}_skipped AS SELECT raw_id, skip, count(*) AS n "
                f"FROM {rows} WHERE skip IS NOT NULL GROUP BY raw_id, skip")
    counts = [ident("skip:" + r) for r in reasons]
    if not con.execute(f"SELECT count(*) FROM {raw}_skipped").fetchall()[0][0]:
        zeros = ", ".join(f"CAST(0 AS BIGINT) AS {ident('skip:' + r)}" for r in reasons)
        kept = ", ".join(ident(a.name) for a in aggs)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {raw} AS SELECT raw_id, n_rows, {zeros}, {kept} FROM {raw}_usable")
        return [f"DROP VIEW {raw}", f"DROP TABLE {raw}_usable", f"DROP TABLE {raw}_skipped"]
    per_reason = ", ".join(f"max(n) FILTER (WHERE skip = {sql_str(r)}) AS {ident('skip:' + r)}" for r in reasons)
    zeroed = ", ".join(f"coalesce(s.{c}, 0) AS {c}" for c in counts)
    values = ", ".join(f"coalesce(u.{ident(a.name)}, {a.empty}) AS {ident(a.name)}" if a.empty != "NULL"
                       else f"u.{ident(a.name)}" for a in aggs)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {raw} AS
        SELECT raw_id, CAST(coalesce(u.n_rows, 0) + coalesce(s.n, 0) AS BIGINT) AS n_rows, {zeroed}, {values}
        FROM {raw}_usable u
        FULL JOIN (SELECT raw_id, sum(n) AS n, {per_reason} FROM {raw}_skipped GROUP BY raw_id) s USING (raw_id)""")
    con.execute(f"DROP TABLE {raw}_usable; DROP TABLE {raw}_skipped")
    return [f"DROP TABLE {raw}"]


@dataclass(frozen=True)
class AggPlan:
    """What :func:`_aggregate` makes of an input: its rows as a SELECT (``source``), the skip reason of
    each (``skip``, NULL when usable), the aggregates, and the target's columns as a SELECT list
    over them (``result``) with a condition (``where``). Built once, run by DuckDB here and by Spark
    in :mod:`crmtool.segments.on_spark`."""

    source: str
    skip: str
    aggs: list[Agg]
    result: str
    typed: bool
    where: str | None = None


def order_plan(con: duckdb.DuckDBPyConnection | None, table: str | None, spec: SegmentsSpec, as_of: date,
               double_cast: Callable[[str], str] | None = None) -> AggPlan:
    """The statements of ``seg_order_agg`` over the loaded ``table`` (None: no orders file; then
    ``con`` is not read; ``double_cast``: see :func:`amount_expr`)."""
    if table is None:
        source = (f"SELECT NULL::VARCHAR AS raw_id, NULL::DATE AS order_date, NULL::{AMOUNT} AS amount, "
                  f"NULL::VARCHAR AS channel, FALSE AS blank WHERE FALSE")
    else:
        assert con is not None
        cols = columns_of(con, ident(table))
        o = spec.orders
        for key in ("customer_id", "date", "amount"):
            _need(cols, getattr(o, key), "the orders file", spec, f"inputs.orders.{key}")
        channel = o.channel if o.channel in cols else None
        d = date_expr(ident(o.date), cols[o.date], spec.date_formats)
        a = amount_expr(ident(o.amount), cols[o.amount], spec.decimal_comma, double_cast)
        ch = f"CAST({ident(channel)} AS VARCHAR)" if channel else "NULL::VARCHAR"
        blank = f"{ident(o.amount)} IS NULL"
        if cols[o.amount].upper().startswith("VARCHAR"):
            blank += f" OR trim({ident(o.amount)}) = ''"
        source = (f"SELECT CAST({ident(o.customer_id)} AS VARCHAR) AS raw_id, {d} AS order_date, {a} AS amount, "
                  f"{ch} AS channel, {blank} AS blank FROM {ident(table)}")
    skip = f"""CASE WHEN order_date IS NULL THEN 'unparseable_date'
                    WHEN order_date > DATE '{as_of.isoformat()}' THEN 'future_date'
                    WHEN amount IS NULL THEN CASE WHEN blank THEN 'missing_amount' ELSE 'unparseable_amount' END
                    WHEN amount < 0 THEN 'negative_amount' END"""
    aggs = [
        Agg("frequency", "count(*)", "sum({})", empty="0"),
        Agg("monetary_total", "sum(amount)", "sum({})"),
        Agg("first_order_date", "min(order_date)", "min({})"),
        Agg("last_order_date", "max(order_date)", "max({})"),
        # the channel of the last order; equal dates: the channel that sorts last (deterministic)
        Agg("last_order_channel", "arg_max(channel, struct_pack(d := order_date, c := channel))",
            "arg_max({}, struct_pack(d := \"last_order_date\", c := \"last_order_channel\"))", "channel IS NOT NULL"),
    ]
    typed = table is not None and _is_date(cols[o.date]) and _is_number(cols[o.amount])
    result = (f"customer_id, CAST(frequency AS BIGINT) AS frequency, "
              f"CAST(monetary_total AS {AMOUNT}) AS monetary_total, "
              f"CAST(round(monetary_total / frequency, 2) AS {AMOUNT}) AS monetary_avg, "
              f"first_order_date, last_order_date, last_order_channel")
    return AggPlan(source, skip, aggs, result, typed, "frequency > 0")


def prepare_orders(
    con: duckdb.DuckDBPyConnection, table: str | None, spec: SegmentsSpec, as_of: date, stats: InputStats
) -> bool:
    """``seg_order_agg``: per known customer, aggregates of the usable orders; False without orders."""
    plan = order_plan(con, table, spec, as_of)
    source, skip = plan.source, plan.skip
    read, skipped = _aggregate(con, source, ORDER_REASONS, skip, plan.aggs, "seg_order_agg", typed=plan.typed,
                               result=plan.result, where=plan.where)
    if spec.clv is not None:  # the clv model needs purchase days, not only per-customer totals
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE seg_order_days AS
            SELECT customer_id, order_date, sum(amount) AS amount
            FROM (SELECT {id_sql("raw_id")} AS customer_id, order_date, amount
                  FROM (SELECT *, {skip} AS skip FROM ({source})) WHERE skip IS NULL)
            WHERE customer_id IN (SELECT customer_id FROM seg_customers) GROUP BY ALL""")
    if table is not None:
        stats.orders_read = read
        stats.skipped["orders"] = skipped
        stats.orders_used = read - sum(skipped.values())
    return table is not None


def prepare_events(
    con: duckdb.DuckDBPyConnection, table: str | None, spec: SegmentsSpec, as_of: date, stats: InputStats
) -> bool:
    """``seg_event_agg``: per known customer, the event-count features and the last event with a channel.

    Event types compare case- and space-insensitively; to keep per-row work small the wanted types
    are turned into the raw spellings present in the file (one pass over its distinct types)."""
    source = event_source(con, table, spec)
    spellings = event_spellings(con.execute(spellings_sql(source)).fetchall()) if table is not None else {}
    plan = event_plan(source, table, spec, as_of, spellings, con)
    read, skipped = _aggregate(con, plan.source, EVENT_REASONS, plan.skip, plan.aggs, "seg_event_agg",
                               typed=plan.typed, result=plan.result)
    if table is not None:
        stats.events_read = read
        stats.skipped["events"] = skipped
        stats.events_used = read - sum(skipped.values())
    return table is not None


def spellings_sql(source: str) -> str:
    """The distinct event types of ``source`` as written, and as compared (lower case, trimmed)."""
    return (f"SELECT DISTINCT event_type, lower(trim(event_type)) FROM ({source}) "
            f"WHERE event_type IS NOT NULL ORDER BY 1")


def event_spellings(rows: list[tuple[object, ...]]) -> dict[str, list[str]]:
    """Compared type -> the raw spellings of it in the file (rows of :func:`spellings_sql`)."""
    spellings: dict[str, list[str]] = {}
    for raw, norm in rows:
        spellings.setdefault(str(norm), []).append(str(raw))
    return spellings


def event_source(con: duckdb.DuckDBPyConnection | None, table: str | None, spec: SegmentsSpec) -> str:
    """The events of the loaded ``table`` as ``raw_id, event_type, occurred_at, channel`` (None: no
    events file; then ``con`` is not read)."""
    if table is None:
        source = ("SELECT NULL::VARCHAR AS raw_id, NULL::VARCHAR AS event_type, NULL::TIMESTAMP AS occurred_at, "
                  "NULL::VARCHAR AS channel WHERE FALSE")
    else:
        assert con is not None
        cols = columns_of(con, ident(table))
        e = spec.events
        for key in ("customer_id", "type", "timestamp"):
            _need(cols, getattr(e, key), "the events file", spec, f"inputs.events.{key}")
        channel = e.channel if e.channel in cols else None
        ts = ts_expr(ident(e.timestamp), cols[e.timestamp], spec.date_formats)
        ch = f"CAST({ident(channel)} AS VARCHAR)" if channel else "NULL::VARCHAR"
        source = (f"SELECT CAST({ident(e.customer_id)} AS VARCHAR) AS raw_id, "
                  f"CAST({ident(e.type)} AS VARCHAR) AS event_type, {ts} AS occurred_at, "
                  f"{ch} AS channel FROM {ident(table)}")
    return source


def event_plan(source: str, table: str | None, spec: SegmentsSpec, as_of: date,
               spellings: dict[str, list[str]], con: duckdb.DuckDBPyConnection | None) -> AggPlan:
    """The statements of ``seg_event_agg`` over :func:`event_source`, given the file's spellings
    (``table``, read on ``con``, only says whether its timestamps are typed)."""
    a = f"DATE '{as_of.isoformat()}'"
    source = f"SELECT *, CAST(occurred_at AS DATE) AS event_date FROM ({source})"
    skip = f"CASE WHEN occurred_at IS NULL THEN 'unparseable_date' WHEN event_date > {a} THEN 'future_date' END"
    aggs = []
    for f in spec.features:
        if f.event_types:
            raws = [r for t in f.event_types for r in spellings.get(t.strip().lower(), [])]
            types = ", ".join(sql_str(r) for r in raws) or "NULL"
            window = f" AND event_date > CAST({a} - INTERVAL {f.days} DAY AS DATE)" if f.days else ""
            aggs.append(Agg(f.name, "count(*)", "sum({})", f"event_type IN ({types}){window}", empty="0"))
    aggs += [
        Agg("last_event_ts", "max(occurred_at)", "max({})", "channel IS NOT NULL"),
        Agg("last_event_channel", "arg_max(channel, struct_pack(t := occurred_at, c := channel))",
            "arg_max({}, struct_pack(t := \"last_event_ts\", c := \"last_event_channel\"))", "channel IS NOT NULL"),
    ]
    typed = table is not None and con is not None and _is_date(columns_of(con, ident(table))[spec.events.timestamp])
    counts = "".join(f"CAST({ident(x.name)} AS BIGINT) AS {ident(x.name)}, " for x in aggs[:-2])
    return AggPlan(source, skip, aggs, f"customer_id, {counts}CAST(last_event_ts AS DATE) AS last_event_date, "
                                       f"last_event_channel", typed)


def _scores(con: duckdb.DuckDBPyConnection) -> None:
    """``seg_scores(customer_id, r_score, f_score, m_score)`` over customers with orders (see module doc).

    Computed on the narrow aggregate, not on the wide customer rows: a window sorts whole rows."""
    n = int(con.execute("SELECT count(*) FROM seg_order_agg").fetchall()[0][0])
    con.execute(f"CREATE OR REPLACE TEMP TABLE seg_scores AS {scores_sql(n)}")


def scores_sql(n: int) -> str:
    """The SELECT of ``seg_scores`` over ``seg_order_agg`` of ``n`` rows."""
    n = n or 1

    def score(order: str) -> str:
        return f"CAST(1 + (5 * (rank() OVER (ORDER BY {order}) - 1)) // {n} AS INTEGER)"

    # recency in days descending == last order date ascending
    return f"""
        SELECT customer_id, {score("last_order_date ASC")} AS r_score, {score("frequency ASC")} AS f_score,
               {score("monetary_total ASC")} AS m_score
        FROM seg_order_agg"""


def scores_by_distinct_sql(n: int) -> str:
    """:func:`scores_sql`'s scores with each rank computed over the column's distinct values (a
    row's rank is 1 + the rows with a smaller value, NULL last), for a distributed engine: a
    window without a partition runs as one task over every customer there, this one over the
    distinct dates, counts and totals only. The same numbers as ``rank()``."""
    n = n or 1
    ranks, scores, joins = [], [], []
    for alias, column in (("r", "last_order_date"), ("f", "frequency"), ("m", "monetary_total")):
        ranks.append(
            f"{alias}_rank AS (SELECT v, 1 + coalesce(sum(c) OVER (ORDER BY v ASC ROWS BETWEEN UNBOUNDED "
            f"PRECEDING AND 1 PRECEDING), 0) AS rk FROM (SELECT {column} AS v, count(*) AS c "
            f"FROM seg_order_agg GROUP BY {column}))")
        scores.append(f"CAST(1 + (5 * ({alias}.rk - 1)) // {n} AS INTEGER) AS {alias}_score")
        joins.append(f"JOIN {alias}_rank {alias} ON a.{column} IS NOT DISTINCT FROM {alias}.v")
    return (f"WITH {', '.join(ranks)} SELECT a.customer_id, {', '.join(scores)} "
            f"FROM seg_order_agg a {' '.join(joins)}")


def _rfm_segment_sql(spec: SegmentsSpec) -> str:
    whens = []
    for rule in spec.rfm:
        whens.append(
            f"WHEN s.r_score BETWEEN {rule.r[0]} AND {rule.r[1]} "
            f"AND s.f_score BETWEEN {rule.f[0]} AND {rule.f[1]} "
            f"AND s.m_score BETWEEN {rule.m[0]} AND {rule.m[1]} THEN {sql_str(rule.name)}"
        )
    return f"CASE WHEN s.r_score IS NULL THEN 'no_orders' {' '.join(whens)} ELSE 'other' END"


def _default_funnel() -> tuple[FunnelStage, ...]:
    from crmtool.segments.model import Cond

    loc = Location("(built-in funnel)")
    return (
        FunnelStage("repeat_customer", Cond("gte", loc, field="frequency", value=2)),
        FunnelStage("customer", Cond("gte", loc, field="frequency", value=1)),
        FunnelStage(
            "engaged_lead",
            Cond("within", loc, field="last_contact_date", value=f"last {DEFAULT_FUNNEL_DAYS} days"),
        ),
    )


def _bind(con: duckdb.DuckDBPyConnection, query: str, loc: Location, what: str) -> dict[str, str]:
    import duckdb

    try:
        return columns_of(con, f"({query})")
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        for prefix in ("Binder Error: ", "Parser Error: ", "Catalog Error: ", "Conversion Error: "):
            first = first.replace(prefix, "")
        raise ConfigError([(loc, f"{what}: {first}")]) from None


def build_features(
    con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, as_of: date, cc: CustomerColumns, stats: InputStats
) -> dict[str, str]:
    """Create ``seg_features``; returns its column -> type (customer columns and features)."""
    _scores(con)
    query = feature_query(con, spec, as_of, cc, stats)
    con.execute(f"CREATE OR REPLACE TEMP TABLE seg_features AS {query}")
    return columns_of(con, "seg_features")


def feature_query(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, as_of: date, cc: CustomerColumns,
                  stats: InputStats, *, star: bool = True) -> str:
    """The SELECT of ``seg_features`` over ``seg_customers``, ``seg_order_agg``, ``seg_event_agg`` and
    ``seg_scores`` (and ``seg_clv``), bound against them here: an unknown column or a type error in a
    user expression is a configuration error with its file:line. ``star``: the customer columns as
    ``c.* EXCLUDE (...)``, else listed one by one (for an engine without EXCLUDE)."""
    a = f"DATE '{as_of.isoformat()}'"
    event_feats = [f for f in spec.features if f.event_types]
    cust_cols = columns_of(con, "seg_customers")
    builtin = set(BUILTIN_FEATURES) | set(CLV_FEATURES if spec.clv else ()) | {f.name for f in spec.features}
    shadowed = sorted(c for c in cust_cols if c in builtin)
    stats.shadowed_columns = shadowed
    keep = f"c.* EXCLUDE ({', '.join(ident(x) for x in shadowed)})" if shadowed else "c.*"
    if not star:
        keep = ", ".join(f"c.{ident(x)}" for x in cust_cols if x not in shadowed)
    signup = (
        date_expr(f"c.{ident(cc.signup_date)}", cust_cols[cc.signup_date], spec.date_formats)
        if cc.signup_date
        else "NULL::DATE"
    )
    event_cols = "".join(f", coalesce(e.{ident(f.name)}, 0) AS {ident(f.name)}" for f in event_feats)
    clv_cols, clv_join = "", ""
    if spec.clv is not None:
        from crmtool.segments.clv import build_clv

        build_clv(con, spec.clv, as_of)
        clv_cols = (", coalesce(o.monetary_total, 0) AS clv_historical, v.clv_predicted, v.churn_probability")
        clv_join = "LEFT JOIN seg_clv v USING (customer_id)"
    base = f"""
        SELECT {keep}, {a} AS as_of,
               CAST(date_diff('day', o.last_order_date, {a}) AS INTEGER) AS recency_days,
               coalesce(o.frequency, 0) AS frequency,
               coalesce(o.monetary_total, 0) AS monetary_total, o.monetary_avg,
               o.first_order_date, o.last_order_date,
               CAST(date_diff('day', coalesce({signup}, o.first_order_date), {a}) AS INTEGER) AS tenure_days,
               CASE WHEN e.last_event_date IS NULL OR (o.last_order_date > e.last_event_date
                         AND o.last_order_channel IS NOT NULL) THEN o.last_order_date ELSE
                             e.last_event_date END
                   AS last_contact_date,
               CASE WHEN e.last_event_date IS NULL OR (o.last_order_date > e.last_event_date
                         AND o.last_order_channel IS NOT NULL) THEN o.last_order_channel ELSE
                             e.last_event_channel END
                   AS last_contact_channel
               {event_cols}{clv_cols}
               , s.r_score, s.f_score, s.m_score,
               CAST(s.r_score AS VARCHAR) || CAST(s.f_score AS VARCHAR) || CAST(s.m_score AS VARCHAR) AS rfm_score,
               {_rfm_segment_sql(spec)} AS rfm_segment
        FROM seg_customers c LEFT JOIN seg_order_agg o USING (customer_id)
        LEFT JOIN seg_event_agg e USING (customer_id) LEFT JOIN seg_scores s USING (customer_id) {clv_join}"""
    # one statement builds seg_features: the joined customer rows are not materialised on their own
    # first (a second copy of every wide customer row), the features and the funnel read them inline
    query = f"SELECT * FROM ({base})"
    for f in spec.features:
        if f.sql is None:
            continue
        from crmtool.segments.model import FEATURE_AGGREGATES, SEGMENT_MACROS
        from crmtool.usersql import HINT, expression_problems

        sql, found = expression_problems(f.sql, columns=list(_bind(con, query, f.loc, "features")),
                                         aggregates=FEATURE_AGGREGATES, functions=SEGMENT_MACROS)
        if sql is None:
            raise ConfigError([(f.loc, f"feature '{f.name}': {p}") for p in found], HINT)
        query = f"SELECT *, ({sql}) AS {ident(f.name)} FROM ({query})"
        _bind(con, query, f.loc, f"feature '{f.name}'")
    cols = _bind(con, query, Location(spec.file), "features")
    funnel = spec.funnel or _default_funnel()
    compiler = Compiler(cols, as_of)
    whens = " ".join(f"WHEN {compiler.compile(s.when)} THEN {sql_str(s.stage)}" for s in funnel)
    compiler.raise_problems()
    query = f"SELECT *, CASE {whens} ELSE {sql_str(spec.funnel_default)} END AS funnel_stage FROM ({query})"
    _bind(con, query, spec.funnel[0].when.loc if spec.funnel else Location(spec.file), "funnel")
    return query
