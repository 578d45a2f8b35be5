"""Time `crmtool diff` on two exports of N rows and 15 columns a day apart (CSV and Parquet).

    python bench/diff_bench.py [--rows 1000000] [--repeat 3] [--formats csv,parquet] [--threads N]
                               [--out] [--baseline-src PATH/src] [--floor]

Generates bench/data/diff_old_<rows>.csv and diff_new_<rows>.csv with bench/gen_diff_exports.py
when missing (and Parquet copies of them). Each measurement is one subprocess that imports
crmtool from a source tree (this checkout's ``src``, or ``--baseline-src`` for the code to
compare with, e.g. a worktree of main) and runs :func:`crmtool.changes.diff_exports` in a fresh
in-memory workspace. With ``--baseline-src`` the two trees alternate within each repeat, so both
see the same hour of machine load, and their counts must agree.

Per tree and format it prints the median wall time and CPU seconds (user + system, all DuckDB
threads) of the diff itself, the median CPU of the whole subprocess (start-up included; from
``getrusage(RUSAGE_CHILDREN)``), the median of each stage, the load average, and the new/old
ratios. With ``--out`` the detail files are written too, and with ``--baseline-src`` the two
trees' files of the first repeat must be byte-identical. ``--floor`` also times DuckDB's own
``read_csv`` of both files into tables. Not part of pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _inputs(rows: int) -> dict[str, tuple[Path, Path]]:
    import duckdb

    sys.path.insert(0, str(HERE))
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


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _floor(old: Path, new: Path, threads: int | None) -> float:
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    start = time.perf_counter()
    for i, path in enumerate((old, new)):
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{path}', all_varchar=true)")
    return time.perf_counter() - start


def worker(src: str, old: str, new: str, threads: int | None, out: str | None) -> None:
    """One diff in this process with crmtool imported from ``src``; prints one JSON line."""
    sys.path.insert(0, src)
    os.environ.setdefault("CRMTOOL_KEY", "bench-key-0123456789abcdef")
    from crmtool.changes import diff_exports
    from crmtool.workspace import Workspace

    with Workspace(":memory:", threads=threads) as ws:
        start, cpu = time.perf_counter(), _cpu()
        result = diff_exports(ws, Path(old), Path(new), key="customer_id", out_dir=Path(out) if out else None)
        wall, used = time.perf_counter() - start, _cpu() - cpu
    print(json.dumps({"wall": wall, "cpu": used, "counts": result.counts, "timings": result.timings,
                      "by_field": result.changed_by_field}))


def _measure(src: Path, old: Path, new: Path, args: argparse.Namespace, out: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(src), str(old), str(new)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if out is not None:
        cmd += ["--out-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(src)}
    start, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{src}: the diff failed\n{done.stderr}")
    body = json.loads(done.stdout.strip().splitlines()[-1])
    body["process_wall"] = time.perf_counter() - start
    body["process_cpu"] = _cpu(resource.RUSAGE_CHILDREN) - cpu
    return body


def _list(runs: list[dict], field: str) -> str:
    return ", ".join(f"{b[field]:.2f}" for b in runs)


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--out", action="store_true",
                        help="also write the detail files (with --baseline-src: compared byte for byte)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="the src folder of the code to compare with (e.g. a worktree of main)")
    parser.add_argument("--floor", action="store_true", help="also time DuckDB's read_csv of both files")
    parser.add_argument("--worker", nargs=3, metavar=("SRC", "OLD", "NEW"), help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.threads, args.out_dir)
        return
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="diff-bench-"))

    inputs = _inputs(args.rows)
    trees = {"new": SRC}
    if args.baseline_src:
        trees = {"old": args.baseline_src.resolve(), "new": SRC}
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    print(f"rows {args.rows}, repeat {args.repeat}, threads {args.threads or 'default'}, out {args.out}; "
          f"trees {', '.join(f'{k}={v}' for k, v in trees.items())}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    if args.floor:
        floors = [_floor(*inputs["csv"], args.threads) for _ in range(args.repeat)]
        print(f"duckdb read_csv of both files (floor): median {_med(floors):.2f} s "
              f"({', '.join(f'{f:.2f}' for f in floors)})", flush=True)
    runs: dict[tuple[str, str], list[dict]] = {}
    loads: list[float] = []
    for i in range(args.repeat):
        for fmt in formats:
            order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
            for name, src in order:
                out = scratch / f"{fmt}-{name}-{i}" if args.out else None
                body = _measure(src, *inputs[fmt], args, out)
                loads.append(os.getloadavg()[0])
                runs.setdefault((name, fmt), []).append(body)
                print(f"  {i + 1}/{args.repeat} {fmt:7} {name}: {body['wall']:.2f} s wall, {body['cpu']:.2f} s CPU "
                      f"(process {body['process_cpu']:.2f} s CPU); load {loads[-1]:.1f}", flush=True)
    for fmt in formats:
        counts = {name: runs[(name, fmt)][0]["counts"] for name in trees}
        if len({json.dumps(c, sort_keys=True) for c in counts.values()}) > 1:
            raise SystemExit(f"{fmt}: the trees disagree: {counts}")
        for name in trees:
            r = runs[(name, fmt)]
            stages = {s: _med([b["timings"].get(s, 0.0) for b in r]) for s in r[0]["timings"]}
            print(f"diff {fmt} {args.rows} rows x 15 columns [{name}]: median {_med([b['wall'] for b in r]):.2f} s "
                  f"wall ({_list(r, 'wall')}), {_med([b['cpu'] for b in r]):.2f} s CPU ({_list(r, 'cpu')}); "
                  f"whole process "
                  f"{_med([b['process_cpu'] for b in r]):.2f} s CPU; stages "
                  f"{', '.join(f'{s} {v:.2f}' for s, v in stages.items())}; {counts[name]}", flush=True)
        if args.out and "old" in trees:
            same = _compare_outputs(scratch / f"{fmt}-old-0", scratch / f"{fmt}-new-0")
            print(f"diff {fmt}: output files of old and new {same}", flush=True)
        if "old" in trees:
            old, new = runs[("old", fmt)], runs[("new", fmt)]
            print(f"diff {fmt}: new/old wall {_med([b['wall'] for b in new]) / _med([b['wall'] for b in old]):.2f}, "
                  f"CPU {_med([b['cpu'] for b in new]) / _med([b['cpu'] for b in old]):.2f}", flush=True)
    print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}", flush=True)
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)


def _compare_outputs(a: Path, b: Path) -> str:
    """'identical' when every file is byte for byte the same (summary.json without run id and timings)."""
    import filecmp

    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        raise SystemExit(f"different files: {names} / {sorted(p.name for p in b.iterdir())}")
    for name in names:
        if name == "summary.json":
            left, right = (json.loads((d / name).read_text(encoding="utf-8")) for d in (a, b))
            for body in (left, right):
                for volatile in ("run_id", "seconds", "timings", "outputs"):
                    body.pop(volatile, None)
            if left != right:
                raise SystemExit(f"summary.json differs: {left} / {right}")
        elif not filecmp.cmp(a / name, b / name, shallow=False):
            raise SystemExit(f"{name} differs between {a} and {b}")
    return f"identical ({', '.join(names)})"


if __name__ == "__main__":
    main()
