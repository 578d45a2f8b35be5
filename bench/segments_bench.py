"""Segments benchmark: 1M customers, 10M orders, 10M events, 20 segments evaluated and written.

    python bench/segments_bench.py [--dir /tmp/segbench] [--customers 1000000] [--orders 10000000]
                                   [--events 10000000] [--format csv|parquet]

Inputs are generated once (Parquet, by bench/gen_orders_events.py in a subprocess, so its memory is
not counted) and reused. The timed part is one ``crmtool.segments.api.segment`` call on a fresh
file workspace: read, features, RFM, 20 conditions, exclusive groups, holdouts, protection, every
send list + holdouts + memberships written, history recorded. Prints wall time, CPU time (DuckDB
runs in this process, all its threads count), peak RSS and the step timings.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

SEGMENTS_YAML = """
version: 1
inputs:
  customers: {id: customer_id, email: email, phone: phone, consent: email_consent, signup_date: signup_date}
  orders: {customer_id: customer_id, date: order_date, amount: amount, channel: channel}
  events: {customer_id: customer_id, type: event_type, timestamp: occurred_at, channel: channel}
output: {columns: [customer_id, first_name, email]}
features:
  opens_90d: {events: email_open, days: 90}
  clicks_90d: {events: email_click, days: 90}
  sent_90d: {events: email_sent, days: 90}
  visits_30d: {events: web_visit, days: 30}
  carts_30d: {events: cart_add, days: 30}
  open_rate: "CASE WHEN sent_90d > 0 THEN opens_90d / sent_90d END"
  engaged: "opens_90d + clicks_90d > 0"
funnel:
  stages:
    - {stage: repeat, when: {field: frequency, gte: 2}}
    - {stage: customer, when: {field: frequency, eq: 1}}
    - {stage: cart, when: {field: carts_30d, gt: 0}}
    - {stage: visitor, when: {field: visits_30d, gt: 0}}
holdouts:
  salt: bench
  global: 5
  campaigns: {promo: {percent: 10, segments: [high_value, cart_abandoners]}}
segments:
  - {name: champions, when: {field: rfm_segment, eq: champions}, exclusive: life, priority: 1, holdout: 10}
  - {name: loyal, when: {field: rfm_segment, in: [loyal, potential_loyalist]}, exclusive: life, priority: 2}
  - {name: at_risk, when: {field: rfm_segment, in: [at_risk, cant_lose]}, exclusive: life, priority: 3}
  - {name: hibernating, when: {field: rfm_segment, in: [hibernating, lost]}, exclusive: life, priority: 4}
  - {name: new_customers, when: {field: first_order_date, within: last 90 days}}
  - {name: high_value, when: {field: monetary_total, gte: 2000}}
  - {name: low_value, when: {field: monetary_total, between: [0.01, 100]}}
  - {name: cart_abandoners, when: {all: [{field: carts_30d, gt: 0}, {field: last_order_date, before: 30 days ago}]}}
  - {name: visitors_no_buy, when: {field: funnel_stage, in: [cart, visitor]}}
  - {name: engaged, when: {field: engaged, eq: true}}
  - {name: dormant, when: {all: [{field: frequency, gte: 1}, {field: opens_90d, eq: 0}]}}
  - {name: madrid, when: {field: city, eq: Madrid}}
  - {name: barcelona_recent, when: "city = 'Barcelona' AND recency_days <= 180"}
  - {name: gmail, when: "email LIKE '%@gmail.com'"}
  - {name: web_buyers, when: {field: last_contact_channel, eq: web}}
  - {name: long_tenure, when: {field: tenure_days, gte: 1500}}
  - {name: one_timers, when: {field: frequency, eq: 1}}
  - {name: frequent, when: {field: f_score, eq: 5}}
  - {name: high_open_rate, when: {field: open_rate, gte: 0.5}}
  - {name: never_bought, when: {not: {field: frequency, gte: 1}}, holdout: 20}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/segbench"))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    args = parser.parse_args()
    d: Path = args.dir
    tag = f"{args.customers}-{args.orders}-{args.events}"
    inputs = d / tag
    if not (inputs / "events.parquet").exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).with_name("gen_orders_events.py")), "bench", str(inputs),
                        "--customers", str(args.customers), "--orders", str(args.orders), "--events",
                        str(args.events)], check=True)
        print(f"generated inputs in {time.perf_counter() - t:.1f} s -> {inputs}")
    spec_path = d / "segments.yaml"
    spec_path.write_text(SEGMENTS_YAML, encoding="utf-8")
    ws_path = d / "bench.duckdb"
    for p in (ws_path, Path(str(ws_path) + ".wal")):
        p.unlink(missing_ok=True)

    from crmtool.segments import api
    from crmtool.workspace import Workspace

    start = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with Workspace(ws_path) as ws:
        result = api.segment(ws, inputs / "customers.parquet", spec_path, out_dir=d / "out",
                             orders=inputs / "orders.parquet", events=inputs / "events.parquet",
                             as_of=date(2026, 11, 1), fmt=args.format)
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    peak_kib = cpu1.ru_maxrss
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = fh.read().split()[0]
    members = sum(s.members for s in result.segments)
    print(f"customers {result.customers:,}  orders {result.stats.orders_read:,}  events {result.stats.events_read:,}  "
          f"segments {len(result.segments)}  memberships {members:,}  format {args.format}")
    print(f"wall {wall:.1f} s   CPU {cpu:.1f} s (all threads)   peak RSS {peak_kib / 1024 / 1024:.2f} GiB   "
          f"load average at the end {load} (shared machine)")
    import json

    timings = json.loads((d / "out" / "segments.summary.json").read_text(encoding="utf-8"))["timings"]
    print("step timings (wall s):", ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
