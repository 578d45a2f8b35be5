"""Time ``crmtool audit show --record | --rule | --run`` over a year of nightly runs.

    python bench/audit_show_bench.py [--runs 365] [--changes 1500000] [--work bench/data/audit_year]
                                     [--src DIR] [--repeat 3] [--only record,rule,run,limit]

``--src`` runs another checkout's ``src/`` (e.g. main's, to compare: its log is built by its
own writer, so give it its own ``--work``).

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
    template: dict[str, Path] = {}

    class NightlyWriter(AuditWriter):
        def _copy(self, con_: duckdb.DuckDBPyConnection, name: str, query: str) -> int:
            from crmtool.audit.format import set_path

            target = set_path(self.log, self.run_id, name)
            if name not in template:
                rows_written = super()._copy(con_, name, query)
                template[name] = target
                return rows_written
            first = template[name]
            os.link(first, target)
            return int(con_.execute(f"SELECT count(*) FROM read_parquet('{first}')").fetchall()[0][0])

    # the writer syncs and hashes every part it names (since audit5, on a helper thread); a later
    # night's part is a hard link of the first night's, so its SHA-256 is read once per file
    import crmtool.audit.writer as writer_module

    real_sync_and_hash = writer_module._sync_and_hash
    hashed: dict[tuple[int, int], str] = {}

    def sync_and_hash_once(path: Path) -> str:
        st = path.stat()
        if (st.st_dev, st.st_ino) not in hashed:
            hashed[(st.st_dev, st.st_ino)] = real_sync_and_hash(path)
        return hashed[(st.st_dev, st.st_ino)]

    writer_module._sync_and_hash = sync_and_hash_once  # type: ignore[assignment]

    import inspect

    from crmtool import clean_audit

    indexed = "rule_counts" in inspect.signature(AuditWriter.add_set).parameters
    parts = getattr(clean_audit, "AUDIT_PARTS", 4)  # as clean writes it in the measured version
    counts = dict(con.execute("SELECT rule, count(*) FROM ch GROUP BY ALL").fetchall())
    start = time.perf_counter()
    for night in range(runs):
        day = date(2026, 1, 1) + timedelta(days=night)
        run_id = f"{day:%Y%m%d}T020000Z-{night:06x}"
        writer = NightlyWriter(log, run_id, hasher, command="clean")
        writer.add({"type": "run", "command": "clean"})
        if indexed:  # this version's index by rule (rare rules in a part of their own)
            writer.add_set(con, "changes", "SELECT * FROM ch", order_by='record, "row", field, rule',
                           parts=parts, rule_counts=counts)
        else:
            writer.add_set(con, "changes", "SELECT * FROM ch", order_by='record, "row", field, rule',
                           parts=parts)
        writer.seal({"counts": {"fixed_values": changes}})
    print(f"built {runs} runs in {time.perf_counter() - start:.0f} s: {log}", file=sys.stderr)


def timed(args: list[str], src: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) of the child, and entries printed."""
    import resource

    env = dict(os.environ, CRMTOOL_KEY=KEY)
    if src is not None:
        env["PYTHONPATH"] = str(src)
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
    parser.add_argument("--src", type=Path, help="src/ folder of the crmtool to measure (default: installed)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="record,rule,run,limit,record-rule")
    args = parser.parse_args()
    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))
        import crmtool

        print(f"crmtool from {Path(crmtool.__file__).parent}", file=sys.stderr)
    log = args.work / f"runs{args.runs}_changes{args.changes}.audit"
    if not (log / "HEAD").exists():
        build(log, args.runs, args.changes)
    first_night = sorted(p.name.split(".")[0] for p in (log / "sets").glob("*.changes.0.parquet"))[0]
    night = sum(f.stat().st_size for f in (log / "sets").glob(f"{first_night}.*.parquet"))
    print(f"log: {args.runs} runs, {args.changes} changes a run, {night / 2**20:.1f} MiB of change set a night "
          f"({args.runs * night / 2**30:.1f} GiB a year)")
    last_run = sorted(p.name.split(".")[0] for p in (log / "sets").glob("*.changes.0.parquet"))[-1]
    probes = {"record": ["--record", "C123456"], "rule": ["--rule", "rule_19"], "run": ["--run", last_run],
              "limit": ["--run", last_run, "--limit", "1000"],
              "record-rule": ["--record", "C123456", "--rule", "rule_3"]}
    wanted = args.only.split(",")
    for key, extra in probes.items():
        if key not in wanted:
            continue
        name = " ".join(extra)
        walls, cpus, n = [], [], 0
        for _ in range(args.repeat):
            try:
                wall, cpu, n = timed([str(log), *extra], args.src)
            except subprocess.CalledProcessError as exc:
                print(f"audit show {name}: failed ({exc.stderr.decode().strip().splitlines()[-1]})")
                break
            walls.append(wall)
            cpus.append(cpu)
        if not walls:
            continue
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
