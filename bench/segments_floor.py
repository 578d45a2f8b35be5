"""The floor for ``crmtool segment``: segments_bench.py's segments.yaml written as plain DuckDB SQL.

    python bench/segments_floor.py [--dir /tmp/segbench] [--customers 1000000] [--orders 10000000]
                                   [--events 10000000] [--rounds 3] [--baseline-src /work/wt/base4/src]
                                   [--out-dir /work/bench-data/me]

Inputs are bench/segments_bench.py's (Parquet from bench/gen_orders_events.py, generated once and
reused). Each round runs, one after the other and each in a fresh subprocess: ``crmtool segment``
(``crmtool.segments.api.segment`` on a fresh file workspace, as segments_bench.py times it), the
floor, and with ``--baseline-src`` the same crmtool call on that source tree. The floor is what an
analyst would write by hand for this one file and this data: one aggregate per input, the RFM
ranks, the 20 conditions, the exclusive group as one CASE, holdout buckets (SHA-256, as crmtool's
doc states), consent and blank e-mail exclusions, then the same files (20 send lists, holdouts,
memberships, CSV), and the membership history crmtool's workspace keeps for ``segment diff``: the
floor runs on a fresh database file and appends the same rows to the same two tables
(``segments_runs``, ``segments_membership``), then checkpoints. It trusts its data the way such a
script would: no blank or duplicate ids, no unparseable dates or amounts, no erasure or suppression
registers (the bench workspace is fresh).

After the first round the floor's memberships and send lists are checked row for row against
crmtool's (``EXCEPT ALL`` both ways: zero rows or the script fails), and so are the history rows of
the two workspaces. Printed: wall and CPU seconds (user + system of the subprocess, all DuckDB
threads) per run, their medians, the ratios against the floor with its history write and without
it (the floor's run less that step's own seconds, measured inside its process), and the load
average, since the machine may be shared. Outputs go under ``--out-dir`` (default ``--dir``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

AS_OF = date(2026, 11, 1)
SEGMENTS = [  # name, condition over the feature table f (NULL compares false, as crmtool's leaves)
    ("champions", "rfm_segment = 'champions'"),
    ("loyal", "rfm_segment IN ('loyal', 'potential_loyalist')"),
    ("at_risk", "rfm_segment IN ('at_risk', 'cant_lose')"),
    ("hibernating", "rfm_segment IN ('hibernating', 'lost')"),
    ("new_customers", "first_order_date > DATE '{a}' - 90 AND first_order_date <= DATE '{a}'"),
    ("high_value", "monetary_total >= 2000"),
    ("low_value", "monetary_total BETWEEN 0.01 AND 100"),
    ("cart_abandoners", "carts_30d > 0 AND last_order_date < DATE '{a}' - 30"),
    ("visitors_no_buy", "funnel_stage IN ('cart', 'visitor')"),
    ("engaged", "opens_90d + clicks_90d > 0"),
    ("dormant", "frequency >= 1 AND opens_90d = 0"),
    ("madrid", "city = 'Madrid'"),
    ("barcelona_recent", "city = 'Barcelona' AND recency_days <= 180"),
    ("gmail", "email LIKE '%@gmail.com'"),
    ("web_buyers", "last_contact_channel = 'web'"),
    ("long_tenure", "tenure_days >= 1500"),
    ("one_timers", "frequency = 1"),
    ("frequent", "f_score = 5"),
    ("high_open_rate", "open_rate >= 0.5"),
    ("never_bought", "NOT frequency >= 1"),
]
LIFE = ("champions", "loyal", "at_risk", "hibernating")  # exclusive: life, priorities 1..4


def floor_sql(inputs: Path) -> list[str]:
    """The floor's statements, in order (temp tables, then the COPYs of crmtool's outputs)."""
    a = AS_OF.isoformat()
    c, o, e = (f"read_parquet('{inputs / n}.parquet')" for n in ("customers", "orders", "events"))

    def ev(kind: str, days: int) -> str:
        return f"count(*) FILTER (WHERE event_type = '{kind}' AND occurred_at::DATE > DATE '{a}' - {days})"

    def score(order: str) -> str:
        return f"CAST(1 + 5 * (rank() OVER (ORDER BY {order}) - 1) // (SELECT count(*) FROM o) AS INTEGER)"

    rfm = ("CASE WHEN r IS NULL THEN 'no_orders' WHEN r >= 4 AND fs >= 4 THEN 'champions' "
           "WHEN r = 3 AND fs >= 3 THEN 'loyal' WHEN r >= 4 AND fs BETWEEN 2 AND 3 THEN 'potential_loyalist' "
           "WHEN r = 5 AND fs = 1 THEN 'new_customers' WHEN r = 4 AND fs = 1 THEN 'promising' "
           "WHEN r = 3 AND fs <= 2 THEN 'need_attention' WHEN r = 1 AND fs = 5 THEN 'cant_lose' "
           "WHEN r <= 2 AND fs >= 3 THEN 'at_risk' WHEN r = 2 AND fs <= 2 THEN 'hibernating' "
           "WHEN r = 1 AND fs <= 2 THEN 'lost' ELSE 'other' END")
    life = "CASE " + " ".join(f"WHEN {SEGMENTS[i][1]} THEN {i}" for i in range(len(LIFE))) + " END"
    matches = " UNION ALL ".join(
        f"SELECT customer_id, {i} AS idx FROM f WHERE "
        + (f"life = {i}" if name in LIFE else f"coalesce({cond.format(a=a)}, false)")
        for i, (name, cond) in enumerate(SEGMENTS))
    names = "[" + ", ".join(f"'{n}'" for n, _ in SEGMENTS) + "]"
    bucket = "('0x' || substr(sha256('bench:' || customer_id), 1, 16))::UBIGINT % 10000"
    holdout = ("CASE WHEN b < 500 THEN 'global' WHEN idx = 0 AND b < 1000 THEN 'segment' "
               "WHEN idx = 19 AND b < 2000 THEN 'segment' WHEN idx IN (5, 7) AND b < 1000 THEN 'campaign:promo' END")
    consent = "CASE lower(trim(email_consent)) WHEN 'yes' THEN 'granted' WHEN 'no' THEN 'denied' END"
    reason = ("CASE WHEN nullif(trim(email), '') IS NULL THEN 'no_email' WHEN consent = 'denied' "
              "THEN 'consent_denied' WHEN consent IS NULL THEN 'consent_unknown' END")
    steps = [
        f"""CREATE TEMP TABLE o AS SELECT customer_id, count(*) AS frequency, sum(amount) AS monetary_total,
                min(order_date) AS first_order_date, max(order_date) AS last_order_date,
                arg_max(channel, struct_pack(d := order_date, c := channel)) AS last_order_channel
            FROM {o} WHERE order_date <= DATE '{a}' AND amount >= 0 GROUP BY 1""",
        f"""CREATE TEMP TABLE e AS SELECT customer_id, {ev('email_open', 90)} AS opens_90d,
                {ev('email_click', 90)} AS clicks_90d, {ev('email_sent', 90)} AS sent_90d,
                {ev('web_visit', 30)} AS visits_30d, {ev('cart_add', 30)} AS carts_30d,
                max(occurred_at)::DATE AS last_event_date,
                arg_max(channel, struct_pack(t := occurred_at, c := channel)) AS last_event_channel
            FROM {e} WHERE occurred_at::DATE <= DATE '{a}' GROUP BY 1""",
        f"""CREATE TEMP TABLE s AS SELECT customer_id, {score('last_order_date')} AS r,
                {score('frequency')} AS fs FROM o""",
        f"""CREATE TEMP TABLE f AS SELECT *, {life} AS life, CASE WHEN frequency >= 2 THEN 'repeat'
                WHEN frequency = 1 THEN 'customer' WHEN carts_30d > 0 THEN 'cart' WHEN visits_30d > 0
                THEN 'visitor' ELSE 'lead' END AS funnel_stage
            FROM (SELECT *, fs AS f_score, {rfm} AS rfm_segment FROM (
                  SELECT c.customer_id, c.first_name, c.email, c.city, c.email_consent,
                    coalesce(o.frequency, 0) AS frequency, coalesce(o.monetary_total, 0) AS monetary_total,
                    o.first_order_date, o.last_order_date,
                    date_diff('day', o.last_order_date, DATE '{a}') AS recency_days,
                    date_diff('day', coalesce(c.signup_date, o.first_order_date), DATE '{a}') AS tenure_days,
                    CASE WHEN e.last_event_date IS NULL OR (o.last_order_date > e.last_event_date
                         AND o.last_order_channel IS NOT NULL) THEN o.last_order_channel
                         ELSE e.last_event_channel END AS last_contact_channel,
                    coalesce(e.opens_90d, 0) AS opens_90d, coalesce(e.clicks_90d, 0) AS clicks_90d,
                    coalesce(e.visits_30d, 0) AS visits_30d, coalesce(e.carts_30d, 0) AS carts_30d,
                    CASE WHEN e.sent_90d > 0 THEN e.opens_90d / e.sent_90d END AS open_rate,
                    s.r, s.fs
                  FROM {c} c LEFT JOIN o USING (customer_id) LEFT JOIN e USING (customer_id)
                  LEFT JOIN s USING (customer_id)))""",
        f"""CREATE TEMP TABLE m AS SELECT *, CASE WHEN reason IS NOT NULL THEN 'excluded'
                WHEN holdout IS NOT NULL THEN 'holdout' ELSE 'send' END AS status
            FROM (SELECT x.customer_id, x.idx, {names}[x.idx + 1] AS segment, {holdout} AS holdout,
                         {reason} AS reason
                  FROM (SELECT customer_id, idx FROM ({matches})) x
                  JOIN (SELECT customer_id, email, {bucket} AS b, {consent} AS consent FROM f) k
                  USING (customer_id))""",
    ]
    return steps


def floor_outputs(out: Path) -> list[str]:
    steps = []
    for i, (name, _cond) in enumerate(SEGMENTS):
        steps.append(f"COPY (SELECT f.customer_id, f.first_name, f.email FROM m JOIN f USING (customer_id) "
                     f"WHERE m.idx = {i} AND m.status = 'send' ORDER BY f.customer_id) "
                     f"TO '{out / 'segments' / name}.csv' (FORMAT csv, HEADER)")
    steps.append(f"COPY (SELECT customer_id, segment, holdout FROM m WHERE status = 'holdout' ORDER BY idx, "
                 f"customer_id) TO '{out}/holdouts.csv' (FORMAT csv, HEADER)")
    steps.append(f"COPY (SELECT customer_id, segment, holdout IS NOT NULL AS in_holdout, holdout, status, reason "
                 f"FROM m ORDER BY idx, customer_id) TO '{out}/memberships.csv' (FORMAT csv, HEADER)")
    return steps


HISTORY = [  # crmtool's workspace tables (membership.HISTORY_SCHEMA) and the rows a run appends
    """CREATE TABLE segments_runs (run_id VARCHAR PRIMARY KEY, as_of DATE NOT NULL,
           recorded_at TIMESTAMP NOT NULL, spec_file VARCHAR, customers BIGINT)""",
    """CREATE TABLE segments_membership (run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL,
           customer_id VARCHAR NOT NULL, status VARCHAR NOT NULL, holdout VARCHAR)""",
    "INSERT INTO segments_runs SELECT 'floor', DATE '{a}', now()::TIMESTAMP, 'segments.yaml', count(*) FROM f",
    "INSERT INTO segments_membership SELECT 'floor', segment, customer_id, status, holdout FROM m",
    "CHECKPOINT",
]


def run_floor(inputs: Path, out: Path) -> None:
    """The floor's statements on a fresh database file (as crmtool's workspace), then the history
    write; the history step's own CPU and wall seconds go to ``<out>/history-time.json``."""
    import duckdb

    (out / "segments").mkdir(parents=True, exist_ok=True)
    db = history_db(out)
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("SET memory_limit = '1.5GB'")  # crmtool's default cap (decision 0014)
    con.execute("SET preserve_insertion_order = false")
    for sql in floor_sql(inputs) + floor_outputs(out):
        con.execute(sql)
    cpu, wall = time.process_time(), time.perf_counter()
    for sql in HISTORY:
        con.execute(sql.format(a=AS_OF.isoformat()))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    con.close()
    (out / "history-time.json").write_text(json.dumps({"cpu": cpu, "wall": wall}), encoding="utf-8")


