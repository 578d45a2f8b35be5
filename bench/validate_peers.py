"""crmtool validate against its peers (Soda Core on DuckDB, pandera on polars): same file, same 5 checks.

    python bench/validate_peers.py [--rows 1000000] [--repeats 3] [--peers-python PY] [--dir DIR]

One synthetic CSV (``id, name, email, age, country``) is generated with DuckDB from a seedless,
deterministic formula, so the failing counts of each check are known in advance:

=============  ==========================================  =====================================
check          crmtool rule kind                            Soda Core 3 / pandera (polars)
=============  ==========================================  =====================================
not-null       ``required`` on name                         ``missing_count`` / ``nullable=False``
unique         ``unique`` on id                             ``duplicate_count`` / ``unique=True``
email regex    ``regex`` on email                           ``invalid_count`` + ``valid regex`` /
                                                            ``Check.str_matches``
range          ``range`` 18..99 on age                      ``valid min/max`` / ``Check.in_range``
allowed        ``allowed`` on country                       ``valid values`` / ``Check.isin``
=============  ==========================================  =====================================

Every tool runs in its own subprocess (start-up, reading the CSV and checking all included),
alternately, ``--repeats`` times; the script asserts that every tool reports the expected
failing counts (unique: crmtool and pandera count the rows of a repeated id, Soda counts the
repeated ids; each duplicated id occurs exactly twice, so rows = 2 x ids) and prints medians and
ratios. It also times ``crmtool --help`` and ``crmtool validate`` on a 10-row file.

pandera is the optional group ``peers`` (``pip install -e '.[peers]'``). Soda Core 3's DuckDB
data source pins ``duckdb<1.1`` and cannot live beside crmtool (``duckdb>=2``): install it in a
venv of its own (``bench/requirements-soda.txt``) and name that interpreter with ``--soda-python``.
Wall time and CPU time (user + system, all threads) are both reported: on a shared, loaded
machine the wall times swing, the CPU seconds much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EMAIL_RE = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
COUNTRIES = ["ES", "PT", "FR", "DE", "IT"]
AGE_MIN, AGE_MAX = 18, 99
CHECKS = ("not_null", "unique", "email_regex", "range", "allowed")

RULES = f"""version: 1
rules:
  - name: not_null
    kind: required
    column: name
  - name: unique
    kind: unique
    column: id
  - name: email_regex
    kind: regex
    column: email
    pattern: '{EMAIL_RE[1:-1]}'
  - name: range
    kind: range
    column: age
    min: {AGE_MIN}
    max: {AGE_MAX}
  - name: allowed
    kind: allowed
    column: country
    values: [{", ".join(COUNTRIES)}]
"""

SODA_CHECKS = f"""checks for customers:
  - missing_count(name) = 0:
      name: not_null
  - duplicate_count(id) = 0:
      name: unique
  - invalid_count(email) = 0:
      name: email_regex
      valid regex: '{EMAIL_RE}'
  - invalid_count(age) = 0:
      name: range
      valid min: {AGE_MIN}
      valid max: {AGE_MAX}
  - invalid_count(country) = 0:
      name: allowed
      valid values: [{", ".join(COUNTRIES)}]
"""

# the peers run as small programs of their own: argv[1] is the CSV, they print {check: count}
SODA_PROGRAM = """
import json, sys, duckdb
from soda.scan import Scan
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE customers AS SELECT * FROM read_csv(?, header=true)", [sys.argv[1]])
scan = Scan()
scan.set_data_source_name("duckdb")
scan.add_duckdb_connection(con, data_source_name="duckdb")
scan.add_sodacl_yaml_str(sys.argv[2])
scan.execute()
out = {c["name"]: int(c["diagnostics"]["value"]) for c in scan.get_scan_results()["checks"]}
print("@@" + json.dumps(out))
"""

PANDERA_PROGRAM = """
import json, sys
import polars as pl
import pandera.polars as pa
email_re, countries, lo, hi = sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]), int(sys.argv[5])
schema = pa.DataFrameSchema({
    "id": pa.Column(str, unique=True, nullable=False),
    "name": pa.Column(str, nullable=False),
    "email": pa.Column(str, pa.Check.str_matches(email_re), nullable=True),
    "age": pa.Column(int, pa.Check.in_range(lo, hi), nullable=True),
    "country": pa.Column(str, pa.Check.isin(countries), nullable=True),
})
frame = pl.read_csv(sys.argv[1], schema_overrides={"id": pl.String, "age": pl.Int64})
names = {"name": "not_null", "id": "unique", "email": "email_regex", "age": "range", "country": "allowed"}
out = {v: 0 for v in names.values()}
try:
    schema.validate(frame, lazy=True)
except pa.errors.SchemaErrors as exc:
    for column, n in exc.failure_cases.group_by("column").len().iter_rows():
        out[names[column]] = int(n)
