"""What `crmtool run` adds to the sum of its steps (target: under 5%).

    python bench/pipeline_bench.py [--rows 20000] [--repeat 3]

Generates bench/data/customers_<rows>.csv with bench/gen_customers.py if missing. Each round
runs, in this process, (a) the steps by hand — api.clean, emails.classify_file, segments.segment
on the cleaned file, each into a fresh workspace and folder — and (b) the same steps as a
pipeline (run_pipeline) into a fresh workspace, alternating which goes first. Prints medians of:
the pipeline's wall time, the sum of its steps' own times, the steps by hand, and the ratios.
Not part of pytest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def by_hand(work: Path, data: Path) -> float:
    from crmtool.api import clean
    from crmtool.emails.run import classify_file
    from crmtool.segments.api import segment
    from crmtool.workspace import Workspace

    t0 = time.perf_counter()
    with Workspace(work / "hand.duckdb") as ws:
        result = clean(ws, data, [ROOT / "rules"], work / "hand", audit_log=work / "hand.audit")
        classify_file(ws, result.outputs["clean"], out_dir=work / "hand")
        segment(ws, result.outputs["clean"], ROOT / "segments.yaml", out_dir=work / "hand",
                as_of=date(2026, 11, 1))
    return time.perf_counter() - t0


def as_pipeline(work: Path, data: Path) -> tuple[float, float]:
    from crmtool.pipeline import load_pipeline, run_pipeline

    spec_file = work / "pipeline.yaml"
    spec_file.write_text(textwrap.dedent(f"""\
        version: 1
        workspace: pipe.duckdb
        out: pipe
        inputs:
          customers: {data}
        steps:
          - step: clean
            input: customers
            rules: {ROOT / "rules"}
          - step: emails
            input: clean:clean
          - step: segment
            input: clean:clean
            segments: {ROOT / "segments.yaml"}
        """), encoding="utf-8")
    t0 = time.perf_counter()
    spec = load_pipeline(spec_file, allow_absolute=True)
    result = run_pipeline(spec, date(2026, 11, 1))
    wall = time.perf_counter() - t0
    assert result.published, result.as_dict()
    return wall, sum(s.seconds for s in result.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = HERE / "data" / f"customers_{args.rows}.csv"
    if not data.exists():
        from gen_customers import generate

        generate(args.rows, data, encoding="cp1252", delimiter=";")
    hand, pipe, steps = [], [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="crmtool-pipe-bench-") as tmp:
            work = Path(tmp)
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for which in order:
                if which == 0:
                    hand.append(by_hand(work, data))
                else:
                    wall, inner = as_pipeline(work, data)
                    pipe.append(wall)
                    steps.append(inner)
    h, p, s = statistics.median(hand), statistics.median(pipe), statistics.median(steps)
    over = [w - x for w, x in zip(pipe, steps, strict=True)]
    print(f"rows {args.rows}, rounds {args.repeat}")
    print(f"pipeline wall median {p:.2f} s; sum of its steps median {s:.2f} s; "
          f"overhead median {statistics.median(over):.3f} s ({statistics.median(over) / s:.1%} of the steps)")
    print(f"same steps by hand median {h:.2f} s; pipeline / by hand = {p / h:.3f}")


if __name__ == "__main__":
    main()
