"""A cluster estimate from bench/spark_bench.py's measured runs (docs/spark-sizing.md).

    python bench/spark_sizing.py --data-dir /work/bench-data/sparkbench --command clean \\
        [--target-rows 100000000] [--executors 10] [--cores 8] [--price 0.384] \\
        [--utilisation 0.7] [--network 1.0 --network 1.5]

Reads ``--data-dir``/spark_bench.jsonl, takes the median CPU seconds (user+sys of the process
tree) of each measured size on ``--engine`` (spark by default), and extrapolates them to
``--target-rows`` two ways from the two largest sizes:

- *linear*: the fixed cost plus the marginal CPU per extra row between the two largest sizes;
- *power*: ``C(n) = C(n1) * (n / n1) ** p``, ``p`` fitted on the two largest sizes (p > 1 when
  the CPU per row still grows with the size).

Each is multiplied by each ``--network`` factor (an assumption: what a real cluster adds for
shuffles over the network and serialising between hosts, which ``local[2]`` does not pay), and
turned into core-hours, a wall time on ``--executors`` x ``--cores`` at ``--utilisation``, and
an on-demand cost at ``--price`` per executor-hour (plus one driver node at the same price).
Every figure it prints is that arithmetic on the measured medians; nothing else is measured here.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def medians(path: Path, command: str, engine: str) -> dict[int, float]:
    cpu: dict[int, list[float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        run = json.loads(line)
        if run["command"] == command and run["engine"] == engine and run["exit"] in (0, 1):
            cpu.setdefault(int(run["rows"]), []).append(float(run["cpu"]))
    return {rows: statistics.median(v) for rows, v in sorted(cpu.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--command", default="clean")
    parser.add_argument("--engine", default="spark")
    parser.add_argument("--target-rows", type=int, default=100_000_000)
    parser.add_argument("--executors", type=int, default=10)
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--price", type=float, default=0.384, help="USD per node-hour (assumption)")
    parser.add_argument("--utilisation", type=float, default=0.7)
    parser.add_argument("--network", type=float, action="append", help="repeatable; default 1.0 and 1.5")
    args = parser.parse_args()
    cpu = medians(args.data_dir / "spark_bench.jsonl", args.command, args.engine)
    if len(cpu) < 2:
        raise SystemExit(f"need two sizes of {args.command} on {args.engine}; have {sorted(cpu)}")
    print(f"{args.command} on {args.engine}: median CPU s by rows: "
          + ", ".join(f"{r:,}: {c:.1f} ({c / r * 1e6:.1f} us/row)" for r, c in cpu.items()))
    (n0, c0), (n1, c1) = list(cpu.items())[-2:]
    marginal = (c1 - c0) / (n1 - n0)
    fixed = c1 - marginal * n1
    power = math.log(c1 / c0) / math.log(n1 / n0)
    print(f"from {n0:,} and {n1:,} rows: marginal {marginal * 1e6:.1f} us per extra row, fixed {fixed:.0f} s; "
          f"power-law exponent {power:.3f}")
    target = args.target_rows
    cores = args.executors * args.cores
    models = {"linear": fixed + marginal * target, "power": c1 * (target / n1) ** power}
    print(f"\ntarget {target:,} rows; cluster {args.executors} x {args.cores} cores at {args.utilisation:.0%} "
          f"busy; {args.price} USD per node-hour for {args.executors} executors + 1 driver (assumptions)")
    print("| model | network factor | CPU s | core-hours | wall h | cost USD |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds in models.items():
        for factor in args.network or [1.0, 1.5]:
            total = seconds * factor
            wall_h = total / (cores * args.utilisation) / 3600
            cost = wall_h * (args.executors + 1) * args.price
            print(f"| {name} | x{factor:.1f} | {total:,.0f} | {total / 3600:,.1f} | {wall_h:.2f} | {cost:,.2f} |")


if __name__ == "__main__":
    main()
