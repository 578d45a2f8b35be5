"""Per-arm aggregates of a campaign's members over the orders (and events) of a window, in DuckDB.

One pass over the orders: rows are parsed like ``crmtool segment`` parses them (same column
mapping, date formats and decimal comma, from ``segments.yaml`` when given), grouped by the raw id
as written, then the (far fewer) groups are merged by the normalised id and joined to the members.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.campaigns.results import ArmStats
from crmtool.errors import InputError
from crmtool.segments.holdout import id_sql
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.segments.model import SegmentsSpec
    from crmtool.workspace import Workspace

TABLES = ("cmp_in_orders", "cmp_in_events", "cmp_in_customers")


def load_input(ws: Workspace, path: Path, table: str) -> dict[str, str]:
    """Parquet as a view read in place; CSV/xlsx through the shared reader. Returns column -> type."""
    import duckdb

    from crmtool.io.readers import ensure_readable, file_format, load_file

    ensure_readable(path)
    if file_format(path) == "parquet":
        from crmtool.io.gate import readable

        source = sql_str(readable(ws.con, path))  # kept in the sandbox while the view lives
        try:
            ws.con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM read_parquet({source})")
        except duckdb.Error as exc:
            raise InputError(f"{path}: cannot read Parquet ({str(exc).splitlines()[0]})") from None
    else:
        load_file(ws.con, path, table)
    return {r[0]: str(r[1]) for r in ws.con.execute(f"DESCRIBE {table}").fetchall()}


def drop_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for t in TABLES:
        for (kind,) in con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? UNION ALL "
            "SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ?", [t, t]).fetchall():
            con.execute(f"DROP {kind} IF EXISTS {t}")


def _need(cols: dict[str, str], col: str, what: str, key: str) -> None:
    if col not in cols:
        raise InputError(f"{what} has no column '{col}' (columns: {', '.join(cols)})",
                         f"map it under {key} in the segments file given with --segments")


def order_totals(ws: Workspace, orders: Path, spec: SegmentsSpec, start: date, end: date) -> dict[str, int]:
    """``cmp_orders(customer_id, orders, revenue)`` for orders in ``[start, end)``; returns row counts."""
    from crmtool.segments.features import amount_expr, date_expr

    cols = load_input(ws, orders, "cmp_in_orders")
    o = spec.orders
    for key in ("customer_id", "date", "amount"):
        _need(cols, getattr(o, key), "the orders file", f"inputs.orders.{key}")
    d = date_expr(ident(o.date), cols[o.date], spec.date_formats)
    a = amount_expr(ident(o.amount), cols[o.amount], spec.decimal_comma)
    # the window filter comes first: only the orders in it are grouped (a typed date column is
    # filtered while Parquet is read); grouped by the raw id, then the few groups by the trimmed id
    ws.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cmp_orders AS
        SELECT {id_sql('raw_id')} AS customer_id, sum(orders) AS orders, CAST(sum(revenue) AS DOUBLE) AS revenue
        FROM (SELECT CAST(cid AS VARCHAR) AS raw_id, count(*) AS orders, sum(amount) AS revenue
              FROM (SELECT {ident(o.customer_id)} AS cid, {d} AS d, {a} AS amount FROM cmp_in_orders)
              WHERE d >= DATE '{start.isoformat()}' AND d < DATE '{end.isoformat()}' AND amount >= 0
              GROUP BY 1)
        GROUP BY 1""")
    read = ws.con.execute("SELECT count(*) FROM cmp_in_orders").fetchall()[0][0]
    in_window = ws.con.execute("SELECT sum(orders) FROM cmp_orders").fetchall()[0][0]
    return {"orders_read": int(read or 0), "orders_in_window": int(in_window or 0)}


