"""Per-customer features compiled to DuckDB SQL over the customers, orders and events tables.

Steps (each a temp table): ``seg_customers`` (one row per trimmed customer id), ``seg_orders`` and
``seg_events`` (parsed, with a skip reason per row), the aggregates, then ``seg_features``: the
customer columns plus every built-in feature (:data:`crmtool.segments.spec.BUILTIN_FEATURES`),
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

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from crmtool.errors import ConfigError, InputError, Location
from crmtool.segments.conditions import Compiler, ident, sql_str
from crmtool.segments.holdout import id_sql
from crmtool.segments.spec import BUILTIN_FEATURES, FunnelStage, SegmentsSpec

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


def amount_expr(col_sql: str, ctype: str, decimal_comma: bool) -> str:
    """A DECIMAL(18,2) from a number or text such as ``1.234,56`` / ``1,234.56`` / ``12.5 €``."""
    t = ctype.upper()
    if t.startswith(
        (
            "DECIMAL",
            "DOUBLE",
            "FLOAT",
            "REAL",
            "INT",
            "BIGINT",
            "SMALLINT",
            "TINYINT",
            "HUGEINT",
            "UBIGINT",
            "UINTEGER",
            "NUMERIC",
        )
    ):
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
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_customers_all AS
        SELECT nullif({id_sql(ident(c.id))}, '') AS customer_id, {keep},
               {"_row" if "_row" in cols else "NULL"} AS __row
        FROM {ident(table)}""")
    stats.blank_ids = int(
        con.execute("SELECT count(*) FROM seg_customers_all WHERE customer_id IS NULL").fetchall()[0][0]
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_customers AS
        SELECT * EXCLUDE (__row) FROM seg_customers_all WHERE customer_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY
            {"__row" if order == "_row" else "customer_id"}) = 1
    """)
    total = int(
        con.execute("SELECT count(*) FROM seg_customers_all WHERE customer_id IS NOT NULL").fetchall()[0][0]
    )
    con.execute("DROP TABLE seg_customers_all")
    stats.customers = int(con.execute("SELECT count(*) FROM seg_customers").fetchall()[0][0])
    stats.duplicate_ids = total - stats.customers
    return cc


def _skip_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    rows = con.execute(
        f"SELECT skip, count(*) FROM {table} WHERE skip IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(k): int(n) for k, n in rows}


def prepare_orders(
    con: duckdb.DuckDBPyConnection, table: str | None, spec: SegmentsSpec, as_of: date, stats: InputStats
) -> bool:
    """``seg_orders(customer_id, order_date, amount, channel)`` of the valid orders; False without orders."""
    if table is None:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE seg_orders (customer_id VARCHAR, order_date DATE, "
            f"amount {AMOUNT}, channel VARCHAR)"
        )
        return False
    cols = columns_of(con, ident(table))
    o = spec.orders
    for key in ("customer_id", "date", "amount"):
        _need(cols, getattr(o, key), "the orders file", spec, f"inputs.orders.{key}")
    channel = o.channel if o.channel in cols else None
    d = date_expr(ident(o.date), cols[o.date], spec.date_formats)
    a = amount_expr(ident(o.amount), cols[o.amount], spec.decimal_comma)
    raw_amount_blank = f"{ident(o.amount)} IS NULL OR trim(CAST({ident(o.amount)} AS VARCHAR)) = ''"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_orders_all AS
        SELECT p.*, CASE
            WHEN c.customer_id IS NULL THEN 'unknown_customer'
            WHEN p.order_date IS NULL THEN 'unparseable_date'
            WHEN p.order_date > DATE '{as_of.isoformat()}' THEN 'future_date'
            WHEN p.amount IS NULL THEN CASE WHEN p.blank THEN 'missing_amount' ELSE 'unparseable_amount' END
            WHEN p.amount < 0 THEN 'negative_amount'
          END AS skip
        FROM (SELECT {id_sql(ident(o.customer_id))} AS customer_id, {d} AS order_date,
                     {a} AS amount,
                         {f"CAST({ident(channel)} AS VARCHAR)" if channel else "NULL::VARCHAR"} AS channel,
                     {raw_amount_blank} AS blank
              FROM {ident(table)}) p
        LEFT JOIN (SELECT customer_id FROM seg_customers) c USING (customer_id)
    """)
    stats.orders_read = int(con.execute("SELECT count(*) FROM seg_orders_all").fetchall()[0][0])
    stats.skipped["orders"] = _skip_counts(con, "seg_orders_all")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE seg_orders AS SELECT customer_id, order_date, amount, channel "
        "FROM seg_orders_all WHERE skip IS NULL"
    )
    con.execute("DROP TABLE seg_orders_all")
    stats.orders_used = stats.orders_read - sum(stats.skipped["orders"].values())
    return True


