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

With ``--change-set N`` it times clean's audit change set alone, in CPU seconds, which stay
readable on a loaded machine where walls do not: the change and violation tables of one real
run are saved once (bench/results/change-set-<rows>/, Parquet) by a ``clean`` with a hook, then each
side's ``write_change_set`` runs N times, sides in turn, on those tables in a ``:memory:`` workspace
session (clean's settings) in a child process; it prints CPU-s and wall of each step (the counts,
each part, ``between``: the job's time outside its statements) and the medians per side.
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


def _sides(specs: list[str]) -> list[tuple[str, Path, str]]:
    """``NAME=TREE[:PYTHON]`` as (name, tree, python); the python defaults to this one."""
    sides = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        tree, _, python = rest.partition(":")
        sides.append((name, Path(tree).resolve(), python or sys.executable))
    return sides


def compare(args: argparse.Namespace, data: Path, rules: list[str]) -> None:
    """Every side once per round, in turn; one line per run, then the medians."""
    sides = _sides(args.side)
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


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process (DuckDB's too)
    return usage.ru_utime + usage.ru_stime


def dump_change_tables(dest: str, argv: list[str]) -> None:
    """Child process: run `crmtool clean argv` with clean_audit.write_change_set wrapped so the
    tables it reads are saved to ``dest`` (Parquet, through Arrow: the session may not write files)."""
    import pickle

    import pyarrow.parquet as pq

    import crmtool.clean_audit as ca
    from crmtool.cli import main as cli_main
    from crmtool.engine import CHANGES, VIOLATIONS

    original = ca.write_change_set

    def saving(con: Any, writer: Any, loaded: Any, ruleset: Any, records: str) -> None:
        for name, table in (("changes", CHANGES), ("violations", VIOLATIONS), ("records", records)):
            pq.write_table(con.sql(f"SELECT * FROM {table}").to_arrow_table(), f"{dest}/{name}.parquet")
        meta = ([r.name for r in ruleset.rules], [(r.line, r.reason) for r in loaded.parse_rejects])
        Path(dest, "meta.pickle").write_bytes(pickle.dumps(meta))
        original(con, writer, loaded, ruleset, records)

    ca.write_change_set = saving  # type: ignore[assignment]
    sys.argv = ["crmtool", "clean", *argv]
    cli_main()


def time_change_set(dest: str, log_dir: str) -> None:
    """Child process: one write_change_set of the tree on PYTHONPATH over the saved tables; prints
    one JSON line of CPU-s and wall per step (``counts``: what runs before the first part)."""
    import pickle
    from types import SimpleNamespace

    import pyarrow.parquet as pq

    import crmtool.clean_audit as ca
    from crmtool.audit import AuditWriter
    from crmtool.engine import CHANGES, VIOLATIONS
    from crmtool.workspace import Workspace

    names, rejects = pickle.loads(Path(dest, "meta.pickle").read_bytes())
    ruleset = SimpleNamespace(rules=[SimpleNamespace(name=n) for n in names])
    loaded = SimpleNamespace(parse_rejects=[SimpleNamespace(line=line, reason=r) for line, r in rejects])
    steps: list[dict[str, Any]] = []
    mark = [_cpu(), time.perf_counter()]
    original = AuditWriter._copy

    def timed_copy(self: Any, con: Any, name: str, query: str) -> int:
        cpu, wall = _cpu(), time.perf_counter()
        if not steps:
            steps.append({"step": "counts", "cpu": cpu - mark[0], "wall": wall - mark[1]})
        rows = original(self, con, name, query)
        steps.append({"step": name, "rows": rows, "cpu": _cpu() - cpu, "wall": time.perf_counter() - wall})
        return rows

    AuditWriter._copy = timed_copy  # type: ignore[method-assign]
    with Workspace(":memory:") as ws:
        ws.con.execute("ATTACH IF NOT EXISTS ':memory:' AS crm_scratch")
        for name, table in (("changes", CHANGES), ("violations", VIOLATIONS), ("records", "crm_scratch.records")):
            ws.con.register("__saved", pq.read_table(f"{dest}/{name}.parquet"))
            ws.con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM __saved")
            ws.con.unregister("__saved")
        shutil.rmtree(log_dir, ignore_errors=True)
        writer = AuditWriter(Path(log_dir), "bench", ws.hasher, command="clean")
        writer.add({"type": "run"})
        cur = ws.con.cursor()
        mark[:] = [_cpu(), time.perf_counter()]
        ca.write_change_set(cur, writer, loaded, ruleset, "crm_scratch.records")  # type: ignore[arg-type]
        total = {"step": "total", "cpu": _cpu() - mark[0], "wall": time.perf_counter() - mark[1]}
        # what the job spends outside its statements: between the parts and after the last (the
        # writer's own Python, and waiting for the parts' sync, hash and index reads)
        steps.append({"step": "between", "cpu": total["cpu"] - sum(s["cpu"] for s in steps),
                      "wall": total["wall"] - sum(s["wall"] for s in steps)})
        writer.seal({})
        cur.close()
    size = sum(f.stat().st_size for f in Path(log_dir).rglob("*") if f.is_file())
    print(json.dumps({"steps": [*steps, total], "log_bytes": size, "load": os.getloadavg()[0]}))


def compare_change_set(args: argparse.Namespace, data: Path, rules: list[str]) -> None:
    """``--change-set N``: the change set alone, every side N times in turn (see the module's doc)."""
    dest = args.out.parent / f"change-set-{args.rows}"
    env = dict(os.environ, CRMTOOL_KEY=os.environ.get("CRMTOOL_KEY", "bench-key-0123456789abcdef"))
    if not (dest / "meta.pickle").exists():
        dest.mkdir(parents=True, exist_ok=True)
        print(f"saving the change tables of one run to {dest} ...", file=sys.stderr)
        argv = [str(data), "--out", str(dest / "out"), "--workspace", ":memory:", "--quiet"]
        for r in rules:
            argv += ["--rules", str(Path(r).resolve())]
        code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import clean_bench; " \
               f"clean_bench.dump_change_tables({str(dest)!r}, {argv!r})"
        subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    sides = _sides(args.side or [f"this={HERE.parent}"])
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in sides}
    for round_ in range(args.change_set):
        for name, tree, python in sides:
            code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import clean_bench; " \
                   f"clean_bench.time_change_set({str(dest)!r}, {str(dest / ('log-' + name))!r})"
            out = subprocess.run([python, "-c", code], env=dict(env, PYTHONPATH=str(tree / "src")), check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs[name].append(r)
            total = r["steps"][-1]
            steps = "  ".join(f"{s['step']} {s['cpu']:.2f}" for s in r["steps"][:-1])
            print(f"round {round_ + 1} {name:6s} load {r['load']:5.2f}  CPU {total['cpu']:6.2f}  "
                  f"wall {total['wall']:6.2f}  {steps}  log {r['log_bytes']}", flush=True)
    print("medians (CPU-s / wall s):")
    for name, rs in runs.items():
        steps = [s["step"] for s in rs[0]["steps"]]
        cells = []
        for step in steps:
            cpu = statistics.median(next(s["cpu"] for s in r["steps"] if s["step"] == step) for r in rs)
            wall = statistics.median(next(s["wall"] for s in r["steps"] if s["step"] == step) for r in rs)
            cells.append(f"{step} {cpu:.2f}/{wall:.2f}")
        print(f"  {name:6s} " + "  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rules", action="append", default=None, help="rule file or folder (repeatable)")
    parser.add_argument("--memory-limit", default=None, help="CRMTOOL_MEMORY_LIMIT for the run, e.g. 1.5GB")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "clean")
    parser.add_argument("--side", action="append", default=[], help="NAME=TREE[:PYTHON], compared in turn")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the sides (with --side)")
    parser.add_argument("--change-set", type=int, default=0, metavar="N",
                        help="time the audit change set alone, N rounds of the sides (CPU-s per step)")
    args = parser.parse_args()
    data = HERE / "data" / f"customers_{args.rows}.csv"
    if not data.exists():
        print(f"generating {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(args.rows), str(data),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.change_set:
        compare_change_set(args, data, args.rules or ["rules"])
        return
    if args.side:
        compare(args, data, args.rules or ["rules"])
        return
    rules = args.rules or [str(HERE.parent / "rules")]
    report(args, data, rules, run_clean(data, rules, args.out, memory_limit=args.memory_limit))


if __name__ == "__main__":
    main()
