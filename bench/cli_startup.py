"""Start-up cost of the command line: CPU seconds of ``crmtool --help`` (and of other argument
lists), the code under test against a baseline checkout, run alternately.

    python bench/cli_startup.py --baseline-src /path/to/main/src [--runs 15] [--case=--help --case="clean --help"]
    python bench/cli_startup.py --baseline-src /path/to/main/src --case=--help --case="validate {small} --rules {rules}"

``{small}`` in a case is a 10-row export from bench/gen_customers.py (bench/data/customers_10.csv,
written if missing) and ``{rules}`` the example rules folder: the 10-row ``validate`` of issue 19.

Each run is a fresh ``python -m crmtool ARGS`` with byte-code caches written beforehand (a pip
install compiles them; an editable checkout with PYTHONDONTWRITEBYTECODE would recompile every
module on every start and measure the compiler). CPU is user+sys of the child
(``resource.getrusage(RUSAGE_CHILDREN)``), reported beside wall time as medians; also the
floor: ``import typer`` with the rich help modules typer loads itself. Prints one JSON object.
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

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
BENCH = Path(__file__).resolve().parent
FLOOR = "import typer, typer.main, typer.rich_utils"


def _env(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env["COLUMNS"] = "100"
    return env


def _one(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-src", type=Path, required=True, help="src/ folder of the code before")
    parser.add_argument("--src", type=Path, default=HERE_SRC, help="src/ folder of the code after (this one)")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--case", action="append", help="an argument list as one string (default --help); "
                        "write --case=--help, as argparse takes a bare --help for its own")
    args = parser.parse_args()
    sides = {"baseline": args.baseline_src.resolve(), "new": args.src.resolve()}
    for src in sides.values():  # byte-code caches of every module, as an installed package has them
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], env=_env(src), check=True,
                       stdout=subprocess.DEVNULL)
    report: dict[str, object] = {"python": sys.version.split()[0], "runs": args.runs,
                                 "load_before": os.getloadavg(), "sides": {k: str(v) for k, v in sides.items()}}
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    small = BENCH / "data" / "customers_10.csv"
    if not small.exists():
        small.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(BENCH / "gen_customers.py"), "10", str(small),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    places = {"small": str(small), "rules": str(BENCH.parent / "rules")}
    cases = [("floor", [sys.executable, "-c", FLOOR])] + [
        (a, [sys.executable, "-m", "crmtool", *a.format(**places).split()]) for a in args.case or ["--help"]]
    for _ in range(args.runs):
        for case, argv in cases:
            for side, src in sides.items():  # alternately, so both see the same load
                cpu, wall = _one(argv, _env(src))
                slot = results.setdefault(case, {}).setdefault(side, {"cpu": [], "wall": []})
                slot["cpu"].append(cpu)
                slot["wall"].append(wall)
    summary: dict[str, object] = {}
    for case, by_side in results.items():
        med = {side: {k: round(statistics.median(v), 4) for k, v in m.items()} for side, m in by_side.items()}
        med["cpu_ratio_new_over_baseline"] = round(med["new"]["cpu"] / med["baseline"]["cpu"], 3)  # type: ignore[index]
        summary[case] = med
    report["median_seconds"] = summary
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