def event_conversions(ws: Workspace, events: Path, spec: SegmentsSpec, event_type: str,
                      start: date, end: date) -> dict[str, int]:
    """``cmp_events(customer_id)``: customers with an event of ``event_type`` in ``[start, end)``."""
    from crmtool.segments.features import ts_expr

    cols = load_input(ws, events, "cmp_in_events")
    e = spec.events
    for key in ("customer_id", "type", "timestamp"):
        _need(cols, getattr(e, key), "the events file", f"inputs.events.{key}")
    ts = f"CAST({ts_expr(ident(e.timestamp), cols[e.timestamp], spec.date_formats)} AS DATE)"
    ws.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cmp_events AS
        SELECT DISTINCT {id_sql('raw_id')} AS customer_id FROM (
            SELECT DISTINCT CAST({ident(e.customer_id)} AS VARCHAR) AS raw_id FROM cmp_in_events
            WHERE lower(trim(CAST({ident(e.type)} AS VARCHAR))) = {sql_str(event_type.strip().lower())}
              AND {ts} >= DATE '{start.isoformat()}' AND {ts} < DATE '{end.isoformat()}')""")
    n = ws.con.execute("SELECT count(*) FROM cmp_events").fetchall()[0][0]
    return {"event_converters": int(n)}


def breakdown_source(ws: Workspace, by: str | None, customers: Path | None, source_run: str | None,
                     segment: str) -> str:
    """SQL giving (customer_id, dim) for ``--by``: a customer column, or ``segment`` (every segment
    the member belonged to in the campaign's source segment run)."""
    if by is None:
        return "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS dim WHERE FALSE"
    if by == "segment" and customers is None:
        if source_run is None:
            raise InputError("--by segment needs the segment run in the workspace history",
                             "start the campaign from a workspace segment run, or give --customers and a column")
        return (f"SELECT customer_id, segment AS dim FROM segments_membership WHERE run_id = {sql_str(source_run)} "
                f"AND customer_id IN (SELECT customer_id FROM crm_campaign_members)")
    if customers is None:
        raise InputError(f"--by {by}: give the customers file with --customers")
    cols = load_input(ws, customers, "cmp_in_customers")
    if by not in cols:
        raise InputError(f"the customers file has no column '{by}'", f"columns: {', '.join(cols)}")
    return (f"SELECT DISTINCT ON (customer_id) * FROM (SELECT {id_sql('customer_id')} AS customer_id, "
            f"CAST({ident(by)} AS VARCHAR) AS dim FROM cmp_in_customers) ORDER BY customer_id")


def arm_totals(con: duckdb.DuckDBPyConnection, campaign: str, with_events: bool,
               dims_sql: str) -> dict[str | None, dict[str, ArmStats]]:
    """Per (breakdown value, arm): customers, conversions, orders, revenue and revenue squared."""
    conv = "o.orders > 0" + (" OR e.customer_id IS NOT NULL" if with_events else "")
    events = "LEFT JOIN cmp_events e USING (customer_id)" if with_events else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cmp_member_values AS
        SELECT m.customer_id, m.arm, coalesce({conv}, FALSE) AS converted, coalesce(o.orders, 0) AS orders,
               coalesce(o.revenue, 0.0) AS revenue
        FROM crm_campaign_members m LEFT JOIN cmp_orders o USING (customer_id) {events}
        WHERE m.campaign = {sql_str(campaign)}""")
    agg = ("count(*), count(*) FILTER (WHERE converted), sum(orders), sum(revenue), "
           "sum(revenue * revenue)")
    rows = con.execute(f"""
        SELECT NULL::VARCHAR AS dim, arm, {agg} FROM cmp_member_values GROUP BY ALL
        UNION ALL
        SELECT coalesce(d.dim, '(none)'), arm, {agg}
        FROM cmp_member_values v JOIN ({dims_sql}) d USING (customer_id) GROUP BY ALL""").fetchall()
    out: dict[str | None, dict[str, ArmStats]] = {}
    for dim, arm, n, x, orders, rev, rev_sq in rows:
        out.setdefault(dim, {})[arm] = ArmStats(arm, int(n), int(x), int(orders or 0), float(rev or 0.0),
                                                float(rev_sq or 0.0))
    con.execute("DROP TABLE cmp_member_values")
    return out