def history_db(out: Path) -> Path:
    return out.parent / (out.name + ".duckdb")


def run_crmtool(inputs: Path, work: Path, out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from segments_bench import SEGMENTS_YAML

    from crmtool.segments import api
    from crmtool.workspace import Workspace

    work.mkdir(parents=True, exist_ok=True)
    spec = work / "segments.yaml"
    spec.write_text(SEGMENTS_YAML, encoding="utf-8")
    ws_path = work / "bench.duckdb"
    for p in (ws_path, Path(str(ws_path) + ".wal")):
        p.unlink(missing_ok=True)
    with Workspace(ws_path) as ws:
        api.segment(ws, inputs / "customers.parquet", spec, out_dir=out, orders=inputs / "orders.parquet",
                    events=inputs / "events.parquet", as_of=AS_OF, fmt="csv")


def child(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run one contender in a subprocess; returns (wall, CPU) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, *argv], check=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def check_same(crm_out: Path, floor_out: Path) -> None:
    import duckdb

    con = duckdb.connect()
    files = ["memberships.csv", "holdouts.csv", *(f"segments/{n}.csv" for n, _ in SEGMENTS)]
    total = 0
    for name in files:
        a, b = (f"read_csv('{d / name}', all_varchar = true, header = true)" for d in (crm_out, floor_out))
        diff = con.execute(f"SELECT count(*) FROM ((FROM {a} EXCEPT ALL FROM {b}) UNION ALL "
                           f"(FROM {b} EXCEPT ALL FROM {a}))").fetchall()[0][0]
        rows = con.execute(f"SELECT count(*) FROM {a}").fetchall()[0][0]
        if diff:
            raise SystemExit(f"{name}: the floor and crmtool differ in {diff} rows")
        if name == "memberships.csv":
            print(f"memberships: {rows:,} rows, identical in the floor and crmtool")
        total += rows
    print(f"all {len(files)} files: {total:,} rows, identical row for row")
    crm_db = crm_out.parent / (crm_out.name + "-ws") / "bench.duckdb"
    con.execute(f"ATTACH '{crm_db}' AS crm (READ_ONLY)")
    con.execute(f"ATTACH '{history_db(floor_out)}' AS flo (READ_ONLY)")
    cols = "segment, customer_id, status, holdout"
    a, b = (f"SELECT {cols} FROM {d}.segments_membership" for d in ("crm", "flo"))
    diff = con.execute(f"SELECT count(*) FROM (({a} EXCEPT ALL {b}) UNION ALL ({b} EXCEPT ALL {a}))").fetchall()[0][0]
    rows = con.execute("SELECT count(*) FROM crm.segments_membership").fetchall()[0][0]
    runs = [con.execute(f"SELECT as_of, customers FROM {d}.segments_runs").fetchall() for d in ("crm", "flo")]
    if diff or runs[0] != runs[1] or len(runs[0]) != 1:
        raise SystemExit(f"history: the floor and crmtool differ ({diff} membership rows; runs {runs})")
    print(f"history: {rows:,} membership rows and the run row (as_of, customers), identical")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/segbench"))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, help="where the outputs go (default: --dir)")
    parser.add_argument("--baseline-src", type=Path, help="another crmtool src tree, run as a third contender")
    parser.add_argument("--one", choices=["crmtool", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    inputs = args.dir / f"{args.customers}-{args.orders}-{args.events}"
    if args.one == "floor":
        return run_floor(inputs, args.out)
    if args.one == "crmtool":
        return run_crmtool(inputs, args.out.parent / (args.out.name + "-ws"), args.out)
    if not (inputs / "events.parquet").exists():
        subprocess.run([sys.executable, str(Path(__file__).with_name("gen_orders_events.py")), "bench", str(inputs),
                        "--customers", str(args.customers), "--orders", str(args.orders), "--events",
                        str(args.events)], check=True)
    size = ["--dir", str(args.dir), "--customers", str(args.customers), "--orders", str(args.orders),
            "--events", str(args.events)]
    env = dict(os.environ)
    out_dir = args.out_dir or args.dir
    src = str(Path(__file__).resolve().parents[1] / "src")
    contenders = {"crmtool": ("crmtool", src), "floor": ("floor", src)}
    if args.baseline_src:
        contenders["baseline"] = ("crmtool", str(args.baseline_src))
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    hist: list[tuple[float, float]] = []  # the floor's history write, measured inside its process
    for r in range(args.rounds):
        for name, (kind, path) in contenders.items():
            out = out_dir / f"floor-out-{name}"
            times[name].append(child([*size, "--one", kind, "--out", str(out)], env | {"PYTHONPATH": path}))
            if name == "floor":
                h = json.loads((out / "history-time.json").read_text(encoding="utf-8"))
                hist.append((h["wall"], h["cpu"]))
            w, c = times[name][-1]
            print(f"round {r + 1} {name:8} wall {w:6.1f} s  CPU {c:6.1f} s", flush=True)
        if r == 0:
            check_same(out_dir / "floor-out-crmtool", out_dir / "floor-out-floor")
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = " ".join(fh.read().split()[:3])
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    for k, (w, c) in med.items():
        print(f"median {k:8} wall {w:6.1f} s  CPU {c:6.1f} s")
    times["floor-without-history"] = [(w - hw, c - hc) for (w, c), (hw, hc) in zip(times["floor"], hist, strict=True)]
    hw, hc = statistics.median(w for w, _ in hist), statistics.median(c for _, c in hist)
    print(f"median the floor's history write  wall {hw:6.1f} s  CPU {hc:6.1f} s")
    for label, key in (("floor", "floor"), ("floor without the history write", "floor-without-history")):
        fw = statistics.median(w for w, _ in times[key])
        fc = statistics.median(c for _, c in times[key])
        for k in contenders:
            if k != "floor":
                print(f"{k} / {label}: wall {med[k][0] / fw:.2f}x  CPU {med[k][1] / fc:.2f}x")
    print(f"{args.customers:,} customers / {args.orders:,} orders / {args.events:,} events, "
          f"{args.rounds} rounds, load average at the end {load}")
    print(json.dumps({k: v for k, v in times.items()}))


if __name__ == "__main__":
    main()
