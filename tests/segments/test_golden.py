"""Golden outputs of the example run (raw examples/clientes.csv, as of 2026-11-01).

Refresh with ``CRMTOOL_UPDATE_GOLDEN=1 pytest tests/segments/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from crmtool.segments import api
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("CRMTOOL_UPDATE_GOLDEN") == "1"
FILES = ["memberships.csv", "holdouts.csv", "segments/champions.csv", "segments/cart_abandoners.csv"]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, api.SegmentResult]:
    out = tmp_path_factory.mktemp("golden")
    with Workspace(":memory:") as ws:
        result = api.segment(ws, EX / "clientes.csv", ROOT / "segments.yaml", out_dir=out,
                             orders=EX / "pedidos.csv", events=EX / "eventos.csv", as_of=date(2026, 11, 1))
    return out, result


def _golden(name: str, actual: bytes) -> None:
    path = GOLDEN / name.replace("/", "__")
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
        return
    assert path.exists(), f"{path} missing: run with CRMTOOL_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_bytes(), f"{name} differs from its golden file (CRMTOOL_UPDATE_GOLDEN=1 to refresh)"


@pytest.mark.parametrize("name", FILES)
def test_golden_files(example_run: tuple[Path, api.SegmentResult], name: str) -> None:
    _golden(name, (example_run[0] / name).read_bytes())


def test_golden_summary(example_run: tuple[Path, api.SegmentResult]) -> None:
    summary = example_run[1].as_dict()
    for key in ("run_id", "outputs", "previous_run"):
        summary.pop(key)
    _golden("summary.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
