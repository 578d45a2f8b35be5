"""Campaign benchmark: results of a 1M-customer campaign (A/B + holdout + global control) over 10M orders.

    python bench/campaign_bench.py [--dir /tmp/campaignbench] [--customers 1000000] [--orders 10000000]
                                   [--repeat 3] [--window 30] [--since 2026-09-01]

Inputs are generated once by bench/gen_orders_events.py (Parquet, in a subprocess) and reused. A
segment run of every customer is written into a fresh file workspace (status ``excluded`` for the
customers without consent, ``send`` otherwise), then ``campaign start`` records the campaign
(timed once) and ``campaign results`` is timed ``--repeat`` times: orders read from Parquet,
parsed, filtered to the window and aggregated per customer in DuckDB, joined to the members,
aggregated per arm, then the statistics. Prints each wall time, the median and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/campaignbench"))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=30, help="days counted from --since")
    parser.add_argument("--since", type=date.fromisoformat, default=date(2026, 9, 1),
                        help="first day of the window (2023-01-01 with --window 1500 takes every order)")
    args = parser.parse_args()

    data = args.dir / f"data-{args.customers}-{args.orders}"
    if not (data / "orders.parquet").exists():
        gen = Path(__file__).with_name("gen_orders_events.py")
        subprocess.run([sys.executable, str(gen), "bench", str(data), "--customers", str(args.customers),
                        "--orders", str(args.orders), "--events", "0"], check=True)

    from crmtool.campaigns.api import campaign_results, start_campaign
    from crmtool.segments.membership import ensure_history
    from crmtool.workspace import Workspace

    db = args.dir / "bench.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    with Workspace(db) as ws:
        ensure_history(ws.con)
        ws.con.execute("INSERT INTO segments_runs VALUES ('bench', DATE '2026-09-01', now(), 'bench', ?)",
                       [args.customers])
        ws.con.execute(f"""
            INSERT INTO segments_membership
            SELECT 'bench', 'all', customer_id, CASE WHEN email_consent = 'yes' THEN 'send' ELSE 'excluded' END,
                   NULL FROM read_parquet('{data / "customers.parquet"}')""")
        t0 = time.perf_counter()
        c0 = time.process_time()
        started = start_campaign(ws, "bench", segment="all", out_dir=args.dir / "out",
                                 variants=[("A", 0.5), ("B", 0.5)], holdout=10, global_control=5, cost=50_000,
                                 start_date=date(2026, 9, 1), fmt="parquet")
        print(f"campaign start: wall {time.perf_counter() - t0:.2f} s, CPU {time.process_time() - c0:.2f} s, "
              f"arms {started.arms}")
        times, cpus = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            res = campaign_results(ws, "bench", orders=data / "orders.parquet", window_days=args.window,
                                   start_date=args.since)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        print(f"campaign results: wall {', '.join(f'{t:.2f}' for t in times)} s, median "
              f"{statistics.median(times):.2f} s; CPU (all threads) median {statistics.median(cpus):.2f} s")
        print(f"inputs {res.inputs}")
        for a in res.groups[0].arms:
            print(f"  {a.arm}: {a.customers} customers, {a.conversions} conversions, {a.orders} orders")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB (this process)")


if __name__ == "__main__":
    main()
