"""``segment --engine spark``: the order and event aggregates, RFM scores, features, conditions,
exclusive groups, holdout buckets and per-customer status as SELECT steps on Spark.

What stays in the workspace, as on DuckDB: reading the inputs (crmtool's readers, parse rejects,
erased people dropped first), ``seg_customers`` (trimmed ids, first row per id), the exclusions
(suppressions, erasures, bounces and consent through the identity layer), and after the run the
counts, history, diff, send lists, manifest and publish step. Pattern of
:mod:`crmtool.backend.on_spark`: the loaded tables are staged once as Parquet under the same names
on Spark; the steps run through the :class:`~crmtool.backend.spark_backend.SparkBackend`; the
status, the matches and the features of the customers on a send list come back as Parquet parts
read through :mod:`crmtool.io.gate`, cast to the types DuckDB gives them.

Every statement is first bound on the workspace: the DuckDB plan runs over the same inputs with no
order or event rows and no feature rows (so an unknown column or a type error is DuckDB's
configuration error with its file:line, and the result types are DuckDB's), then each is written
for Spark: the ``seg_date``/``seg_num`` macros inlined (they are :func:`~crmtool.segments.features.date_expr`
and :func:`~crmtool.segments.features.amount_expr`), ``/`` made a division of doubles and
``round(x, n)`` DuckDB's ``round(x * 10^n) / 10^n`` (DuckDB divides in doubles; Spark keeps
decimals and rounds the decimal text of a double), and the rest transpiled by
:mod:`crmtool.backend.dialect` (which rewrites ``QUALIFY``). Sections not ported (``clv:``) and
user SQL with a DuckDB-only function are refused with their file:line before a JVM starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, Location
from crmtool.segments.features import (
    AMOUNT,
    EVENT_REASONS,
    ORDER_REASONS,
    AggPlan,
    InputStats,
    amount_expr,
    columns_of,
    date_expr,
    event_plan,
    event_source,
    event_spellings,
    feature_query,
    order_plan,
    prepare_events,
    prepare_orders,
    scores_by_distinct_sql,
    scores_sql,
    spellings_sql,
)
from crmtool.segments.holdout import bucket_sql_portable, id_sql
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.backend.spark_backend import SparkBackend
    from crmtool.segments.features import CustomerColumns
    from crmtool.segments.model import SegmentsSpec

HINT = "run this segments file on --engine duckdb (the default)"


def unported_problems(spec: SegmentsSpec) -> list[tuple[Location, str]]:
    """The sections of ``spec`` that cannot run on Spark yet, with their file:line."""
    problems = []
    if spec.clv is not None:
        problems.append((spec.clv.loc, "the clv: section fits its model in Python on this machine and is not "
                                       "ported to --engine spark yet"))
    return problems


def refuse_unported(spec: SegmentsSpec) -> None:
    """A :class:`ConfigError` (exit 2) naming every unported section, before anything is read."""
    problems = unported_problems(spec)
    if problems:
        raise ConfigError(problems, HINT)


def duckdb_round_sql(x: str, n: int) -> str:
    """DuckDB's ``round(x, n)`` of a DOUBLE ``x`` in SQL Spark computes alike: DuckDB rounds the exact
    binary value half away from zero; Spark's ``round`` rounds the double's shortest decimal text
    (``round(2.675, 2)``: DuckDB 2.67, Spark 2.68). ``x * 10^n`` is split exactly (Dekker's
    product: the double ``y`` plus its error ``err``), so a fraction of exactly .5 in ``y`` is
    decided by the sign of ``err``. For ``0 <= n <= 7`` (``10^n`` below 2^26)."""
    p = 10 ** n
    a = f"abs(CAST({x} AS DOUBLE))"
    y = f"({a} * {p})"
    c = f"({a} * CAST(134217729 AS DOUBLE))"
    ah = f"({c} - ({c} - {a}))"
    err = f"(({ah} * {p} - {y}) + ({a} - {ah}) * {p})"
    d = f"({y} % 1)"
    return f"(sign({x}) * ({y} - {d} + CASE WHEN {d} > 0.5 OR ({d} = 0.5 AND {err} >= 0) THEN 1 ELSE 0 END) / {p})"


def duckdb_amount_sql(x: str) -> str:
    """DuckDB's ``CAST(x AS DECIMAL(18,2))`` of a DOUBLE ``x`` in SQL Spark computes alike: DuckDB
    rounds the double ``x * 100`` half away from zero; Spark rounds the shortest decimal text of
    ``x`` (1.005: DuckDB 1.00, Spark 1.01)."""
    y = f"abs(CAST({x} AS DOUBLE) * 100)"
    d = f"({y} % 1)"
    whole = f"sign({x}) * ({y} - {d} + CASE WHEN {d} >= 0.5 THEN 1 ELSE 0 END)"
    return f"CAST(CAST({whole} AS DECIMAL(20,0)) / 100 AS {AMOUNT})"


def duckdb_div_sql(a: str, b: str) -> str:
    """DuckDB's ``a / b`` in SQL Spark computes alike: a DOUBLE whatever the operand types, and by
    zero the IEEE answer (``inf``, ``-inf``, ``nan``), where Spark divides decimals as decimals and
    gives NULL for a division by zero."""
    x, y = f"CAST(({a}) AS DOUBLE)", f"CAST(({b}) AS DOUBLE)"
    return (f"(CASE WHEN {y} <> 0 THEN {x} / {y} WHEN {x} IS NULL OR {y} IS NULL THEN NULL "
            f"WHEN isnan({x}) OR {x} = 0 THEN CAST('NaN' AS DOUBLE) "
            f"WHEN {x} > 0 THEN CAST('Infinity' AS DOUBLE) ELSE CAST('-Infinity' AS DOUBLE) END)")


def for_spark(sql: str, spec: SegmentsSpec, is_double: Callable[[str], bool]) -> str:
    """A DuckDB statement of the segment plan in the form Spark computes as DuckDB does: the segment
    macros inlined, ``a / b`` as :func:`duckdb_div_sql`, ``round(x, n)`` of a
    double (``is_double(x)``: DuckDB's type of ``x`` over ``seg_features``) as
    :func:`duckdb_round_sql`; still DuckDB dialect (:func:`crmtool.backend.dialect.to_spark`
    writes the Spark text)."""
    import sqlglot
    from sqlglot import exp

    def swap(node: Any) -> Any:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() in ("seg_date", "seg_num") \
                and len(node.expressions) == 1:
            arg = f"({node.expressions[0].sql(dialect='duckdb')})"
            body = (date_expr(arg, "VARCHAR", spec.date_formats) if str(node.this).lower() == "seg_date"
                    else amount_expr(arg, "VARCHAR", spec.decimal_comma))
            return exp.Paren(this=sqlglot.parse_one(body, read="duckdb"))
        if isinstance(node, exp.Div):
            return exp.Paren(this=sqlglot.parse_one(duckdb_div_sql(node.this.sql(dialect="duckdb"),
                                                                   node.expression.sql(dialect="duckdb")),
                                                    read="duckdb"))
        decimals = node.args.get("decimals") if isinstance(node, exp.Round) else None
        if isinstance(decimals, exp.Literal) and str(decimals.this).isdigit() and int(decimals.this) <= 7:
            arg = node.this.sql(dialect="duckdb")
            if is_double(arg):
                return exp.Paren(this=sqlglot.parse_one(duckdb_round_sql(f"({arg})", int(decimals.this)),
                                                        read="duckdb"))
        return node

    def post_order(node: Any) -> Any:
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, post_order(value))
            elif isinstance(value, list):
                node.set(key, [post_order(v) if isinstance(v, exp.Expression) else v for v in value])
        return swap(node)

    return str(post_order(sqlglot.parse_one(sql, read="duckdb")).sql(dialect="duckdb"))


@dataclass
class SparkPlan:
    """The statements of one segment run, bound on the workspace, in DuckDB dialect (``features`` and
    ``matches`` already in the form of :func:`for_spark`)."""

    orders: AggPlan | None
    events_source: str | None
    features: str
    matches: list[str]
    buckets: str
    status: str
    types: dict[str, list[tuple[str, str]]]  # workspace table -> (column, DuckDB type), for the pull back


def bind_plan(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, as_of: date, cc: CustomerColumns,
              stats: InputStats, orders: str | None, events: str | None) -> SparkPlan:
    """Run the DuckDB plan over no order, event or feature rows (cheap: every statement is bound,
    every type settled) and return the statements Spark will run over the real inputs."""
    from crmtool.segments import membership

    schema: list[str] = []
    try:
        for table in (orders, events):
            if table:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {table}__schema AS SELECT * FROM {ident(table)} WHERE FALSE")
                schema.append(f"{table}__schema")
        prepare_orders(con, f"{orders}__schema" if orders else None, spec, as_of, InputStats())
        prepare_events(con, f"{events}__schema" if events else None, spec, as_of, InputStats())
        con.execute(f"CREATE OR REPLACE TEMP TABLE seg_scores AS {scores_sql(0)}")
        features = feature_query(con, spec, as_of, cc, stats, star=False)
        con.execute(f"CREATE OR REPLACE TEMP TABLE seg_features AS SELECT * FROM ({features}) WHERE FALSE")
        columns = columns_of(con, "seg_features")
        matches = membership.match_selects(con, spec, columns, as_of)
        membership.evaluate(con, spec, columns, as_of)
        membership.apply_status(con, spec, sort=False)
    finally:
        for view in schema:
            con.execute(f"DROP VIEW IF EXISTS {view}")
    buckets, status = membership.status_sql(spec, bucket_sql_portable)
    types = {t: list(columns_of(con, t).items()) for t in ("seg_features", "seg_matches", "seg_status")}

    def is_double(expr: str) -> bool:
        kind = con.execute(f"DESCRIBE SELECT ({expr}) AS v FROM seg_features").fetchall()[0][1]
        return str(kind).upper() in ("DOUBLE", "FLOAT", "REAL")

    plan = SparkPlan(order_plan(con, orders, spec, as_of, duckdb_amount_sql) if orders else None,
                     event_source(con, events, spec) if events else None,
                     for_spark(features, spec, is_double), [for_spark(m, spec, is_double) for m in matches],
                     buckets, status, types)
    _refuse_duckdb_only(spec, plan)
    return plan


def _refuse_duckdb_only(spec: SegmentsSpec, plan: SparkPlan) -> None:
    """Every statement of ``plan`` written for Spark now (each once: :func:`to_spark` keeps them),
    so a DuckDB-only function in a user expression is refused with its file:line before a JVM
    starts."""
    from crmtool.backend.dialect import UnsupportedOnSpark, to_spark
    from crmtool.usersql import expression_problems

    problems: list[tuple[Location, str]] = []
    for f in spec.features:
        if f.sql is None:
            continue
        sql, _found = expression_problems(f.sql, columns=None, aggregates=True, functions=("seg_date", "seg_num"))
        try:
            to_spark(for_spark(f"SELECT {sql} FROM seg_features", spec, lambda _x: False))
        except UnsupportedOnSpark as exc:
            problems.append((f.loc, f"feature '{f.name}': {exc.what} has no Spark equivalent in crmtool yet"))
    for seg, select in zip(spec.segments, plan.matches, strict=True):
        try:
            to_spark(select)
        except UnsupportedOnSpark as exc:
            problems.append((seg.when.loc, f"segment '{seg.name}': {exc.what} has no Spark equivalent in crmtool yet"))
    if problems:
        raise ConfigError(problems, HINT)
    try:
        to_spark(plan.features)
    except UnsupportedOnSpark as exc:  # not from a user expression: the funnel, a customer column's type
        raise ConfigError([(Location(spec.file), f"the features: {exc.what} has no Spark equivalent in "
                                                 f"crmtool yet")], HINT) from None


def _aggregate(spark: SparkBackend, plan: AggPlan, reasons: tuple[str, ...], target: str,
               result: str) -> tuple[int, dict[str, int]]:
    """:func:`crmtool.segments.features._aggregate` in one level (rows grouped by the trimmed id):
    ``target`` on Spark, and the rows read and skipped per reason."""
    rows = f"SELECT *, {plan.skip} AS skip FROM ({plan.source})"
    aggs = ", ".join(["count(*) AS n_rows",
                      *(f"count(*) FILTER (WHERE skip = {sql_str(r)}) AS {ident('skip:' + r)}" for r in reasons),
                      *(f"{a.over('skip IS NULL')} AS {ident(a.name)}" for a in plan.aggs)])
    per_id = f"SELECT {id_sql('raw_id')} AS customer_id, {aggs} FROM ({rows}) GROUP BY 1"
    spark.create_table(f"{target}_all", f"SELECT a.*, k.customer_id IS NOT NULL AS known FROM ({per_id}) a "
                                        f"LEFT JOIN seg_customers k ON k.customer_id = a.customer_id", keep=True)
    sums = ", ".join(f"coalesce(sum(CASE WHEN known THEN {ident('skip:' + r)} END), 0)" for r in reasons)
    row = spark.fetch(f"SELECT coalesce(sum(n_rows), 0), coalesce(sum(CASE WHEN NOT known THEN n_rows END), 0), "
                      f"{sums} FROM {target}_all")[0]
    where = f" AND ({plan.where})" if plan.where else ""
    spark.create_table(target, f"SELECT {result} FROM {target}_all WHERE known{where}", keep=True)
    spark.drop_table(f"{target}_all")
    skipped = {"unknown_customer": int(row[1])} | {r: int(n) for r, n in zip(reasons, row[2:], strict=True)}
    return int(row[0]), {k: v for k, v in sorted(skipped.items()) if v}


def _order_result(plan: AggPlan) -> str:
    """The order aggregate's columns as DuckDB computes them: ``monetary_avg`` divides in doubles
    and rounds the double half away from zero (Spark would divide the decimals)."""
    duck = "round(monetary_total / frequency, 2)"
    assert duck in plan.result, "features.order_plan changed: keep monetary_avg's Spark form in step"
    return plan.result.replace(duck, duckdb_round_sql("CAST(monetary_total AS DOUBLE) / frequency", 2))


def run_on_spark(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, as_of: date, plan: SparkPlan,
                 stats: InputStats, out_columns: list[str], spark_master: str | None,
                 orders: str | None, events: str | None) -> None:
    """Run ``plan`` on Spark over the loaded inputs, ``seg_customers`` and ``seg_exclusions``; leave
    in the workspace ``seg_status`` (in ``idx, customer_id`` order), ``seg_matches`` and the
    ``out_columns`` of ``seg_features`` for the customers some send list has."""
    tables = {"seg_customers": "SELECT * FROM seg_customers",
              "seg_exclusions": "SELECT customer_id, reason FROM seg_exclusions WHERE reason IS NOT NULL"}
    if orders:
        o = spec.orders
        tables[orders] = _columns_select(con, orders, [o.customer_id, o.date, o.amount, o.channel])
    if events:
        e = spec.events
        tables[events] = _columns_select(con, events, [e.customer_id, e.type, e.timestamp, e.channel])
    from crmtool.backend.on_spark import staged_on_spark

    with staged_on_spark(con, tables, spark_master) as (spark, tmp):
        made: list[str] = []
        try:
            _aggregates_on_spark(spark, spec, as_of, plan, stats, made, events)
            n = int(spark.fetch("SELECT count(*) FROM seg_order_agg")[0][0])
            _step(spark, made, "seg_scores", scores_by_distinct_sql(n), keep=False)
            _step(spark, made, "seg_features", plan.features)
            _step(spark, made, "seg_matches", " UNION ALL ".join(plan.matches))
            from crmtool.segments.membership import MEMBERS_SQL

            _step(spark, made, "seg_members", MEMBERS_SQL, keep=False)
            _step(spark, made, "seg_buckets", plan.buckets, keep=False)
            _step(spark, made, "seg_status", plan.status)
            _pull(spark, con, "SELECT * FROM seg_status", tmp / "status", "seg_status", plan.types["seg_status"],
                  order="idx, customer_id")
            _pull(spark, con, "SELECT * FROM seg_matches", tmp / "matches", "seg_matches", plan.types["seg_matches"])
            kept = [(n, t) for n, t in plan.types["seg_features"] if n in out_columns]
            _pull(spark, con, f"SELECT {', '.join(ident(n) for n, _t in kept)} FROM seg_features WHERE customer_id "
                              f"IN (SELECT customer_id FROM seg_status WHERE status = 'send')",
                  tmp / "features", "seg_features", kept)
        finally:
            for name in reversed(made):
                spark.drop_table(name)


def _aggregates_on_spark(spark: SparkBackend, spec: SegmentsSpec, as_of: date, plan: SparkPlan,
                         stats: InputStats, made: list[str], events: str | None) -> None:
    """``seg_order_agg`` and ``seg_event_agg`` on Spark; the counts of read, used and skipped rows."""
    orders_plan = plan.orders or _no_rows_plan(spec, as_of, "orders")
    made.append("seg_order_agg")
    read, skipped = _aggregate(spark, orders_plan, ORDER_REASONS, "seg_order_agg", _order_result(orders_plan))
    if plan.orders is not None:
        stats.orders_read, stats.skipped["orders"] = read, skipped
        stats.orders_used = read - sum(skipped.values())
    if plan.events_source is not None:
        spellings = event_spellings(spark.fetch(spellings_sql(plan.events_source)))
        events_plan = event_plan(plan.events_source, None, spec, as_of, spellings, None)
    else:
        events_plan = _no_rows_plan(spec, as_of, "events")
    made.append("seg_event_agg")
    read, skipped = _aggregate(spark, events_plan, EVENT_REASONS, "seg_event_agg", events_plan.result)
    if plan.events_source is not None:
        stats.events_read, stats.skipped["events"] = read, skipped
        stats.events_used = read - sum(skipped.values())


def _no_rows_plan(spec: SegmentsSpec, as_of: date, what: str) -> AggPlan:
    """The aggregate plan of an input that was not given (no rows: every customer gets the empty values)."""
    if what == "orders":
        return order_plan(None, None, spec, as_of)
    return event_plan(event_source(None, None, spec), None, spec, as_of, {}, None)


def _columns_select(con: duckdb.DuckDBPyConnection, table: str, wanted: list[str | None]) -> str:
    """The SELECT staging the mapped columns of an input (the others are not needed on Spark)."""
    have = columns_of(con, ident(table))
    cols = list(dict.fromkeys(c for c in wanted if c and c in have))
    return f"SELECT {', '.join(ident(c) for c in cols)} FROM {ident(table)}"


def _step(spark: SparkBackend, made: list[str], name: str, select_sql: str, *, keep: bool = True) -> None:
    made.append(name)
    spark.create_table(name, select_sql, keep=keep)


def _pull(spark: SparkBackend, con: duckdb.DuckDBPyConnection, select_sql: str, folder: Path, name: str,
          types: list[tuple[str, str]], *, order: str | None = None) -> None:
    """:func:`crmtool.backend.on_spark.pull` into the temp table ``name`` with the column ``types``
    DuckDB gives it (no rows: an empty table of those columns)."""
    from crmtool.backend.on_spark import pull

    empty = "(SELECT " + ", ".join(f"NULL AS {ident(n)}" for n, _t in types) + " WHERE FALSE)"
    pull(spark, con, select_sql, folder, name, ", ".join(_typed(ident(n), t) for n, t in types),
         empty=empty, order=order)


def _typed(col: str, kind: str) -> str:
    """``col`` as DuckDB's ``kind``; a NaN as DuckDB's ``0 / 0`` (sign bit set: ``-nan`` in a CSV),
    where Spark's canonical NaN would be ``nan``."""
    if kind.upper() in ("DOUBLE", "FLOAT", "REAL"):
        return f"CASE WHEN isnan({col}) THEN CAST(-('NaN'::DOUBLE) AS {kind}) ELSE CAST({col} AS {kind}) END AS {col}"
    return f"CAST({col} AS {kind}) AS {col}"


def evaluate_on_spark(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, as_of: date, cc: CustomerColumns,
                      stats: InputStats, spark_master: str | None, *, orders: str | None, events: str | None,
                      out_columns: Any) -> dict[str, str]:
    """Bind the plan here, run it on Spark, leave its results in the workspace (see :func:`run_on_spark`);
    returns the feature columns. ``out_columns(columns)``: the output columns the send lists need
    (it raises the configuration error of an unknown one, before a JVM starts)."""
    plan = bind_plan(con, spec, as_of, cc, stats, orders, events)
    columns = dict(plan.types["seg_features"])
    needed = sorted({c for cols in out_columns(columns).values() for c in cols} | {"customer_id"})
    run_on_spark(con, spec, as_of, plan, stats, needed, spark_master, orders, events)
    return columns
