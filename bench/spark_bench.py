"""Time `crmtool validate|clean|segment|dedupe` on DuckDB and on Spark (local mode) at several sizes.

    python bench/spark_bench.py [--command validate|clean|segment|dedupe] [--rows N ...] [--rounds 1]
                                [--spark-master local[2]] [--data-dir bench/data] [--nice 10]
                                [--driver-memory 3g] [--src TREE/src] [--engines duckdb,spark]
    python bench/spark_bench.py --command clean --rows 300000 --rows 1000000 --rows 3000000 \\
        --data-dir /work/bench-data/sparkbench --rounds 1 --driver-memory 3g
    python bench/spark_bench.py --command clean --data-dir /work/bench-data/sparkbench --report

Inputs, per size N, in ``--data-dir`` (made when missing):
- validate: ``customers_N.parquet`` (bench/gen_customers.py, then DuckDB to Parquet);
- clean: ``customers_N.csv``, the cp1252 ``;`` export of bench/gen_customers.py, cleaned with
  ``rules/10-normalise.yaml`` and ``rules/20-checks.yaml`` (``--rules`` overrides);
- segment: ``seg_N/{customers,orders,events}.parquet`` (bench/gen_orders_events.py bench, with
  ``--orders-per-customer`` and ``--events-per-customer``, 10 each by default: 1M customers, 10M
  orders), segmented with bench/segments_bench.py's segments file (the example shop's
  segments.yaml reads columns, total_spent and birth_date, that the generated customers lack),
  ``--as-of 2026-11-01``;
- dedupe: ``people_N.parquet`` (bench/gen_people.py --seed 7: known duplicates and look-alike
  households), deduplicated with the ``rules/`` folder (``--rules`` overrides), CSV outputs.

The real command line runs in subprocesses, the engines alternating round by round so machine
load hits both alike. Each run's process tree (Spark's JVM is a grandchild) is sampled from /proc
every 0.2 s: wall seconds, CPU seconds and peak resident memory (the sum over the tree). The CPU
figure is the larger of that sample and ``wait4``'s rusage of the child (which holds every
descendant the tree reaped, so nothing that lived less than a sample is lost). Checks that both
engines give the same outcome: validate the rule outcomes and exit code; clean the exit code,
counts and the clean and rejects files' SHA-256 (from the manifest); segment the exit code and
the memberships file (its bytes, and its sorted lines); dedupe the exit code and the clusters,
golden and review files' SHA-256. Every run is appended as a JSON line to
``--data-dir``/spark_bench.jsonl; at the end a table per size: medians, Spark/DuckDB ratios,
Spark's CPU per row relative to the smallest size, and the marginal CPU per extra row between
sizes (which leaves out the fixed start-up cost); ``--report`` prints that table again from the
saved runs (all sizes and rounds of ``--command`` run so far). Not part of pytest; needs
``pip install -e '.[spark]'`` and Java 17.

``--nice N`` runs both engines under ``nice -n N``; ``--driver-memory`` sets Spark's driver heap
through ``PYSPARK_SUBMIT_ARGS`` (local mode: the driver is the executor). ``TMPDIR`` and
``SPARK_LOCAL_DIRS`` of the children point into ``--data-dir`` (staging, shuffle and checkpoint
files). ``--src`` puts a tree's ``src`` first on the children's ``PYTHONPATH`` (e.g. a branch
that adds ``segment --engine spark``); without ``--engine`` in ``segment run --help`` the Spark
side of segment is skipped and the script says so.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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
ROOT = HERE.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
KEY = "bench-key-0123456789abcdef"
AS_OF = "2026-11-01"
FIGURES = ("wall", "cpu", "peak_mb")


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
    """(CPU seconds so far, resident bytes) of one process; zeros when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / TICK, int(fields[21]) * PAGE


