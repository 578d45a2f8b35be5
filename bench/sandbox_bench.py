"""Cost of the user-SQL parser and the walled session: `clean` before and after, same hour.

    python bench/sandbox_bench.py --base /path/to/old/src [--rows 200000] [--repeat 3]

Runs the real command line (`python -m crmtool clean ... --workspace <file>`) alternately with
``--base`` (the source tree of the commit before, e.g. ``git archive <commit> src | tar -x``) and
with this checkout on PYTHONPATH, on bench/data/customers_<rows>.csv (made by gen_customers.py if
missing), and prints the median wall time and peak RSS of each and their ratio. Also times
``crmtool.usersql.check_expression`` on the rule files' expressions. Not part of pytest.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _run(src: Path, data: Path, rules: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one clean in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-", dir=HERE) as tmp:
        env = dict(os.environ, PYTHONPATH=str(src), CRMTOOL_KEY="bench-key-0123456789abcdef")
        cmd = [sys.executable, "-c", "import sys; from crmtool.cli import main; sys.argv[0] = 'crmtool'; main()",
               "clean", str(data), "--rules", str(rules), "--out", str(Path(tmp) / "out"),
               "--workspace", str(Path(tmp) / "crm.duckdb"), "-q"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{src}: exit {proc.returncode}\n{proc.stderr}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # ru_maxrss of children is the largest child so far: report it only when it grew
        return wall, max(peak, before) / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="src folder of the code before")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = HERE / "data" / f"customers_{args.rows}.csv"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(args.rows), str(data),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    rules = HERE.parent / "rules"
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeat):  # alternate, so both see the same load on the machine
        for name, src in (("before", args.base), ("after", SRC)):
            wall, _peak = _run(src, data, rules)
            times[name].append(wall)
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"clean, {args.rows} rows, rules/, file workspace, {args.repeat} runs each, alternating")
    print(f"  before: median {b:.2f} s  ({', '.join(f'{t:.2f}' for t in times['before'])})")
    print(f"  after:  median {a:.2f} s  ({', '.join(f'{t:.2f}' for t in times['after'])})")
    print(f"  ratio after/before: {a / b:.3f}")

    sys.path.insert(0, str(SRC))
    from crmtool.usersql import check_expression

    exprs = ["try_strptime(last_order_date, '%Y-%m-%d') >= try_strptime(signup_date, '%Y-%m-%d')",
             "country IN ('ES', 'ESPAÑA') OR country IS NULL",
             "array_to_string(list_sort([lower(strip_accents(split_part(trim(first_name), ' ', 1))), "
             "lower(strip_accents(split_part(trim(last_name), ' ', 1)))]), ' ') || '|' || trim(postal_code)"]
    start = time.perf_counter()
    check_expression(exprs[0], columns=None, location="x")
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(100):
        for e in exprs:
            check_expression(e, columns=None, location="x")
    each = (time.perf_counter() - start) / 300
    print(f"check_expression: first call (imports sqlglot) {first * 1000:.0f} ms, then {each * 1000:.2f} ms each")
    shutil.rmtree(HERE / "results" / "sandbox", ignore_errors=True)


if __name__ == "__main__":
    main()
