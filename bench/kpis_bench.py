"""Time `crmtool kpis` over a generated history of nightly pipeline runs (target: 365 runs < 1 s).

    python bench/kpis_bench.py [--nights 365] [--repeat 5]

Builds a workspace with one pipeline run a night for --nights nights, each with child runs for
clean, emails, dedupe and segment recording the metrics those steps record (about 70 metric
rows a night, 20 segments), generated in SQL. Then times the real command line
(`crmtool kpis --kpis examples/kpis.yaml --since 365d --format json`) in a subprocess, and the
library call alone in-process; prints medians. Not part of pytest.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def make_history(db: Path, nights: int) -> int:
    """A workspace with ``nights`` nightly pipeline runs and their metrics; returns the metric rows."""
    from crmtool.workspace import Workspace

    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=nights, minutes=10)
    with Workspace(db) as ws:
        con = ws.con
        con.execute(f"""CREATE TEMP TABLE nights AS SELECT i, ?::TIMESTAMP + i * INTERVAL 1 DAY AS t,
                        'run' || lpad(i::VARCHAR, 5, '0') AS pid FROM range({nights}) r(i)""", [start])
        con.execute("""INSERT INTO crm_runs (run_id, command, started_at, finished_at, tool_version, status,
                                             exit_code, parent_run_id)
            SELECT pid, 'run', t, t, 'bench', 'pass', 0, NULL FROM nights
            UNION ALL SELECT pid || '-' || s, s, t + INTERVAL 1 SECOND, t, 'bench', 'pass', 0, pid
            FROM nights, (VALUES ('clean'), ('emails'), ('dedupe'), ('segment')) v(s)""")
        con.execute("""INSERT INTO crm_metrics
            SELECT pid || '-clean', 'clean', name, '', v, t FROM nights,
                (VALUES ('rows_in', 1.0e6), ('rows_out', 0.98e6), ('rejected', 2.0e4), ('reject_rate', 0.02),
                        ('mailable', 5.0e5), ('mailable_share', 0.51), ('fixed_values', 3.0e5)) m(name, v)
            UNION ALL SELECT pid || '-clean', 'clean', 'rule_validity', 'rule_' || j, 0.99 - (i % 7) * 0.001, t
                FROM nights, range(20) r(j)
            UNION ALL SELECT pid || '-emails', 'emails', 'email_status_rows', s, 1000 + (i * 37) % 100, t
                FROM nights, (VALUES ('valid'), ('risky'), ('unknown'), ('invalid')) v(s)
            UNION ALL SELECT pid || '-emails', 'emails', 'rows_in', '', 1.0e6, t FROM nights
            UNION ALL SELECT pid || '-dedupe', 'dedupe', 'duplicate_rate', '', 0.01 + (i % 5) * 0.0005, t
                FROM nights
            UNION ALL SELECT pid || '-segment', 'segment', 'segment_size', 'seg_' || j, 1000 + j * 10 + i % 9, t
                FROM nights, range(20) r(j)
            UNION ALL SELECT pid || '-segment', 'segment', 'customers', '', 9.8e5, t FROM nights""")
        rows = int(con.execute("SELECT count(*) FROM crm_metrics").fetchall()[0][0])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kpis = ROOT / "examples" / "kpis.yaml"
    with tempfile.TemporaryDirectory(prefix="crmtool-kpis-bench-") as tmp:
        db = Path(tmp) / "history.duckdb"
        rows = make_history(db, args.nights)
        cmd = [sys.executable, "-m", "crmtool", "kpis", "--kpis", str(kpis), "-w", str(db), "--since",
               f"{args.nights}d", "--format", "json"]
        cli, cpu = [], []
        for _ in range(args.repeat):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            cli.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
            if done.returncode not in (0, 1):
                sys.exit(done.stderr)
        from crmtool.kpis import evaluate_kpis, load_kpis
        from crmtool.workspace import Workspace

        lib = []
        spec = load_kpis(kpis)
        with Workspace(db) as ws:
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                report = evaluate_kpis(ws, spec, since_days=args.nights)
                lib.append(time.perf_counter() - t0)
        points = sum(len(k.series) for k in report.kpis)
    print(f"nights {args.nights}, metric rows {rows}, KPIs {len(spec.kpis)}, series points {points}")
    print(f"crmtool kpis (subprocess, incl. start-up) median {statistics.median(cli):.3f} s "
          f"(min {min(cli):.3f}, max {max(cli):.3f}, n={args.repeat}); CPU median {statistics.median(cpu):.3f} s")
    print(f"evaluate_kpis (library) median {statistics.median(lib):.3f} s (n={args.repeat})")


if __name__ == "__main__":
    main()
