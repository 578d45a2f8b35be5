"""Benchmark: 100,000 suppression entries and 10,000 erasure requests on a 1,000,000-row workspace.

    python bench/privacy_bench.py [--rows 1000000] [--suppressions 100000] [--erasures 10000]
                                  [--work /tmp/crmtool-privacy-bench] [--threads N]

Setup (not timed): a messy export from ``bench/gen_customers.py`` (cached in the work folder), loaded
into a file workspace as ``data_``, ``work_`` and ``clean_`` tables (what ``clean`` leaves), the
cleaned export written as CSV, a suppression file and an erasure request file drawn from the
data (about half the identifiers match nobody). Timed, each step and the total:

1. ``suppress import`` of the suppression file (tokens stored);
2. the ``mailable`` flag over the 1,000,000 cleaned rows (consent, suppressions, erasures);
3. ``erase`` of the requests: match in all three tables, delete, record tokens, audit, rewrite the
   1,000,000-row cleaned CSV without them;
4. compaction of the workspace file (so erased rows leave its bytes);
5. ``drop_erased`` on a fresh re-import of the original export (1,000,000 rows).

Setup also writes ``dedupe_records`` (every two consecutive records one person), so steps 2 and 3
include cluster-wide suppression and erasure.

Target (issue 11): steps 1-3 within 10 s wall on the 2-core machine (compaction reported apart).

``--baseline-src DIR`` imports crmtool from another tree (the code before the identity layer:
``git worktree add /tmp/base 68d093f^``, then ``--baseline-src /tmp/base/src``). ``--compare DIR``
runs this script ``--runs`` times for the current code and for ``DIR`` alternately (new, old, new,
...) in child processes on one generated export, and prints per step the median wall and CPU of
each and their ratio, with the children's CPU (``getrusage``) and the load average::

    python bench/privacy_bench.py --rows 200000 --suppressions 20000 --erasures 2000 \
        --compare /tmp/base/src --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    parser.add_argument("--erasures", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/crmtool-privacy-bench"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--baseline-src", type=Path, default=None, help="import crmtool from this src folder")
    parser.add_argument("--compare", type=Path, default=None, help="src folder of the code to compare with")
    parser.add_argument("--runs", type=int, default=3, help="runs of each code with --compare")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return
    if args.baseline_src:
        sys.path.insert(0, str(args.baseline_src.resolve()))
    os.environ.setdefault("CRMTOOL_KEY", "bench-key-0123456789abcdef0123456789")

    from gen_customers import generate

    from crmtool.io.readers import load_file
    from crmtool.io.writers import write_query
    from crmtool.privacy.consent import normalise_consent_sql
    from crmtool.privacy.erase import compact_workspace_file, drop_erased, erase
    from crmtool.privacy.mailable import mailable_table
    from crmtool.privacy.suppress import import_suppressions
    from crmtool.workspace import Workspace

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    export = work / f"customers-{args.rows}.csv"
    t0 = time.perf_counter()
    if not export.exists():
        generate(args.rows, export)
        print(f"generated {export} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    db = work / "bench.duckdb"
    for p in (db, Path(str(db) + ".wal"), work / "out"):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    clean_csv = work / "out" / "customers.clean.csv"
    rng = random.Random(11)
    with Workspace(db, threads=args.threads) as ws:
        con = ws.con
        t = time.perf_counter()
        load_file(con, export, "data_customers")
        con.execute("CREATE TABLE work_customers AS SELECT * FROM data_customers")
        con.execute("UPDATE work_customers SET email = lower(trim(email))")
        con.execute("CREATE TABLE clean_customers AS SELECT * FROM work_customers")
        # what dedupe leaves: every two consecutive records are one person, so a suppression or an
        # erasure of one record reaches the other (cluster-wide suppression is part of the timed steps)
        con.execute("CREATE TABLE dedupe_records AS SELECT trim(customer_id) AS record_id, "
                    "'k' || CAST((_row - 1) // 2 AS VARCHAR) AS cluster_id, NULL::VARCHAR AS row_hash, "
                    "'bench' AS run_id FROM data_customers")
        write_query(con, "SELECT * EXCLUDE (_row) FROM clean_customers ORDER BY _row", clean_csv, "csv")
        sample = con.execute(f"SELECT customer_id, email, phone FROM data_customers USING SAMPLE "
                             f"{args.suppressions + args.erasures} ROWS (reservoir, 5)").fetchall()
        print(f"setup: workspace of {args.rows:,} rows x 3 tables in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    rng.shuffle(sample)
    sup_rows, req_rows = sample[: args.suppressions], sample[args.suppressions:]
    supp = work / "suppressions.csv"
    with supp.open("w", encoding="utf-8") as fh:
        fh.write("email,phone,customer_id\n")
        for i, (cid, email, phone) in enumerate(sup_rows):
            r = i % 10
            if r < 4:
                fh.write(f"{(email or '').upper()},,\n")  # present, in another spelling
            elif r < 8:
                fh.write(f"nobody{i}@example.org,,\n")  # matches nobody
            elif r == 8:
                fh.write(f",{phone or ''},\n")
            else:
                fh.write(f",,{cid}\n")
    reqs = work / "erasures.csv"
    with reqs.open("w", encoding="utf-8") as fh:
        fh.write("request_ref,customer_id,email,phone,requested_at\n")
        for i, (cid, email, phone) in enumerate(req_rows):
            r = i % 4
            ref = f"REQ-{i:06d}"
            if r == 0:
                fh.write(f"{ref},{cid},,,2026-10-01\n")
            elif r == 1:
                fh.write(f"{ref},,{email or ''},,2026-10-01\n")
            elif r == 2:
                fh.write(f"{ref},,,{phone or ''},2026-10-01\n")
            else:
                fh.write(f"{ref},C9{i:07d},gone{i}@example.org,,2026-10-01\n")  # unknown people

    figures: dict[str, tuple[float, float]] = {}  # step -> (wall, process CPU) seconds

    def timed(name: str, t: float, c: float) -> None:
        figures[name] = (time.perf_counter() - t, time.process_time() - c)

    start, cpu0 = time.perf_counter(), time.process_time()
    with Workspace(db, threads=args.threads) as ws:
        t, c = time.perf_counter(), time.process_time()
        sup = import_suppressions(ws, supp, "unsubscribe")
        timed("1 suppress import", t, c)
        t, c = time.perf_counter(), time.process_time()
        summary = mailable_table(ws, "clean_customers", email_column="email", consent_column="email_consent",
                                 key_column="customer_id", phone_column="phone")
        timed("2 mailable flag", t, c)
        t, c = time.perf_counter(), time.process_time()
        result = erase(ws, reqs, out_dir=work / "out", outputs=[clean_csv])
        timed("3 erase", t, c)
    total = (time.perf_counter() - start, time.process_time() - cpu0)
    t, c = time.perf_counter(), time.process_time()
    compact_workspace_file(db)
    timed("4 compact workspace", t, c)
    with Workspace(db, threads=args.threads) as ws:
        load_file(ws.con, export, "data_again")
        t, c = time.perf_counter(), time.process_time()
        dropped = drop_erased(ws, "data_again", "customer_id", "email", "phone")
        timed("5 drop_erased on re-import", t, c)
        mailable_check = ws.con.execute(
            f"SELECT count(*) FROM clean_customers WHERE {normalise_consent_sql('email_consent')} = 'granted'"
        ).fetchall()[0][0]
    d = result.as_dict()  # the same script measures the code before and after the identity layer
    print(f"rows {args.rows:,}; suppression entries {sup.identifiers:,} (added {sum(sup.added.values()):,}); "
          f"erasure requests {args.erasures:,}: erased {d.get('erased', d.get('found'))}, "
          f"not found {d['not_found']}, ambiguous {d.get('ambiguous', 'n/a')}")
    print(f"mailable {summary.mailable:,} of {summary.rows:,}; not mailable {summary.reasons}")
    print(f"erase removed {result.rows_removed} rows; rewrote {result.outputs}")
    print(f"re-import: drop_erased removed {dropped:,} rows; consent granted after erase {mailable_check:,}")
    print(f"  {'step':28} {'wall':>8} {'CPU':>8}")
    for name, (wall, cpu) in figures.items():
        print(f"  {name:28} {wall:6.2f} s {cpu:6.2f} s")
    print(f"  {'total steps 1-3':28} {total[0]:6.2f} s {total[1]:6.2f} s  (target <= 10 s wall)")
    print(f"  erase steps: {json.loads((work / 'out' / 'erase.manifest.json').read_text())['timings_seconds']}")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared with other runs)")
    if args.json:
        figures["total steps 1-3"] = total
        print("JSON " + json.dumps({k: {"wall": w, "cpu": c} for k, (w, c) in figures.items()}))


def compare(args: argparse.Namespace) -> None:
    """Run the bench for this tree and ``args.compare`` alternately; medians and ratios per step."""
    import resource
    import statistics
    import subprocess

    common = [sys.executable, __file__, "--rows", str(args.rows), "--suppressions", str(args.suppressions),
              "--erasures", str(args.erasures), "--work", str(args.work), "--json"]
    if args.threads:
        common += ["--threads", str(args.threads)]
    codes = {"new": [], "old": ["--baseline-src", str(args.compare.resolve())]}
    results: dict[str, list[dict[str, dict[str, float]]]] = {"new": [], "old": []}
    child_cpu = {"new": 0.0, "old": 0.0}
    loads = []
    for i in range(args.runs):
        for code, extra in codes.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            loads.append(os.getloadavg()[0])
            out = subprocess.run(common + extra, capture_output=True, text=True, check=True).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu[code] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            line = next(x for x in out.splitlines() if x.startswith("JSON "))
            results[code].append(json.loads(line[5:]))
            total = results[code][-1]["total steps 1-3"]
            print(f"run {i + 1} {code}: steps 1-3 {total['wall']:.2f} s wall, {total['cpu']:.2f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    print(f"rows {args.rows:,}, suppressions {args.suppressions:,}, erasures {args.erasures:,}; "
          f"{args.runs} runs each, alternating; load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"  {'step (median)':28} {'new wall':>9} {'old wall':>9} {'ratio':>6} "
          f"{'new CPU':>9} {'old CPU':>9} {'ratio':>6}")
    for step in results["new"][0]:
        med = {c: {k: statistics.median(r[step][k] for r in results[c]) for k in ("wall", "cpu")} for c in codes}
        print(f"  {step:28} {med['new']['wall']:7.2f} s {med['old']['wall']:7.2f} s "
              f"{med['new']['wall'] / max(med['old']['wall'], 1e-9):6.2f} {med['new']['cpu']:7.2f} s "
              f"{med['old']['cpu']:7.2f} s {med['new']['cpu'] / max(med['old']['cpu'], 1e-9):6.2f}")
    print(f"  child processes' CPU (getrusage, whole runs incl. setup): new {child_cpu['new']:.1f} s, "
          f"old {child_cpu['old']:.1f} s")


if __name__ == "__main__":
    main()
