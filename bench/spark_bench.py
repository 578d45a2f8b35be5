"""Time `crmtool validate` on DuckDB and on Spark (local mode) on the same synthetic export.

    python bench/spark_bench.py [--rows 1000000] [--rounds 3] [--rules rules/20-checks.yaml]
                                [--spark-master local[2]]

Generates bench/data/customers_<rows>.parquet (bench/gen_customers.py, then DuckDB to Parquet)
if it is missing, then runs the real command line in subprocesses, alternating the engines
round by round so machine load hits both alike. Each run's process tree (Spark's JVM is a
grandchild) is sampled from /proc every 0.2 s: wall seconds, CPU seconds (user+system of every
process in the tree) and peak resident memory (the sum over the tree). Checks that both engines
report the same rule outcomes and exit code. Prints medians and the Spark/DuckDB ratios, and
the load average. Not part of pytest; needs `pip install -e '.[spark]'` and Java 17.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> list[int]:
    """``root`` and every process below it, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def _sample(pid: int) -> tuple[float, int]:
    """(CPU seconds so far, resident bytes) of one process; zeros when gone. Children are counted
    as processes of the tree (a child that lives less than one sampling interval is missed)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / TICK, int(fields[21]) * PAGE


def measure(cmd: list[str]) -> dict[str, object]:
    """Run ``cmd``; wall, CPU and peak RSS of its process tree, its exit code and JSON result."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        cpu: dict[int, float] = {}
        peak = 0
        while proc.poll() is None:
            rss = 0
            for pid in _tree(proc.pid):
                seconds, resident = _sample(pid)
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
                rss += resident
            peak = max(peak, rss)
            time.sleep(0.2)
        wall = time.perf_counter() - start
        out.seek(0)
        payload = json.loads(out.read() or b"{}")
    return {"wall": wall, "cpu": sum(cpu.values()), "peak_mb": peak / 2**20, "exit": proc.returncode,
            "rules": [{k: v for k, v in r.items() if k != "seconds"} for r in payload.get("rules", [])]}


def ensure_input(rows: int) -> Path:
    target = HERE / "data" / f"customers_{rows}.parquet"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    csv = target.with_suffix(".csv")
    subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(rows), str(csv)], check=True)
    import duckdb

    duckdb.execute(f"COPY (SELECT * FROM read_csv('{csv}', all_varchar=true)) TO '{target}' (FORMAT parquet)")
    csv.unlink()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rules", default=str(ROOT / "rules" / "20-checks.yaml"))
    parser.add_argument("--spark-master", default="local[2]")
    args = parser.parse_args()
    data = ensure_input(args.rows)
    base = [sys.executable, "-m", "crmtool", "validate", str(data), "--rules", args.rules, "-f", "json"]
    engines = {"duckdb": base, "spark": [*base, "--engine", "spark", "--spark-master", args.spark_master]}
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in engines}
    print(f"rows={args.rows} rules={args.rules} cpus={os.cpu_count()} load_before={os.getloadavg()}")
    for i in range(args.rounds):
        order = list(engines) if i % 2 == 0 else list(reversed(engines))
        for name in order:
            result = measure(engines[name])
            runs[name].append(result)
            print(f"round {i + 1} {name}: wall {result['wall']:.1f}s cpu {result['cpu']:.1f}s "
                  f"peak {result['peak_mb']:.0f} MB exit {result['exit']}", flush=True)
    same = all(r["rules"] == runs["duckdb"][0]["rules"] and r["exit"] == runs["duckdb"][0]["exit"]
               for rs in runs.values() for r in rs)
    med = {name: {k: statistics.median(float(str(r[k])) for r in rs) for k in ("wall", "cpu", "peak_mb")}
           for name, rs in runs.items()}
    for name, m in med.items():
        print(f"median {name}: wall {m['wall']:.1f}s cpu {m['cpu']:.1f}s peak {m['peak_mb']:.0f} MB")
    ratio = {k: med["spark"][k] / med["duckdb"][k] for k in ("wall", "cpu", "peak_mb")}
    print(f"spark/duckdb: wall x{ratio['wall']:.2f} cpu x{ratio['cpu']:.2f} peak x{ratio['peak_mb']:.2f}")
    print(f"same outcomes and exit code on both engines: {same}; load_after={os.getloadavg()}")


if __name__ == "__main__":
    main()
