"""Benchmark: ``retention apply`` (anonymise) and the next load of the same export, old code against new.

    python bench/retention_bench.py [--rows 200000] [--repeats 3] [--work /tmp/crmtool-retention-bench]
                                    [--baseline-src /work/wt/privacy-gaps-base/src] [--src src] [--threads N]

Each measurement is a child process running one variant's code (``--src`` and ``--baseline-src``,
alternating: base, new, base, new ...). Setup in the child (not timed): the export from
``bench/gen_customers.py`` (cached), loaded as ``data_``/``work_``/``clean_`` tables with
``dedupe_records`` (every two consecutive records one person), the cleaned CSV written and
registered as ``clean``. Timed: (1) ``apply_retention`` with an anonymise rule over
``signup_date`` and ``last_order_date`` (3 years, unparseable dates allowed: the generator writes
some on purpose); (2) ``load_without_erased`` of the same export (the next ``clean``'s load,
which in the new code blanks the anonymised people again). Printed: per variant the median wall
and process CPU of each step, the median CPU of the whole child (``getrusage`` children), the
ratios new/base, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = """version: 1
dataset: {key: customer_id}
retention:
  - name: inactive_3y
    inactive_for: 3y
    activity_columns: [signup_date, last_order_date]
    date_formats: ['%Y-%m-%d', '%d/%m/%Y']
    action: anonymise
"""


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from datetime import date

    from gen_customers import generate

    from crmtool import apply_retention
    from crmtool.identity.load import load_without_erased
    from crmtool.io.readers import load_file
    from crmtool.io.writers import write_query
    from crmtool.workspace import Workspace

    work = args.work
    export = work / f"customers-{args.rows}.csv"
    if not export.exists():
        generate(args.rows, export)
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    rules = run_dir / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    db, clean_csv = run_dir / "bench.duckdb", run_dir / "out" / "customers.clean.csv"
    with Workspace(db, threads=args.threads) as ws:
        con = ws.con
        load_file(con, export, "data_customers")
        con.execute("CREATE TABLE work_customers AS SELECT * FROM data_customers")
        con.execute("CREATE TABLE clean_customers AS SELECT * FROM work_customers")
        con.execute("CREATE TABLE dedupe_records AS SELECT trim(customer_id) AS record_id, "
                    "'k' || CAST((_row - 1) // 2 AS VARCHAR) AS cluster_id FROM data_customers")
        run = ws.start_run("clean")
        write_query(con, "SELECT * EXCLUDE (_row) FROM clean_customers ORDER BY _row", clean_csv, "csv")
        ws.register_output(run, "clean", clean_csv)
        ws.finish_run(run, "pass", 0, {})
    figures = {}
    with Workspace(db, threads=args.threads) as ws:
        t, c = time.perf_counter(), time.process_time()
        result = apply_retention(ws, [rules], out_dir=run_dir / "out", as_of=date(2026, 11, 1),
                                 allow_unparseable_dates=True)
        figures["retention"] = (time.perf_counter() - t, time.process_time() - c)
        rows = sum(r["rows"] for r in result.rules)
        t, c = time.perf_counter(), time.process_time()
        load_without_erased(ws, export, "data_customers", "customer_id")
        figures["next_load"] = (time.perf_counter() - t, time.process_time() - c)
        blank = ws.con.execute("SELECT count(*) FROM data_customers WHERE email IS NULL").fetchall()[0][0]
    print(json.dumps({"figures": figures, "rows_anonymised": rows, "blank_emails_after_load": blank}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/crmtool-retention-bench"))
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("CRMTOOL_KEY", "bench-key-0123456789abcdef0123456789")
    if args.child:
        child(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    variants = [("base", args.baseline_src), ("new", args.src)] if args.baseline_src else [("new", args.src)]
    got: dict[str, list[dict[str, object]]] = {name: [] for name, _src in variants}
    for _ in range(args.repeats):
        for name, src in variants:
            cmd = [sys.executable, __file__, "--child", "--rows", str(args.rows), "--work", str(args.work)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            body = json.loads(out.strip().splitlines()[-1])
            body["child_wall"] = time.perf_counter() - t
            body["child_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            got[name].append(body)
    print(f"rows {args.rows:,}, repeats {args.repeats}, load average {os.getloadavg()}")
    medians: dict[str, dict[str, float]] = {}
    for name, runs in got.items():
        m = {}
        for step in ("retention", "next_load"):
            m[f"{step} wall"] = statistics.median(r["figures"][step][0] for r in runs)  # type: ignore[index]
            m[f"{step} cpu"] = statistics.median(r["figures"][step][1] for r in runs)  # type: ignore[index]
        m["child cpu (getrusage)"] = statistics.median(float(r["child_cpu"]) for r in runs)  # type: ignore[arg-type]
        m["child wall"] = statistics.median(float(r["child_wall"]) for r in runs)  # type: ignore[arg-type]
        medians[name] = m
        print(f"{name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in m.items())
              + f"; rows anonymised {runs[0]['rows_anonymised']}, blank emails after the next load "
              f"{runs[0]['blank_emails_after_load']}")
    if "base" in medians:
        print("new/base: " + ", ".join(f"{k} {medians['new'][k] / medians['base'][k]:.2f}"
                                       for k in medians["new"] if medians["base"][k]))


if __name__ == "__main__":
    main()
