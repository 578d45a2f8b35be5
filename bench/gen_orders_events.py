"""Deterministic orders and events for the examples and for the segments benchmark.

    python bench/gen_orders_events.py examples            # examples/pedidos.csv, examples/eventos.csv
    python bench/gen_orders_events.py bench /tmp/segbench --customers 1000000 --orders 10000000 \
        --events 10000000                                 # Parquet: customers, orders, events

``examples`` uses numpy with a fixed seed (ids C0000001..C0000300, as in examples/clientes.csv) and
writes the messy shapes a Spanish export has: ``;`` delimiter, dd/mm/yyyy dates, decimal commas, plus
a few bad rows on purpose (an unknown customer, a negative and a missing amount, a future and an
unparseable date). ``bench`` generates everything inside DuckDB from hashes of the row number:
vectorised, deterministic, no Python loop over rows.
"""

from __future__ import annotations

import argparse
import csv
from datetime import date, timedelta
from pathlib import Path

START = date(2023, 1, 1)
END = date(2026, 10, 31)
CHANNELS = ["web", "store", "app", "phone"]
EVENT_TYPES = ["email_sent", "email_open", "email_click", "web_visit", "cart_add"]
EVENT_CHANNEL = {
    "email_sent": "email",
    "email_open": "email",
    "email_click": "email",
    "web_visit": "web",
    "cart_add": "web",
}


