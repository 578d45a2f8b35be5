"""crmtool dedupe, old code vs new code, run alternately on one synthetic file (bench/gen_people.py).

    python bench/dedupe_speed.py --rows 100000 --baseline-src /path/to/main/src [--repeat 3] [--threads N] \
        [--work DIR]

Each run is a child process (``PYTHONPATH`` = the source tree under test) that loads the file and runs
``dedupe_file`` with the configuration ``crmtool dedupe FILE --suggest`` writes (made once, by this
tree, and given to both), writing clusters, golden and review as Parquet. Per run: wall seconds of the
child, its CPU seconds (user + system, ``getrusage(RUSAGE_CHILDREN)``), the dedupe phases and peak
memory (the child's ``ru_maxrss``, and the highest RSS sampled every 20 ms during each progress step:
``peak_in_clustering_mib`` is the clustering step's). Then medians, the new/old ratio, and how many
record pairs the two trees cluster differently (pairs together in one tree's clusters and apart in
the other's; 0 means identical clusters).
The load average is printed before and after: the machine is shared. ``--work DIR`` (or ``CRM_BENCH_DIR``):
where the generated file, the configuration and the clusters go (default /tmp).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from dedupe_synthetic import bench_dir, data_file
from peak_memory import rss

HERE = Path(__file__).resolve()


class StepPeaks:
    """The highest RSS of this process (``/proc/self/statm``, every 20 ms) during each progress step."""

    def __init__(self) -> None:
        self.step = "load"
        self.peaks: dict[str, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None:
        self._take()
        self.step = step.split(" ")[0]  # "comparing 1165419 pairs" -> "comparing"

    def _take(self) -> None:
        mib = rss() / 2**20
        self.peaks[self.step] = max(self.peaks.get(self.step, 0.0), round(mib, 1))

    def _sample(self) -> None:
        while not self.done.wait(0.02):
            self._take()

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.thread.join()
        return self.peaks


def child(rows: int, rules: Path, clusters_out: Path, threads: int | None) -> dict[str, Any]:
    import crmtool
    from crmtool import dedupe_file
    from crmtool.workspace import Workspace

    path = data_file(rows)
    out = clusters_out.with_suffix(".out")
    peaks = StepPeaks()
    start = time.perf_counter()
    kwargs: dict[str, Any] = {"threads": threads} if threads else {}
    with Workspace(":memory:", **kwargs) as ws:
        result = dedupe_file(ws, path, [rules], out, fmt="parquet", progress=peaks)
        wall = time.perf_counter() - start
        table = ws.con.execute("SELECT record_id, cluster_id FROM dedupe_records").to_arrow_table()
    import pyarrow.parquet as pq

    pq.write_table(table, clusters_out)
    return {"src": str(Path(crmtool.__file__).parents[1]), "dedupe_wall_s": round(wall, 3),
            "candidate_pairs": result.candidate_pairs, "timings": result.timings,
            "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_in_clustering_mib": peaks.stop().get("clustering", 0.0), "step_peaks_mib": peaks.peaks}


def run(src: str, rows: int, rules: Path, clusters_out: Path, threads: int | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": src}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    args = [sys.executable, str(HERE), "--child", str(rows), str(rules), str(clusters_out), str(threads or 0)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({src}):\n{proc.stderr[-2000:]}")
    got = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), **got}


def differing_pairs(a: Path, b: Path) -> int:
    """Record pairs in one cluster in ``a`` and in two in ``b``, or the other way round."""
    import duckdb

    con = duckdb.connect()

    def pairs(q: str) -> int:
        return int(con.execute(f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM ({q})").fetchall()[0][0])

    con.execute(f"CREATE TABLE a AS SELECT * FROM read_parquet('{a}')")
    con.execute(f"CREATE TABLE b AS SELECT * FROM read_parquet('{b}')")
    pa = pairs("SELECT count(*) AS n FROM a GROUP BY cluster_id")
    pb = pairs("SELECT count(*) AS n FROM b GROUP BY cluster_id")
    both = pairs("SELECT count(*) AS n FROM a JOIN b USING (record_id) GROUP BY a.cluster_id, b.cluster_id")
    return pa + pb - 2 * both


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        rows, rules, out, threads = int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(child(rows, rules, out, threads or None)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-src", required=True, help="src/ folder of the old code (e.g. a main worktree)")
    parser.add_argument("--src", default=str(HERE.parents[1] / "src"), help="src/ folder of the new code")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: the workspace default)")
    parser.add_argument("--work", type=Path, default=None, help="folder for data and outputs (default /tmp)")
    args = parser.parse_args()
    if args.work:
        os.environ["CRM_BENCH_DIR"] = str(args.work)
    work = bench_dir()
    data_file(args.rows)  # generated once, outside the timings
    rules = work / f"crm_speed_rules_{args.rows}.yaml"
    from crmtool.dedupe.entry import suggest_file
    from crmtool.dedupe.suggest import suggest_yaml
    from crmtool.workspace import Workspace

    with Workspace(":memory:") as ws:
        rules.write_text(suggest_yaml(suggest_file(ws, data_file(args.rows))), encoding="utf-8")
    print(f"load average before: {os.getloadavg()}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for k in range(args.repeat):
        for name, src in (("old", args.baseline_src), ("new", args.src)):
            r = run(src, args.rows, rules, work / f"crm_speed_{name}_{args.rows}.parquet", args.threads)
            runs[name].append(r)
            print(json.dumps({"run": k, "code": name, **r}), flush=True)
    print(f"load average after: {os.getloadavg()}")
    figures = ("wall_s", "cpu_s", "dedupe_wall_s", "peak_mib", "peak_in_clustering_mib")
    med = {n: {m: statistics.median(r[m] for r in rs) for m in figures}
           for n, rs in runs.items()}
    for n in ("old", "new"):
        phases = {p: round(statistics.median(r["timings"].get(p, 0.0) for r in runs[n]), 3)
                  for p in runs[n][0]["timings"]}
        print(f"{n}: median wall {med[n]['wall_s']:.2f} s, cpu {med[n]['cpu_s']:.2f} s, "
              f"dedupe {med[n]['dedupe_wall_s']:.2f} s, peak {med[n]['peak_mib']:.0f} MiB "
              f"({med[n]['peak_in_clustering_mib']:.0f} MiB while clustering); phases {phases}")
    print("new/old: " + ", ".join(f"{m} {med['new'][m] / med['old'][m]:.3f}" for m in med["old"]))
    diff = differing_pairs(work / f"crm_speed_old_{args.rows}.parquet", work / f"crm_speed_new_{args.rows}.parquet")
    print(f"record pairs clustered differently (old vs new): {diff}")


if __name__ == "__main__":
    main()
