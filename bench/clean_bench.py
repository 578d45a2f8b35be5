"""Time `crmtool clean` on a synthetic messy export and report wall time and peak memory.

    python bench/clean_bench.py [--rows 1000000] [--rules rules] [--memory-limit 1.5GB]
    python bench/clean_bench.py --rows 1000000 --rules rules/10-normalise.yaml --rules rules/20-checks.yaml \\
        --side old=/work/wt/audit-old:/work/venvs/audit/bin/python --side base=/work/wt/base4 --side new=. --repeat 3

Generates bench/data/customers_<rows>.csv (cp1252, ';') with bench/gen_customers.py if it is
missing, then runs the real command line in a subprocess and reads its peak RSS and CPU from the
kernel (``wait4`` of the child). Prints one line per figure; not part of pytest.

With ``--side NAME=TREE[:PYTHON]`` (repeatable) each round runs every side once, in turn, so load
changes hit all sides alike: TREE's ``src`` on ``PYTHONPATH``, TREE's own rule files (``--rules``
paths are taken relative to TREE), PYTHON (default: this one); then prints each figure's median per side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_clean(data: Path, rules: list[str], out: Path, *, python: str = sys.executable, src: Path | None = None,
              memory_limit: str | None = None) -> dict[str, Any]:
    """One `crmtool clean` in a child process: its figures (wall, CPU, peak RSS, phases, log bytes)."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [python, "-m", "crmtool", "clean", str(data), "--out", str(out), "--workspace", ":memory:",
           "--format", "json", "--quiet"]
    for r in rules:
        cmd += ["--rules", r]
    env = dict(os.environ, CRMTOOL_KEY=os.environ.get("CRMTOOL_KEY", "bench-key-0123456789abcdef"))
    if src is not None:
        env["PYTHONPATH"] = str(src)
    if memory_limit:
        env["CRMTOOL_MEMORY_LIMIT"] = memory_limit
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with open(out.parent / f".{out.name}.stdout", "w+") as fh_out, \
            open(out.parent / f".{out.name}.stderr", "w+") as fh_err:
        proc = subprocess.Popen(cmd, env=env, stdout=fh_out, stderr=fh_err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        fh_out.seek(0)
        fh_err.seek(0)
        stdout, stderr = fh_out.read(), fh_err.read()
    if proc.returncode not in (0, 1):
        print(stderr, file=sys.stderr)
        raise SystemExit(proc.returncode)
    manifest = json.loads(stdout)
    log = Path(manifest["audit"]["path"])
    size = log.stat().st_size if log.is_file() else sum(f.stat().st_size for f in log.rglob("*") if f.is_file())
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "user": usage.ru_utime, "system": usage.ru_stime,
            "peak_gib": usage.ru_maxrss / 1024 / 1024, "exit": proc.returncode, "load": load,
            "phases": manifest["timings_seconds"], "manifest": manifest, "log_bytes": size, "log": log}


def report(args: argparse.Namespace, data: Path, rules: list[str], r: dict[str, Any]) -> None:
    manifest, counts = r["manifest"], r["manifest"]["counts"]
    print(f"rows: {args.rows}  rules: {len(manifest['rules'])} ({', '.join(rules)})  cores: {os.cpu_count()}")
    print(f"wall: {r['wall']:.1f} s  peak RSS: {r['peak_gib']:.2f} GiB  exit: {r['exit']}  "
          f"CPU: user {r['user']:.1f} s, system {r['system']:.1f} s")
    print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()))
    print(f"kept {counts['rows_out']}, rejected {counts['rejected']}, values fixed {counts['fixed_values']}, "
          f"audit entries {manifest['audit']['entries']}")
    print(f"audit log bytes for this run: {r['log_bytes']} ({r['log_bytes'] / 2**20:.1f} MiB) at {r['log']}")
    slow = sorted(manifest["rules"], key=lambda x: -x["seconds"])[:5]
    print("slowest rules (s): " + ", ".join(f"{x['rule']} {x['seconds']:.1f}" for x in slow))


def compare(args: argparse.Namespace, data: Path, rules: list[str]) -> None:
    """Every side once per round, in turn; one line per run, then the medians."""
    sides = []
    for spec in args.side:
        name, _, rest = spec.partition("=")
        tree, _, python = rest.partition(":")
        sides.append((name, Path(tree).resolve(), python or sys.executable))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in sides}
    for round_ in range(args.repeat):
        for name, tree, python in sides:
            side_rules = [str(tree / r) if not Path(r).is_absolute() else r for r in rules]
            r = run_clean(data, side_rules, args.out.parent / f"{args.out.name}-{name}", python=python,
                          src=tree / "src", memory_limit=args.memory_limit)
            runs[name].append(r)
            print(f"round {round_ + 1} {name:6s} load {r['load']:5.2f}  wall {r['wall']:6.1f}  CPU {r['cpu']:6.1f}  "
                  f"audit {r['phases'].get('audit', 0):5.2f}  write {r['phases'].get('write', 0):5.2f}  "
                  f"rules {r['phases'].get('rules', 0):5.1f}  peak {r['peak_gib']:.2f} GiB  log {r['log_bytes']}",
                  flush=True)
    print("medians:")
    for name, rs in runs.items():
        def med(f: Any, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(f(r) for r in rs)
        print(f"  {name:6s} wall {med(lambda r: r['wall']):6.1f}  CPU {med(lambda r: r['cpu']):6.1f}  "
              f"audit {med(lambda r: r['phases'].get('audit', 0)):5.2f}  peak {med(lambda r: r['peak_gib']):.2f} GiB  "
              f"log bytes {med(lambda r: r['log_bytes']):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rules", action="append", default=None, help="rule file or folder (repeatable)")
    parser.add_argument("--memory-limit", default=None, help="CRMTOOL_MEMORY_LIMIT for the run, e.g. 1.5GB")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "clean")
    parser.add_argument("--side", action="append", default=[], help="NAME=TREE[:PYTHON], compared in turn")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the sides (with --side)")
    args = parser.parse_args()
    data = HERE / "data" / f"customers_{args.rows}.csv"
    if not data.exists():
        print(f"generating {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(args.rows), str(data),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.side:
        compare(args, data, args.rules or ["rules"])
        return
    rules = args.rules or [str(HERE.parent / "rules")]
    report(args, data, rules, run_clean(data, rules, args.out, memory_limit=args.memory_limit))


if __name__ == "__main__":
    main()
