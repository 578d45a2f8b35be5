"""Time `crmtool diff` on two exports of N rows and 15 columns a day apart (CSV and Parquet).

    python bench/diff_bench.py [--rows 1000000] [--repeat 3] [--threads N] [--out]

Generates bench/data/diff_old_<rows>.csv and diff_new_<rows>.csv with bench/gen_diff_exports.py
when missing (and Parquet copies of them), then runs :func:`crmtool.changes.diff_exports` in a
fresh in-memory workspace ``--repeat`` times per format, in this one process and hour, and
prints the median wall time with the median of each stage (read, keys, compare, write). As a
floor for the CSV figures it also times DuckDB's own ``read_csv`` of both files into tables.
Not part of pytest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _inputs(rows: int) -> dict[str, tuple[Path, Path]]:
    import duckdb
    from gen_diff_exports import generate

    data = HERE / "data"
    old, new = data / f"diff_old_{rows}.csv", data / f"diff_new_{rows}.csv"
    if not (old.exists() and new.exists()):
        print(f"generating {old.name} and {new.name} ...", flush=True)
        generate(rows, old, new)
    pq = {p: p.with_suffix(".parquet") for p in (old, new)}
    con = duckdb.connect()
    for src, dst in pq.items():
        if not dst.exists():
            con.execute(f"COPY (SELECT * FROM read_csv('{src}', all_varchar=true)) TO '{dst}' (FORMAT parquet)")
    return {"csv": (old, new), "parquet": (pq[old], pq[new])}


def _floor(old: Path, new: Path, threads: int | None) -> float:
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    start = time.perf_counter()
    for i, path in enumerate((old, new)):
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{path}', all_varchar=true)")
    return time.perf_counter() - start


def _cpu() -> float:
    """User + system CPU seconds of this process (all DuckDB threads): a figure the load of other
    processes on the machine changes much less than wall time."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--out", action="store_true", help="also write the detail files (added/removed/changes)")
    args = parser.parse_args()

    import os
    import tempfile

    from crmtool.changes import diff_exports
    from crmtool.workspace import Workspace

    os.environ.setdefault("CRMTOOL_KEY", "bench-key-0123456789abcdef")
    inputs = _inputs(args.rows)
    floors = [_floor(*inputs["csv"], args.threads) for _ in range(args.repeat)]
    print(f"load average {os.getloadavg()[0]:.1f}; duckdb read_csv of both files (floor): "
          f"median {statistics.median(floors):.2f} s "
          f"({', '.join(f'{f:.2f}' for f in floors)})")
    for fmt, (old, new) in inputs.items():
        totals: list[float] = []
        cpus: list[float] = []
        stages: dict[str, list[float]] = {}
        counts = {}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp, Workspace(":memory:", threads=args.threads) as ws:
                start, cpu = time.perf_counter(), _cpu()
                result = diff_exports(ws, old, new, key="customer_id", out_dir=Path(tmp) if args.out else None)
                totals.append(time.perf_counter() - start)
                cpus.append(_cpu() - cpu)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            counts = result.counts
        detail = ", ".join(f"{s} {statistics.median(v):.2f}" for s, v in stages.items())
        print(f"diff {fmt} {args.rows} rows x 15 columns: median {statistics.median(totals):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in totals)}), CPU (user+system) median {statistics.median(cpus):.2f} s; "
              f"stages: {detail}; load average {os.getloadavg()[0]:.1f}; {counts}", flush=True)


if __name__ == "__main__":
    main()
