"""Time `crmtool segment` on DuckDB and on Spark (local mode) on the same generated inputs.

    python bench/spark_segment_bench.py [--dir /work/bench-data/sparkseg] [--customers 100000]
                                        [--orders 1000000] [--events 1000000] [--rounds 1]
                                        [--spark-master local[2]]

Inputs (Parquet: customers, orders, events) come from bench/gen_orders_events.py and the 20
segments of bench/segments_bench.py. The real command line runs in subprocesses, engines
alternated round by round; each run's process tree (Spark's JVM is a grandchild) is sampled from
/proc as in bench/spark_bench.py: wall, CPU (user+system of the tree) and peak RSS. Checks that
both engines wrote the same memberships and send lists, byte for byte. Prints medians, the
Spark/DuckDB ratios and the load average. Not part of pytest; needs crmtool[spark] and Java 17.
"""

from __future__ import annotations

import argparse
import filecmp
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from segments_bench import SEGMENTS_YAML  # noqa: E402
from spark_bench import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/work/bench-data/sparkseg"))
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--spark-master", default="local[2]")
    args = parser.parse_args()
    inputs = args.dir / f"{args.customers}-{args.orders}-{args.events}"
    if not (inputs / "events.parquet").exists():
        subprocess.run([sys.executable, str(HERE / "gen_orders_events.py"), "bench", str(inputs), "--customers",
                        str(args.customers), "--orders", str(args.orders), "--events", str(args.events)], check=True)
    spec = args.dir / "bench-segments.yaml"
    spec.write_text(SEGMENTS_YAML, encoding="utf-8")
    runs: dict[str, list[dict[str, object]]] = {"duckdb": [], "spark": []}
    for _ in range(args.rounds):
        for engine in ("duckdb", "spark"):
            out = args.dir / f"out-{engine}"
            cmd = [sys.executable, "-m", "crmtool", "segment", str(inputs / "customers.parquet"), "--segments",
                   str(spec), "--orders", str(inputs / "orders.parquet"), "--events", str(inputs / "events.parquet"),
                   "--out", str(out), "--as-of", "2026-11-01", "-w", ":memory:", "-f", "json", "--quiet",
                   "--engine", engine]
            if engine == "spark":
                cmd += ["--spark-master", args.spark_master]
            result = measure(cmd)
            assert result["exit"] == 0, f"{engine} exited {result['exit']}"
            runs[engine].append(result)
            print(f"{engine}: wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, "
                  f"peak {result['peak_mb']:.0f} MB", flush=True)
    duck, spark = args.dir / "out-duckdb", args.dir / "out-spark"
    files = sorted(str(p.relative_to(duck)) for p in duck.rglob("*.csv"))
    same = all(filecmp.cmp(duck / f, spark / f, shallow=False) for f in files)
    print(f"{len(files)} CSV files, byte-identical across engines: {same}")
    med = {e: {k: statistics.median(float(r[k]) for r in rs) for k in ("wall", "cpu", "peak_mb")}  # type: ignore[arg-type]
           for e, rs in runs.items()}
    for e, m in med.items():
        print(f"{e:7} median of {args.rounds}: wall {m['wall']:.1f} s  CPU {m['cpu']:.1f} s  "
              f"peak {m['peak_mb']:.0f} MB")
    print("Spark/DuckDB: " + ", ".join(f"{k} x{med['spark'][k] / med['duckdb'][k]:.1f}"
                                       for k in ("wall", "cpu", "peak_mb")))
    with open("/proc/loadavg", encoding="ascii") as fh:
        print("load average:", " ".join(fh.read().split()[:3]))


if __name__ == "__main__":
    main()
