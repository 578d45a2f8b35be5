"""crmtool campaign start | results | plan through the real CLI, on the examples, with golden output.

Refresh the golden files with ``CRMTOOL_UPDATE_GOLDEN=1 pytest tests/campaigns/test_cli.py`` and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app
from goldens import check_golden

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


def _golden(name: str, text: str) -> None:
    """Run ids masked, then the shared check."""
    check_golden("campaigns/" + name, re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "<run id>", text))


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("campaign")
    ws = tmp / "ws.duckdb"
    res = invoke("segment", EX / "clientes.csv", "--segments", ROOT / "segments.yaml", "--orders", EX / "pedidos.csv",
                 "--events", EX / "eventos.csv", "--out", tmp / "out", "--as-of", "2026-11-01", "-w", ws)
    assert res.exit_code == 0, res.output
    return tmp, ws


def test_start_and_results_on_the_examples(segmented: tuple[Path, Path]) -> None:
    tmp, ws = segmented
    res = invoke("campaign", "start", "black_friday", "--segment", "high_value", "--variants", "A:0.5,B:0.5",
                 "--cost", "1200", "--start-date", "2026-09-01", "--out", tmp / "out", "-w", ws)
    assert res.exit_code == 0, res.output
    _golden("start.txt", res.stdout.replace(str(tmp), "<tmp>"))
    assert (tmp / "out" / "campaigns" / "black_friday" / "send.csv").exists()
    res = invoke("campaign", "results", "black_friday", "--orders", EX / "pedidos.csv", "--window", "60d",
                 "--segments", ROOT / "segments.yaml", "-w", ws)
    assert res.exit_code == 0, res.output
    _golden("results.txt", res.stdout)
    assert "warning: holdout too small to conclude" in res.stderr
    res = invoke("campaign", "results", "black_friday", "--orders", EX / "pedidos.csv", "--window", "60d",
                 "--segments", ROOT / "segments.yaml", "-w", ws, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["arm"] for r in rows] == ["A", "B", "holdout", "global_control", "all_variants"]
    res = invoke("campaign", "results", "black_friday", "--orders", EX / "pedidos.csv", "--window", "60d",
                 "--segments", ROOT / "segments.yaml", "-w", ws, "--format", "json", "--by", "segment")
    payload = json.loads(res.stdout)
    assert payload["status"] == "warn" and payload["groups"][0]["value"] is None
    assert {g["value"] for g in payload["groups"][1:]} >= {"high_value"}


def test_start_from_the_segment_folder_matches_the_history(segmented: tuple[Path, Path], tmp_path: Path) -> None:
    tmp, ws = segmented
    a = invoke("campaign", "start", "c1", "-s", "champions", "--out", tmp_path, "-w", ws, "--format", "json")
    b = invoke("campaign", "start", "c1", "-s", "champions", "--from", tmp / "out", "--out", tmp_path / "x",
               "-w", tmp_path / "other.duckdb", "--format", "json")
    assert a.exit_code == b.exit_code == 0, a.output + b.output
    assert json.loads(a.stdout)["arms"] == json.loads(b.stdout)["arms"]
    assert (tmp_path / "campaigns" / "c1" / "send.csv").read_text() == \
        (tmp_path / "x" / "campaigns" / "c1" / "send.csv").read_text()


def test_plan_and_usage_errors() -> None:
    res = invoke("campaign", "plan", "--baseline", "3%", "--effect", "0.5pp")
    assert res.exit_code == 0, res.output
    _golden("plan.txt", res.stdout)
    res = invoke("campaign", "plan", "--baseline", "3%", "--effect", "0.5pp", "--format", "json")
    assert json.loads(res.stdout)["holdout_customers"] > 10_000
    bad = invoke("campaign", "plan", "--baseline", "lots", "--effect", "1pp")
    assert bad.exit_code == 2 and "is not a percentage" in bad.stderr
    bad = invoke("campaign", "results", "nope", "--orders", EX / "pedidos.csv", "--window", "a month",
                 "-w", ":memory:")
    assert bad.exit_code == 2 and "is not a duration" in bad.stderr
    bad = invoke("campaign", "start", "x", "-s", "vip", "--variants", "A:half", "-w", ":memory:")
    assert bad.exit_code == 2 and "is not a number" in bad.stderr


def test_every_command_has_help() -> None:
    for cmd in ("start", "results", "plan"):
        res = invoke("campaign", cmd, "--help")
        assert res.exit_code == 0 and "Usage" in res.output