def prepare_events(
    con: duckdb.DuckDBPyConnection, table: str | None, spec: SegmentsSpec, as_of: date, stats: InputStats
) -> bool:
    if table is None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE seg_events (customer_id VARCHAR, event_type VARCHAR, "
            "occurred_at TIMESTAMP, event_date DATE, channel VARCHAR)"
        )
        return False
    cols = columns_of(con, ident(table))
    e = spec.events
    for key in ("customer_id", "type", "timestamp"):
        _need(cols, getattr(e, key), "the events file", spec, f"inputs.events.{key}")
    channel = e.channel if e.channel in cols else None
    ts = ts_expr(ident(e.timestamp), cols[e.timestamp], spec.date_formats)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_events_all AS
        SELECT p.*, CAST(p.occurred_at AS DATE) AS event_date, CASE
            WHEN c.customer_id IS NULL THEN 'unknown_customer'
            WHEN p.occurred_at IS NULL THEN 'unparseable_date'
            WHEN CAST(p.occurred_at AS DATE) > DATE '{as_of.isoformat()}' THEN 'future_date'
          END AS skip
        FROM (SELECT {id_sql(ident(e.customer_id))} AS customer_id,
                     lower(trim(CAST({ident(e.type)} AS VARCHAR))) AS event_type, {ts} AS occurred_at,
                     {f"CAST({ident(channel)} AS VARCHAR)" if channel else "NULL::VARCHAR"} AS channel
              FROM {ident(table)}) p
        LEFT JOIN (SELECT customer_id FROM seg_customers) c USING (customer_id)
    """)
    stats.events_read = int(con.execute("SELECT count(*) FROM seg_events_all").fetchall()[0][0])
    stats.skipped["events"] = _skip_counts(con, "seg_events_all")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE seg_events AS SELECT customer_id, event_type, occurred_at, event_date, "
        "channel FROM seg_events_all WHERE skip IS NULL"
    )
    con.execute("DROP TABLE seg_events_all")
    stats.events_used = stats.events_read - sum(stats.skipped["events"].values())
    return True


def _score(value: str, descending: bool) -> str:
    direction = "DESC" if descending else "ASC"
    part = "PARTITION BY coalesce(frequency, 0) > 0"
    return (
        f"CASE WHEN coalesce(frequency, 0) > 0 THEN CAST(1 + (5 * (rank() OVER ({part} ORDER BY {value} "
        f"{direction}) - 1)) // count(*) OVER ({part}) AS INTEGER) END"
    )


def _rfm_segment_sql(spec: SegmentsSpec) -> str:
    whens = []
    for rule in spec.rfm:
        whens.append(
            f"WHEN r_score BETWEEN {rule.r[0]} AND {rule.r[1]} "
            f"AND f_score BETWEEN {rule.f[0]} AND {rule.f[1]} "
            f"AND m_score BETWEEN {rule.m[0]} AND {rule.m[1]} THEN {sql_str(rule.name)}"
        )
    return f"CASE WHEN r_score IS NULL THEN 'no_orders' {' '.join(whens)} ELSE 'other' END"


def _default_funnel() -> tuple[FunnelStage, ...]:
    from crmtool.segments.spec import Cond

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
    a = f"DATE '{as_of.isoformat()}'"
    event_feats = [f for f in spec.features if f.event_types]
    counts = []
    for f in event_feats:
        types = ", ".join(sql_str(t.lower()) for t in f.event_types)
        window = f" AND event_date > CAST({a} - INTERVAL {f.days} DAY AS DATE)" if f.days else ""
        counts.append(f"count(*) FILTER (WHERE event_type IN ({types}){window}) AS {ident(f.name)}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_order_agg AS
        SELECT customer_id, count(*) AS frequency, sum(amount) AS monetary_total,
               CAST(round(avg(amount), 2) AS {AMOUNT}) AS monetary_avg,
               min(order_date) AS first_order_date, max(order_date) AS last_order_date,
               arg_max(channel, struct_pack(d := order_date, c := channel)) FILTER (WHERE channel IS NOT NULL)
                   AS last_order_channel
        FROM seg_orders GROUP BY customer_id""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_event_agg AS
        SELECT customer_id, {"".join(c + ", " for c in counts)}
               max(event_date) FILTER (WHERE channel IS NOT NULL) AS last_event_date,
               arg_max(channel, struct_pack(t := occurred_at, c := channel)) FILTER (WHERE channel
                   IS NOT NULL)
                   AS last_event_channel
        FROM seg_events GROUP BY customer_id""")
    cust_cols = columns_of(con, "seg_customers")
    builtin = set(BUILTIN_FEATURES) | {f.name for f in spec.features}
    shadowed = sorted(c for c in cust_cols if c in builtin)
    stats.shadowed_columns = shadowed
    keep = f"c.* EXCLUDE ({', '.join(ident(x) for x in shadowed)})" if shadowed else "c.*"
    signup = (
        date_expr(f"c.{ident(cc.signup_date)}", cust_cols[cc.signup_date], spec.date_formats)
        if cc.signup_date
        else "NULL::DATE"
    )
    event_cols = "".join(f", coalesce(e.{ident(f.name)}, 0) AS {ident(f.name)}" for f in event_feats)
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
               {event_cols}
        FROM seg_customers c LEFT JOIN seg_order_agg o USING (customer_id)
        LEFT JOIN seg_event_agg e USING (customer_id)"""
    scored = f"""
        SELECT *, {_score("recency_days", True)} AS r_score, {_score("frequency", False)} AS f_score,
               {_score("monetary_total", False)} AS m_score
        FROM ({base})"""
    with_rfm = f"""
        SELECT *, CAST(r_score AS VARCHAR) || CAST(f_score AS VARCHAR) || CAST(m_score AS VARCHAR)
            AS rfm_score,
               {_rfm_segment_sql(spec)} AS rfm_segment
        FROM ({scored})"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE seg_base AS {with_rfm}")
    query = "SELECT * FROM seg_base"
    for f in spec.features:
        if f.sql is None:
            continue
        query = f"SELECT *, ({f.sql}) AS {ident(f.name)} FROM ({query})"
        _bind(con, query, f.loc, f"feature '{f.name}'")
    cols = _bind(con, query, Location(spec.file), "features")
    funnel = spec.funnel or _default_funnel()
    compiler = Compiler(cols, as_of)
    whens = " ".join(f"WHEN {compiler.compile(s.when)} THEN {sql_str(s.stage)}" for s in funnel)
    compiler.raise_problems()
    query = f"SELECT *, CASE {whens} ELSE {sql_str(spec.funnel_default)} END AS funnel_stage FROM ({query})"
    _bind(con, query, spec.funnel[0].when.loc if spec.funnel else Location(spec.file), "funnel")
    con.execute(f"CREATE OR REPLACE TEMP TABLE seg_features AS {query}")
    con.execute("DROP TABLE seg_base")
    return columns_of(con, "seg_features")
