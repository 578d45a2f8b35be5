"""Time `crmtool clean` on a synthetic messy export and report wall time and peak memory.

    python bench/clean_bench.py [--rows 1000000] [--rules rules] [--memory-limit 1.5GB]

Generates bench/data/customers_<rows>.csv (cp1252, ';') with bench/gen_customers.py if it is
missing, then runs the real command line in a subprocess and reads its peak RSS from the
kernel (resource.getrusage of the child). Prints one line per figure; not part of pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rules", action="append", default=None, help="rule file or folder (repeatable)")
    parser.add_argument("--memory-limit", default=None, help="CRMTOOL_MEMORY_LIMIT for the run, e.g. 1.5GB")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "clean")
    args = parser.parse_args()
    data = HERE / "data" / f"customers_{args.rows}.csv"
    if not data.exists():
        print(f"generating {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(args.rows), str(data),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    if args.out.exists():
        shutil.rmtree(args.out)
    rules = args.rules or [str(HERE.parent / "rules")]
    cmd = [sys.executable, "-m", "crmtool", "clean", str(data), "--out", str(args.out), "--workspace", ":memory:",
           "--format", "json", "--quiet"]
    for r in rules:
        cmd += ["--rules", r]
    env = dict(os.environ, CRMTOOL_KEY=os.environ.get("CRMTOOL_KEY", "bench-key-0123456789abcdef"))
    if args.memory_limit:
        env["CRMTOOL_MEMORY_LIMIT"] = args.memory_limit
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(proc.returncode)
    manifest = json.loads(proc.stdout)
    counts = manifest["counts"]
    print(f"rows: {args.rows}  rules: {len(manifest['rules'])} ({', '.join(rules)})  cores: {os.cpu_count()}")
    print(f"wall: {wall:.1f} s  peak RSS: {peak_kib / 1024 / 1024:.2f} GiB  exit: {proc.returncode}  "
          f"CPU: user {usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s")
    print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in manifest["timings_seconds"].items()))
    print(f"kept {counts['rows_out']}, rejected {counts['rejected']}, values fixed {counts['fixed_values']}, "
          f"audit entries {manifest['audit']['entries']}")
    log = Path(manifest["audit"]["path"])
    size = log.stat().st_size if log.is_file() else sum(f.stat().st_size for f in log.rglob("*") if f.is_file())
    print(f"audit log bytes for this run: {size} ({size / 2**20:.1f} MiB) at {log}")
    slow = sorted(manifest["rules"], key=lambda r: -r["seconds"])[:5]
    print("slowest rules (s): " + ", ".join(f"{r['rule']} {r['seconds']:.1f}" for r in slow))


if __name__ == "__main__":
    main()
