"""Benchmark of the email classifier (not part of pytest).

1. Offline classification of 1,000,000 addresses with ~30% repeats (700,000 distinct), generated
   deterministically in DuckDB: mostly ordinary names on providers and ~30,000 company domains,
   with typos, disposable domains, role accounts, random local parts, broken syntax and
   internationalised addresses mixed in. Timed: classify the distinct addresses and join the
   result back to the 1M rows. Also timed: the whole ``crmtool emails`` library path
   (:func:`crmtool.emails.run.classify_file`) on the same data written as a CSV file.
2. The MX path: 10,000 distinct domains against the loopback DNS server of the tests
   (``tests/emails/dnszone.py``), no cache.

Run: ``python bench/emails_bench.py [--rows 1000000] [--mx-domains 10000] [--skip-file]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROVIDERS = ["gmail.com", "hotmail.com", "hotmail.es", "yahoo.es", "outlook.es", "icloud.com", "telefonica.net",
             "movistar.es", "live.com", "yahoo.com"]
TYPOS = ["gmial.com", "gmail.co", "hotmial.es", "yaho.es", "outlok.es", "gmaill.com", "hotmail.con"]
DISPOSABLE = ["mailinator.com", "yopmail.com", "guerrillamail.com", "10minutemail.com"]
FIRST = ["ana", "luis", "maria", "jose", "carmen", "pedro", "laura", "javier", "lucia", "pablo", "marta", "david",
         "elena", "sergio", "paula", "jorge", "sara", "alberto", "nuria", "raul"]
LAST = ["garcia", "lopez", "martin", "sanchez", "perez", "gomez", "ruiz", "diaz", "moreno", "alvarez", "munoz",
        "romero", "navarro", "torres", "dominguez", "vazquez", "ramos", "gil", "serrano", "blanco"]
ROLES = ["info", "ventas", "contacto", "admin", "soporte", "rrhh"]


def _arr(values: list[str]) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


def generate(con, rows: int) -> None:  # type: ignore[no-untyped-def]
    distinct = int(rows * 0.7)
    con.execute(f"""
        CREATE OR REPLACE TABLE addr AS
        SELECT i, CASE
            WHEN h % 1000 < 10 THEN 'broken ' || i || '@@' || 'empresa.es'
            WHEN h % 1000 < 20 THEN 'josé.' || i || '@correo-' || (i % 500) || '.es'
            WHEN h % 1000 < 40 THEN substr(md5(CAST(i AS VARCHAR)), 1, 10) || '@' || {_arr(PROVIDERS)}[1 + i % 10]
            WHEN h % 1000 < 55 THEN {_arr(ROLES)}[1 + i % 6] || (i % 97) || '@empresa' || (i % 30000) || '.es'
            ELSE {_arr(FIRST)}[1 + (h >> 8) % 20] || '.' || {_arr(LAST)}[1 + (h >> 16) % 20] || (i % 100000)
                 || '@' || CASE WHEN (h >> 24) % 100 < 55 THEN {_arr(PROVIDERS)}[1 + (h >> 32) % 10]
                               WHEN (h >> 24) % 100 < 58 THEN {_arr(TYPOS)}[1 + (h >> 32) % 7]
                               WHEN (h >> 24) % 100 < 60 THEN {_arr(DISPOSABLE)}[1 + (h >> 32) % 4]
                               ELSE 'empresa' || ((h >> 32) % 30000) || CASE WHEN i % 3 = 0 THEN '.com' ELSE '.es' END
                          END
            END AS email
        FROM (SELECT i, CAST(hash(i) % 9223372036854775807 AS BIGINT) AS h FROM range({distinct}) t(i))""")
    con.execute(f"""
        CREATE OR REPLACE TABLE rows AS
        SELECT row_number() OVER () AS _row, email FROM (
            SELECT email FROM addr
            UNION ALL
            SELECT a.email FROM range({rows - distinct}) t(j)
            JOIN addr a ON a.i = CAST(hash(j + 12345) % {distinct} AS BIGINT))""")


def bench_offline(rows: int, skip_file: bool) -> None:
    import duckdb

    from crmtool.emails.classify import ClassifyOptions, classify_values
    from crmtool.emails.lists import EmailLists

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    t = time.perf_counter()
    generate(con, rows)
    n, d = con.execute("SELECT count(*), count(DISTINCT email) FROM rows").fetchone()  # type: ignore[misc]
    took = time.perf_counter() - t
    print(f"generated {n:,} rows, {d:,} distinct addresses ({1 - d / n:.0%} repeats) in {took:.1f} s")
    options = ClassifyOptions(lists=EmailLists.load())
    con.execute("CREATE OR REPLACE TEMP VIEW vals AS SELECT DISTINCT email AS value FROM rows")
    t, cpu = time.perf_counter(), time.process_time()
    result = classify_values(con, "vals", options)
    con.execute(f"CREATE OR REPLACE TABLE per_row AS SELECT r._row, c.* FROM rows r JOIN {result.table} c "
                f"ON c.value = r.email")
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"offline classification of {n:,} rows ({result.addresses:,} distinct, {result.domains:,} domains): "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU (all threads); load average {os.getloadavg()[0]:.1f}\n"
          f"  steps (wall): {result.timings}")
    for status, count in con.execute("SELECT status, count(*) FROM per_row GROUP BY 1 ORDER BY 1").fetchall():
        print(f"  {status:8} {count:,}")
    if skip_file:
        return
    from crmtool.emails.run import classify_file
    from crmtool.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "emails.csv"
        con.execute(f"COPY (SELECT _row AS id, email FROM rows ORDER BY _row) TO '{csv}' (HEADER)")
        with Workspace(":memory:") as ws:
            t = time.perf_counter()
            report = classify_file(ws, csv, out_dir=Path(tmp) / "out", options=options)
            print(f"classify_file (read CSV + classify + write emails.csv): {time.perf_counter() - t:.2f} s wall, "
                  f"{report.addresses:,} distinct")


def bench_mx(domains: int) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "emails"))
    from dnszone import DnsServer, Zone  # type: ignore[import-not-found]

    from crmtool.emails.mx import lookup

    names = [f"d{i}.bench-mx.com" for i in range(domains)]
    zone = Zone(suffix_mx=("bench-mx.com",))
    with DnsServer(zone) as server:
        t = time.perf_counter()
        answers, exhausted = lookup(names, resolver=server.address, timeout=3.0, budget=60.0, concurrency=64)
        wall = time.perf_counter() - t
    ok = sum(1 for a in answers.values() if a[0] == "ok")
    print(f"MX path: {domains:,} distinct domains against the loopback server: {wall:.2f} s wall, "
          f"{ok:,} ok, budget exhausted: {exhausted}, {server.queries:,} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--mx-domains", type=int, default=10_000)
    parser.add_argument("--skip-file", action="store_true", help="skip the classify_file (CSV) timing")
    parser.add_argument("--skip-mx", action="store_true")
    args = parser.parse_args()
    bench_offline(args.rows, args.skip_file)
    if not args.skip_mx:
        bench_mx(args.mx_domains)


if __name__ == "__main__":
    main()