def examples(root: Path, customers: int = 300, seed: int = 20261101) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    span = (END - START).days
    # per customer: activity weight (30% never buy), last active day
    buys = rng.random(customers) > 0.3
    weight = np.where(buys, rng.gamma(1.2, 1.0, customers), 0.0)
    last_active = rng.integers(0, span + 1, customers)
    n_orders = 900
    cust = rng.choice(customers, size=n_orders, p=weight / weight.sum())
    day = np.clip(last_active[cust] - rng.exponential(220, n_orders).astype(int), 0, span)
    recent = cust % 20 == 0  # a cohort of new customers: every order in the last 80 days
    day[recent] = span - day[recent] % 80
    amount = np.round(rng.lognormal(3.8, 0.8, n_orders), 2)
    channel = rng.choice(len(CHANNELS), n_orders, p=[0.55, 0.25, 0.15, 0.05])
    order = np.lexsort((cust, day))
    rows = []
    for k, i in enumerate(order, start=1):  # 900 rows of example data, written once
        d = START + timedelta(days=int(day[i]))
        rows.append(
            [
                f"P{k:06d}",
                f"C{cust[i] + 1:07d}",
                d.strftime("%d/%m/%Y"),
                f"{amount[i]:.2f}".replace(".", ","),
                CHANNELS[channel[i]],
            ]
        )
    rows += [
        ["P900901", "C0009999", "15/03/2026", "49,90", "web"],  # unknown customer
        ["P900902", "C0000010", "16/03/2026", "-20,00", "store"],  # negative amount (a refund row)
        ["P900903", "C0000011", "17/03/2026", "", "web"],  # missing amount
        ["P900904", "C0000012", "24/12/2026", "35,00", "web"],  # in the future of as_of 2026-11-01
        ["P900905", "C0000013", "31/02/2026", "12,00", "app"],  # no such day
        ["P900906", "C0000014", "1.234,50", "12,00", "app"],  # amount typed into the date column
    ]
    with (root / "pedidos.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(["order_id", "customer_id", "order_date", "amount", "channel"])
        w.writerows(rows)

    n_events = 2500
    engaged = rng.random(customers) < 0.7
    ew = np.where(engaged, rng.gamma(1.0, 1.0, customers), 0.0)
    ecust = rng.choice(customers, size=n_events, p=ew / ew.sum())
    etype = rng.choice(len(EVENT_TYPES), n_events, p=[0.4, 0.25, 0.1, 0.18, 0.07])
    eday = np.clip(span - rng.exponential(120, n_events).astype(int), 0, span)
    esec = rng.integers(0, 86400, n_events)
    eorder = np.lexsort((esec, eday, ecust))
    with (root / "eventos.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["customer_id", "event_type", "occurred_at", "channel"])
        for i in eorder:
            t = START + timedelta(days=int(eday[i]))
            s = int(esec[i])
            et = EVENT_TYPES[etype[i]]
            w.writerow(
                [
                    f"C{ecust[i] + 1:07d}",
                    et,
                    f"{t.isoformat()} {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}",
                    EVENT_CHANNEL[et],
                ]
            )
        w.writerow(["C0007777", "email_open", "2026-10-01 10:00:00", "email"])  # unknown customer
        w.writerow(["C0000020", "email_open", "not a date", "email"])  # unparseable


def bench(out: Path, customers: int, orders: int, events: int) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    span = (END - START).days
    u = "((hash({x}) % 1000003) / 1000003.0)"  # deterministic uniform in [0, 1) from an integer expression

    def uni(x: str) -> str:
        return u.format(x=x)

    con.execute(f"""
        COPY (
          SELECT 'C' || lpad(CAST(i AS VARCHAR), 8, '0') AS customer_id,
                 'Name' || CAST(i % 997 AS VARCHAR) AS first_name,
                 'user' || CAST(i AS VARCHAR) || '@' || ['gmail.com', 'hotmail.com', 'yahoo.es',
                     'empresa.es'][1 + i % 4]
                     AS email,
                 '+346' || lpad(CAST(i % 100000000 AS VARCHAR), 8, '0') AS phone,
                 CASE WHEN {uni("i * 3 + 1")} < 0.8 THEN 'yes' WHEN {uni("i * 3 + 1")} < 0.95 THEN
                     'no' ELSE '' END
                     AS email_consent,
                 DATE '{START}' - CAST(floor({uni("i * 5 + 2")} * 2000) AS INTEGER) AS signup_date,
                 ['Madrid', 'Barcelona', 'Valencia', 'Sevilla', 'Bilbao'][1 + i % 5] AS city
          FROM range(1, {customers} + 1) t(i)
        ) TO '{out / "customers.parquet"}' (FORMAT parquet)""")
    con.execute(f"""
        COPY (
          SELECT 'O' || CAST(i AS VARCHAR) AS order_id,
                 'C' || lpad(CAST(1 + CAST(floor(pow({uni("i * 7 + 3")}, 1.6) * {customers}) AS
                     BIGINT) AS VARCHAR), 8, '0')
                     AS customer_id,
                 DATE '{START}' + CAST(floor({uni("i * 11 + 4")} * {span}) AS INTEGER) AS order_date,
                 CAST(round(5 + {uni("i * 13 + 5")} * {uni("i * 17 + 6")} * 400, 2) AS
                     DECIMAL(18,2)) AS amount,
                 ['web', 'store', 'app', 'phone'][1 + CAST(floor({uni("i * 19 + 7")} * 4) AS
                     INTEGER)] AS channel
          FROM range(1, {orders} + 1) t(i)
        ) TO '{out / "orders.parquet"}' (FORMAT parquet)""")
    con.execute(f"""
        COPY (
          SELECT 'C' || lpad(CAST(1 + CAST(floor({uni("i * 23 + 8")} * {customers}) AS BIGINT) AS
              VARCHAR), 8, '0')
                     AS customer_id,
                 ['email_sent', 'email_open', 'email_click', 'web_visit', 'cart_add'][1 + i % 5] AS
                     event_type,
                 TIMESTAMP '{START} 00:00:00' + to_seconds(CAST(floor({uni("i * 29 + 9")} * {span}
                     * 86400) AS BIGINT))
                     AS occurred_at,
                 ['email', 'email', 'email', 'web', 'web'][1 + i % 5] AS channel
          FROM range(1, {events} + 1) t(i)
        ) TO '{out / "events.parquet"}' (FORMAT parquet)""")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    ex = sub.add_parser("examples")
    ex.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / "examples")
    b = sub.add_parser("bench")
    b.add_argument("out", type=Path)
    b.add_argument("--customers", type=int, default=1_000_000)
    b.add_argument("--orders", type=int, default=10_000_000)
    b.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()
    if args.mode == "examples":
        examples(args.root)
    else:
        bench(args.out, args.customers, args.orders, args.events)


if __name__ == "__main__":
    main()