print("@@" + json.dumps(out))
"""


def generate(path: Path, rows: int) -> dict[str, int]:
    """Write the CSV and return the failing count each check must report (in rows)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""
        CREATE TABLE g AS SELECT i,
            -- every 1000th row repeats the id of the row before it: pairs of one repeated id
            'C' || lpad(CAST(CASE WHEN i % 1000 = 999 THEN i - 1 ELSE i END AS VARCHAR), 8, '0') AS id,
            CASE WHEN i % 97 = 0 THEN NULL ELSE 'Name ' || i END AS name,
            CASE WHEN i % 211 = 0 THEN NULL WHEN i % 53 = 0 THEN 'user' || i || '.example.com'
                 ELSE 'user' || i || '@example.com' END AS email,
            CASE WHEN i % 41 = 0 THEN (CASE WHEN i % 2 = 0 THEN 7 ELSE 120 END)
                 ELSE {AGE_MIN} + i % ({AGE_MAX} - {AGE_MIN} + 1) END AS age,
            CASE WHEN i % 67 = 0 THEN 'XX' ELSE ({COUNTRIES!r})[1 + i % 5] END AS country
        FROM range({rows}) r(i)""")
    con.execute("COPY (SELECT id, name, email, age, country FROM g ORDER BY i) TO ? (HEADER, DELIMITER ',')",
                [str(path)])
    row = con.execute("""SELECT count(*) FILTER (name IS NULL),
        2 * count(*) FILTER (i % 1000 = 999),
        count(*) FILTER (email IS NOT NULL AND NOT regexp_full_match(email, ?)),
        count(*) FILTER (age NOT BETWEEN ? AND ?), count(*) FILTER (country = 'XX') FROM g""",
                      [EMAIL_RE[1:-1], AGE_MIN, AGE_MAX]).fetchone()
    assert row is not None
    return dict(zip(CHECKS, (int(v) for v in row), strict=True))


#: the subprocesses may cache bytecode, as every installed program does (some shells here turn it off)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Wall seconds, stdout and CPU seconds (user + system) of one run of ``cmd``."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env or ENV)
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode not in (0, 1):  # validate exits 1 when a check fails: expected here
        raise SystemExit(f"{cmd[:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout, cpu


def crmtool_cmd(csv: Path, rules: Path, workspace: str) -> list[str]:
    return [sys.executable, "-m", "crmtool", "validate", str(csv), "--rules", str(rules), "--format", "json",
            "--quiet", "--workspace", workspace]


def crmtool_counts(stdout: str) -> dict[str, int]:
    # the report may carry rows of its own beside the rules (unparseable rows): the 5 checks only
    return {r["rule"]: int(r["failed"]) for r in json.loads(stdout)["rules"] if r["rule"] in CHECKS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--soda-python", default=sys.executable,
                        help="interpreter with soda-core-duckdb 3.x (it pins duckdb<1.1: a venv of its own)")
    parser.add_argument("--pandera-python", default=sys.executable,
                        help="interpreter with pandera[polars] (default: this one; the 'peers' extra)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "crmtool-validate-peers")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="a crmtool src/ folder to time beside this one, e.g. main's from git archive")
    parser.add_argument("--skip-peers", action="store_true", help="time crmtool only (no peers installed)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    csv = args.dir / f"customers_{args.rows}.csv"
    small = args.dir / "customers_10.csv"
    rules = args.dir / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    expected = generate(csv, args.rows)
    generate(small, 10)
    soda_expected = dict(expected, unique=expected["unique"] // 2)  # Soda counts repeated ids, not rows
    print(f"rows {args.rows}, expected failing rows {expected}", flush=True)

    tools: dict[str, tuple[list[str], dict[str, int], dict[str, str]]] = {
        "crmtool": (crmtool_cmd(csv, rules, ":memory:"), expected, ENV),
    }
    if args.baseline_src:  # another crmtool source tree (say main's), run by this interpreter
        tools["crmtool baseline"] = (crmtool_cmd(csv, rules, ":memory:"), expected,
                                     dict(ENV, PYTHONPATH=str(args.baseline_src.resolve())))
    if not args.skip_peers:
        tools["soda-core (duckdb)"] = ([args.soda_python, "-c", SODA_PROGRAM, str(csv), SODA_CHECKS],
                                       soda_expected, ENV)
        tools["pandera (polars)"] = ([args.pandera_python, "-c", PANDERA_PROGRAM, str(csv), EMAIL_RE,
                                      ",".join(COUNTRIES), str(AGE_MIN), str(AGE_MAX)], expected, ENV)
    for cmd, _want, env in tools.values():  # warm-up on the small file: bytecode compiled, files cached
        timed([str(small) if part == str(csv) else part for part in cmd], env)
    load_before = os.getloadavg()[0]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    for rep in range(args.repeats):
        for name, (cmd, want, env) in tools.items():  # alternately: load on the machine hits each alike
            seconds, out, cpu = timed(cmd, env)
            got = crmtool_counts(out) if name.startswith("crmtool") else json.loads(out.rsplit("@@", 1)[1])
            assert got == want, f"{name}: counts {got} != expected {want}"
            times[name].append((seconds, cpu))
            print(f"  run {rep + 1} {name}: {seconds:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(args.repeats, 5)):
            seconds, _out, cpu = timed(crmtool_cmd(small, rules, str(Path(tmp) / "ws.duckdb")))
            times.setdefault("crmtool validate, 10 rows", []).append((seconds, cpu))
            seconds, _out, cpu = timed([sys.executable, "-m", "crmtool", "--help"])
            times.setdefault("crmtool --help", []).append((seconds, cpu))

    print(f"\nload average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores); "
          f"medians of {args.repeats} runs of {args.rows} rows")
    base_wall = statistics.median(t[0] for t in times["crmtool"])
    base_cpu = statistics.median(t[1] for t in times["crmtool"])
    print("| tool | median wall s | runs wall s | median CPU s | crmtool / tool (wall) | crmtool / tool (CPU) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in times.items():
        wall, cpu = statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs)
        ratios = f"{base_wall / wall:.2f} | {base_cpu / cpu:.2f}" if name in tools else "| "
        print(f"| {name} | {wall:.2f} | {', '.join(f'{t[0]:.2f}' for t in runs)} | {cpu:.2f} | {ratios} |")

if __name__ == "__main__":
    main()