def measure(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``: wall, CPU and peak RSS of its process tree, its exit code and stdout."""
    start = time.perf_counter()
    load = os.getloadavg()[0]
    with open(log.with_suffix(".stdout"), "w+b") as out, open(log.with_suffix(".stderr"), "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        cpu: dict[int, float] = {}
        peak = 0
        status = None
        while status is None:
            rss = 0
            for pid in _tree(proc.pid):
                seconds, resident = _sample(pid)
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
                rss += resident
            peak = max(peak, rss)
            time.sleep(0.2)
            pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = code
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read()
    rusage = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": max(sum(cpu.values()), rusage), "cpu_sampled": sum(cpu.values()),
            "cpu_rusage": rusage, "peak_mb": peak / 2**20, "exit": proc.returncode, "stdout": stdout,
            "load_start": load, "load_end": os.getloadavg()[0]}


def _digest(path: Path, *, sort: bool = False) -> str:
    if not sort:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    lines = path.read_bytes().splitlines()
    return hashlib.sha256(b"\n".join([lines[0], *sorted(lines[1:])])).hexdigest()


# --- inputs --------------------------------------------------------------------------------------

def _customers_csv(rows: int, data: Path) -> Path:
    target = data / f"customers_{rows}.csv"
    if not target.exists():
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(rows), str(target),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    return target


def _customers_parquet(rows: int, data: Path) -> Path:
    target = data / f"customers_{rows}.parquet"
    if target.exists():
        return target
    csv = _customers_csv(rows, data)
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with open(csv, encoding="cp1252") as fh:  # every column as text, as the export has it
        names = fh.readline().rstrip("\r\n").split(";")
    table = pacsv.read_csv(csv, read_options=pacsv.ReadOptions(encoding="cp1252"),
                           parse_options=pacsv.ParseOptions(delimiter=";"),
                           convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))
    pq.write_table(table, target)
    return target


def _people(rows: int, data: Path) -> Path:
    target = data / f"people_{rows}.parquet"
    if not target.exists():
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "gen_people.py"), "--rows", str(rows), "--out", str(target),
                        "--seed", "7"], check=True)
    return target


def _segment_inputs(rows: int, data: Path, orders: int, events: int) -> Path:
    folder = data / f"seg_{rows}_{orders}_{events}"
    if not (folder / "events.parquet").exists():
        subprocess.run([sys.executable, str(HERE / "gen_orders_events.py"), "bench", str(folder),
                        "--customers", str(rows), "--orders", str(rows * orders),
                        "--events", str(rows * events)], check=True)
    spec = data / "segments.yaml"
    if not spec.exists():
        sys.path.insert(0, str(HERE))
        from segments_bench import SEGMENTS_YAML

        spec.write_text(SEGMENTS_YAML, encoding="utf-8")
    return folder


# --- commands and their outcomes -----------------------------------------------------------------

def command_line(args: argparse.Namespace, rows: int, out: Path) -> list[str]:
    """The DuckDB command line for ``args.command`` at ``rows``; Spark appends its options."""
    data = Path(args.data_dir)
    head = [sys.executable, "-m", "crmtool"]
    if args.command == "validate":
        rules = args.rules or [str(ROOT / "rules" / "20-checks.yaml")]
        return [*head, "validate", str(_customers_parquet(rows, data)), *_rules(rules), "-f", "json"]
    if args.command == "clean":
        rules = args.rules or [str(ROOT / "rules" / "10-normalise.yaml"), str(ROOT / "rules" / "20-checks.yaml")]
        return [*head, "clean", str(_customers_csv(rows, data)), *_rules(rules), "--out", str(out),
                "--workspace", ":memory:", "--format", "json", "--quiet"]
    if args.command == "dedupe":
        rules = args.rules or [str(ROOT / "rules")]
        return [*head, "dedupe", str(_people(rows, data)), *_rules(rules), "--out", str(out), "--workspace",
                ":memory:", "--output-format", "csv", "--format", "json", "--quiet"]
    folder = _segment_inputs(rows, data, args.orders_per_customer, args.events_per_customer)
    return [*head, "segment", "run", str(folder / "customers.parquet"), "--segments", str(data / "segments.yaml"),
            "--orders", str(folder / "orders.parquet"), "--events", str(folder / "events.parquet"),
            "--out", str(out), "--as-of", AS_OF, "--workspace", ":memory:", "--format", "json", "--quiet"]


def _rules(paths: list[str]) -> list[str]:
    return [arg for p in paths for arg in ("--rules", p)]


def outcome(command: str, run: dict[str, Any], out: Path) -> dict[str, Any]:
    """What must be equal on both engines (and the exit code)."""
    payload = json.loads(run["stdout"] or b"{}")
    if command == "validate":
        return {"exit": run["exit"],
                "rules": [{k: v for k, v in r.items() if k != "seconds"} for r in payload.get("rules", [])]}
    if command == "clean":
        return {"exit": run["exit"], "counts": payload.get("counts"),
                "files": {Path(o["path"]).name: o["sha256"] for o in payload.get("outputs", [])}}
    if command == "dedupe":
        return {"exit": run["exit"], "files": {name: _digest(out / f"{name}.csv") if (out / f"{name}.csv").exists()
                                               else None for name in ("clusters", "golden", "review")}}
    members = out / "memberships.csv"
    return {"exit": run["exit"], "memberships_sha256": _digest(members) if members.exists() else None,
            "memberships_sorted_sha256": _digest(members, sort=True) if members.exists() else None}


def segment_has_engine(env: dict[str, str]) -> bool:
    """Whether the crmtool the children import has ``segment run --engine``."""
    done = subprocess.run([sys.executable, "-m", "crmtool", "segment", "run", "--help"], capture_output=True,
                          text=True, env={**env, "COLUMNS": "200"}, cwd=ROOT, check=False)
    return "--engine" in done.stdout


# --- the run and the table -----------------------------------------------------------------------

def child_env(args: argparse.Namespace) -> dict[str, str]:
    data = Path(args.data_dir).resolve()
    tmp = data / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CRMTOOL_KEY=os.environ.get("CRMTOOL_KEY", KEY), TMPDIR=str(tmp),
               SPARK_LOCAL_DIRS=str(tmp))
    if args.driver_memory:
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.driver_memory} pyspark-shell"
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(args.src).resolve()), env.get("PYTHONPATH")]))
    return env


def run_size(args: argparse.Namespace, rows: int, engines: list[str], env: dict[str, str],
             results: Path) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
    data = Path(args.data_dir)
    for i in range(args.rounds):
        for name in engines if i % 2 == 0 else list(reversed(engines)):
            out = data / f"out_{args.command}_{rows}_{name}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = command_line(args, rows, out)
            if name == "spark":
                cmd += ["--engine", "spark", "--spark-master", args.spark_master]
            if args.nice:
                cmd = ["nice", "-n", str(args.nice), *cmd]
            run = measure(cmd, env, data / f"log_{args.command}_{rows}_{name}_{i + 1}")
            run["outcome"] = outcome(args.command, run, out)
            del run["stdout"]
            run.update(command=args.command, rows=rows, engine=name, round=i + 1, argv=cmd)
            runs[name].append(run)
            with open(results, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(run, default=str) + "\n")
            print(f"{args.command} rows={rows} round {i + 1} {name}: wall {run['wall']:.1f}s cpu {run['cpu']:.1f}s "
                  f"(sampled {run['cpu_sampled']:.1f}, rusage {run['cpu_rusage']:.1f}) peak {run['peak_mb']:.0f} MB "
                  f"exit {run['exit']} load {run['load_start']:.1f}->{run['load_end']:.1f}", flush=True)
            if not args.keep_outputs:
                shutil.rmtree(out, ignore_errors=True)
    return runs


def table(command: str, by_size: dict[int, dict[str, list[dict[str, Any]]]]) -> None:
    """Medians per size and engine, the ratios, and how Spark's CPU per row grows."""
    med = {rows: {name: {k: statistics.median(float(r[k]) for r in rs) for k in FIGURES}
                  for name, rs in runs.items() if rs} for rows, runs in by_size.items()}
    sizes = sorted(med)
    print(f"\n{command}: medians (wall s, CPU s user+sys of the process tree, peak RSS MB of the tree)")
    print("| rows | engine | wall s | CPU s | peak MB | CPU us/row | same outcome |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for rows in sizes:
        runs = by_size[rows]
        first = next((rs[0]["outcome"] for rs in runs.values() if rs), None)
        same = all(r["outcome"] == first for rs in runs.values() for r in rs)
        for name, m in med[rows].items():
            print(f"| {rows:,} | {name} | {m['wall']:.1f} | {m['cpu']:.1f} | {m['peak_mb']:.0f} | "
                  f"{m['cpu'] / rows * 1e6:.1f} | {same if len(runs) > 1 else 'n/a'} |")
    if all("duckdb" in med[r] and "spark" in med[r] for r in sizes):
        print("\n| rows | Spark/DuckDB wall | CPU | peak |")
        print("| ---: | ---: | ---: | ---: |")
        for rows in sizes:
            s, d = med[rows]["spark"], med[rows]["duckdb"]
            print(f"| {rows:,} | x{s['wall'] / d['wall']:.2f} | x{s['cpu'] / d['cpu']:.2f} | "
                  f"x{s['peak_mb'] / d['peak_mb']:.2f} |")
    for name in ("spark", "duckdb"):
        have = [r for r in sizes if name in med[r]]
        if not have:
            continue
        base = med[have[0]][name]["cpu"] / have[0]
        print(f"\n{name}: CPU per row relative to {have[0]:,} rows: "
              + ", ".join(f"{r:,} x{med[r][name]['cpu'] / r / base:.2f}" for r in have))
        for a, b in itertools.pairwise(have):
            marginal = (med[b][name]["cpu"] - med[a][name]["cpu"]) / (b - a) * 1e6
            print(f"{name}: marginal CPU {a:,} -> {b:,} rows: {marginal:.1f} us per extra row")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--command", choices=["validate", "clean", "segment", "dedupe"], default="validate")
    parser.add_argument("--rows", type=int, action="append", help="repeatable; default 1000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rules", action="append", help="repeatable; default per command (see above)")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--data-dir", default=str(HERE / "data"))
    parser.add_argument("--nice", type=int, default=0, help="run both engines under nice -n N")
    parser.add_argument("--driver-memory", default=None, help="Spark driver heap, e.g. 3g")
    parser.add_argument("--src", default=None, help="a src folder first on the children's PYTHONPATH")
    parser.add_argument("--orders-per-customer", type=int, default=10)
    parser.add_argument("--events-per-customer", type=int, default=10)
    parser.add_argument("--keep-outputs", action="store_true")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: the table of --command's runs saved in --data-dir/spark_bench.jsonl")
    args = parser.parse_args()
    results = Path(args.data_dir) / "spark_bench.jsonl"
    if args.report:
        saved: dict[int, dict[str, list[dict[str, Any]]]] = {}
        for line in results.read_text(encoding="utf-8").splitlines():
            run = json.loads(line)
            if run["command"] == args.command and (not args.rows or run["rows"] in args.rows):
                saved.setdefault(run["rows"], {}).setdefault(run["engine"], []).append(run)
        table(args.command, dict(sorted(saved.items())))
        return
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    env = child_env(args)
    if args.command == "segment" and "spark" in engines and not segment_has_engine(env):
        print("the crmtool the children import has no `segment run --engine`: segment runs on DuckDB only "
              "(give --src TREE/src of a branch that has it)", flush=True)
        engines = [e for e in engines if e != "spark"]
    print(f"command={args.command} rows={args.rows or [1_000_000]} engines={engines} nice={args.nice} "
          f"driver_memory={args.driver_memory} master={args.spark_master} cpus={os.cpu_count()} "
          f"load_before={os.getloadavg()} src={args.src}", flush=True)
    by_size = {rows: run_size(args, rows, engines, env, results) for rows in (args.rows or [1_000_000])}
    table(args.command, by_size)
    print(f"\nload_after={os.getloadavg()}")


if __name__ == "__main__":
    main()
