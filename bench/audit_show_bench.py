"""Time ``crmtool audit show --record | --rule | --run`` over a year of nightly runs.

    python bench/audit_show_bench.py [--runs 365] [--changes 1500000] [--work bench/data/audit_year]

Builds (once) a workspace audit log of ``--runs`` sealed runs with the real writer: each night
the same change set of ``--changes`` rows (a 300k-row export with ~5 changes a row, as clean
writes it: four parts sorted by record hash), the files of later nights hard-linked to the
first night's, as an unchanged nightly export would write them. Then times the three look-ups
through the real command line (Python start-up included) and prints the median of 3 each.
Not part of pytest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "bench-key-0123456789abcdef"


def build(log: Path, runs: int, changes: int) -> None:
    import duckdb

    from crmtool.audit import AuditWriter
    from crmtool.keys import KeyedHasher

    hasher = KeyedHasher(KEY.encode(), "bench")
    con = duckdb.connect()
    hasher.register_sql(con)
    rows = changes // 5
    # 20 rules; rule_19 is rare (about 100 changes a night), the rest share the others
    con.execute(f"""CREATE TABLE ch AS SELECT
        'change' AS type,
        CASE WHEN i % 15000 = 7 THEN 'rule_19' ELSE 'rule_' || (i % 19) END AS rule,
        (i // 5) AS "row", CAST(NULL AS BIGINT) AS line,
        'k:' || crm_token('C' || (i // 5)) AS record, 'field_' || (i % 9) AS field,
        CASE WHEN i % 3 = 0 THEN '"k:' || crm_token('v' || i) || '"' ELSE to_json('value ' || (i % 5000)) END AS old,
        CASE WHEN i % 3 = 0 THEN '"k:' || crm_token('w' || i) || '"' ELSE to_json('Value ' || (i % 5000)) END AS new,
        CAST(NULL AS VARCHAR) AS reason
        FROM range({rows * 5}) t(i)""")
    template: dict[str, tuple[Path, str]] = {}

    class NightlyWriter(AuditWriter):
        def _copy(self, con_: duckdb.DuckDBPyConnection, name: str, query: str) -> int:
            from crmtool.audit.format import set_path

            target = set_path(self.log, self.run_id, name)
            if name not in template:
                rows_written = super()._copy(con_, name, query)
                template[name] = (target, self._last_sha)
                return rows_written
            first, sha = template[name]
            os.link(first, target)
            self._last_sha = sha
            return int(con_.execute(f"SELECT count(*) FROM read_parquet('{first}')").fetchall()[0][0])

    start = time.perf_counter()
    for night in range(runs):
        day = date(2026, 1, 1) + timedelta(days=night)
        run_id = f"{day:%Y%m%d}T020000Z-{night:06x}"
        writer = NightlyWriter(log, run_id, hasher, command="clean")
        writer.add({"type": "run", "command": "clean"})
        writer.add_set(con, "changes", "SELECT * FROM ch", order_by='record, "row", field, rule', parts=4)
        writer.seal({"counts": {"fixed_values": changes}})
    print(f"built {runs} runs in {time.perf_counter() - start:.0f} s: {log}", file=sys.stderr)


def timed(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) of the child, and entries printed."""
    import resource

    env = dict(os.environ, CRMTOOL_KEY=KEY)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "crmtool", "audit", "show", *args], env=env,
                          capture_output=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, proc.stdout.count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--changes", type=int, default=1_500_000)
    parser.add_argument("--work", type=Path, default=HERE / "data" / "audit_year")
    args = parser.parse_args()
    log = args.work / f"runs{args.runs}_changes{args.changes}.audit"
    if not (log / "HEAD").exists():
        build(log, args.runs, args.changes)
    night = sum(f.stat().st_size for f in sorted((log / "sets").glob("*.parquet"))[:4])
    print(f"log: {args.runs} runs, {args.changes} changes a run, {night / 2**20:.1f} MiB of change set a night "
          f"({args.runs * night / 2**30:.1f} GiB a year)")
    last_run = sorted(p.name.split(".")[0] for p in (log / "sets").glob("*.changes.0.parquet"))[-1]
    probes = {"--record C123456": ["--record", "C123456"], "--rule rule_19": ["--rule", "rule_19"],
              f"--run {last_run}": ["--run", last_run], "--record C123456 --rule rule_3": ["--record", "C123456",
                                                                                       "--rule", "rule_3"]}
    for name, extra in probes.items():
        walls, cpus, n = [], [], 0
        for _ in range(3):
            wall, cpu, n = timed([str(log), *extra])
            walls.append(wall)
            cpus.append(cpu)
        print(f"audit show {name}: median wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s "
              f"(walls {', '.join(f'{t:.2f}' for t in walls)}), {n} entries")
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import crmtool.cli, duckdb"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"(python start-up and imports alone: wall {time.perf_counter() - start:.2f} s, "
          f"CPU {after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime:.2f} s)")


if __name__ == "__main__":
    main()
