"""Golden outputs of the example run (raw examples/clientes.csv, as of 2026-11-01).

Refresh with ``CRMTOOL_UPDATE_GOLDEN=1 pytest tests/segments/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from crmtool.segments import api
from crmtool.workspace import Workspace
from goldens import check_golden

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
FILES = ["memberships.csv", "holdouts.csv", "segments/champions.csv", "segments/cart_abandoners.csv"]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, api.SegmentResult]:
    out = tmp_path_factory.mktemp("golden")
    with Workspace(":memory:") as ws:
        result = api.segment(ws, EX / "clientes.csv", ROOT / "segments.yaml", out_dir=out,
                             orders=EX / "pedidos.csv", events=EX / "eventos.csv", as_of=date(2026, 11, 1))
    return out, result



@pytest.mark.parametrize("name", FILES)
def test_golden_files(example_run: tuple[Path, api.SegmentResult], name: str) -> None:
    check_golden("segments/" + name.replace("/", "__"), (example_run[0] / name).read_bytes())


def test_golden_summary(example_run: tuple[Path, api.SegmentResult]) -> None:
    summary = example_run[1].as_dict()
    for key in ("run_id", "outputs", "previous_run"):
        summary.pop(key)
    check_golden("segments/summary.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
