"""The segment commands through the real CLI (CliRunner): routing, outputs, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_segment_customers_routes_to_run_on_the_raw_examples(tmp_path: Path) -> None:
    ws = tmp_path / "ws.duckdb"
    res = invoke("segment", EX / "clientes.csv", "--segments", ROOT / "segments.yaml", "--orders", EX / "pedidos.csv",
                 "--events", EX / "eventos.csv", "--out", tmp_path / "seg", "--as-of", "2026-11-01", "-w", ws)
    assert res.exit_code == 0, res.output
    assert "champions" in res.output and "first run" in res.output
    assert "skipped orders rows: future_date 1, missing_amount 1, negative_amount 1" in res.output
    lists = sorted(p.name for p in (tmp_path / "seg" / "segments").iterdir())
    assert len(lists) == 12 and "champions.csv" in lists
    assert (tmp_path / "seg" / "holdouts.csv").exists() and (tmp_path / "seg" / "memberships.csv").exists()
    summary = json.loads((tmp_path / "seg" / "segments.summary.json").read_text())
    assert summary["as_of"] == "2026-11-01" and summary["customers"] == 297
    manifest = json.loads((tmp_path / "seg" / "segments.manifest.json").read_text())
    assert [Path(e["path"]).name for e in manifest["inputs"]] == ["clientes.csv", "pedidos.csv", "eventos.csv",
                                                                 "segments.yaml"]
    assert all(len(e["sha256"]) == 64 for e in manifest["inputs"] + manifest["outputs"])
    assert manifest["status"] == "pass" and "read" not in manifest and "wrote" not in manifest
    # same command again: change since the last run is zero everywhere, and diff agrees
    res2 = invoke("segment", "run", EX / "clientes.csv", "-s", ROOT / "segments.yaml", "--orders", EX / "pedidos.csv",
                  "--events", EX / "eventos.csv", "--out", tmp_path / "seg2", "--as-of", "2026-11-01", "-w", ws,
                  "--format", "json")
    assert res2.exit_code == 0, res2.output
    payload = json.loads(res2.stdout)
    assert all(s["entered"] == 0 and s["exited"] == 0 for s in payload["segments"])
    res3 = invoke("segment", "diff", "-w", ws, "--format", "json")
    assert res3.exit_code == 0, res3.output
    assert all(v["entered"] == v["exited"] == 0 for v in json.loads(res3.stdout)["segments"].values())
    res4 = invoke("segment", "export-audience", "champions", "--platform", "google", "--from", tmp_path / "seg",
                  "--segments", ROOT / "segments.yaml")
    assert res4.exit_code == 0, res4.output
    assert (tmp_path / "seg" / "audiences" / "champions.google.csv").exists()


def test_preview_writes_nothing(tmp_path: Path) -> None:
    res = invoke("segment", "preview", EX / "clientes.csv", "-s", ROOT / "segments.yaml", "--orders",
                 EX / "pedidos.csv", "--as-of", "2026-11-01", "-w", ":memory:", "--format", "json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["overlap"]["champions"]["champions"] == payload["segments"][0]["matched"]
    assert payload["overlap"]["champions"]["loyal"] == payload["overlap"]["loyal"]["champions"]
    assert list(tmp_path.iterdir()) == []


def test_config_error_exit_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments:\n  - {name: a, when: 'TRUE', holdout: 120}\n", encoding="utf-8")
    res = invoke("segment", EX / "clientes.csv", "-s", bad, "--out", tmp_path / "o", "-w", ":memory:")
    assert res.exit_code == 2
    assert f"error: {bad}:2: holdout 120% is over 100%" in res.stderr
    assert "Traceback" not in res.output


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    res = invoke("segment", EX / "clientes.csv", "-s", ROOT / "segments.yaml", "--as-of", "1/11/2026",
                 "--out", tmp_path, "-w", ":memory:")
    assert res.exit_code == 2 and "is not a date" in res.stderr
    res = invoke("segment", tmp_path / "missing.csv", "-s", ROOT / "segments.yaml", "--out", tmp_path, "-w", ":memory:")
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = invoke("segment", "diff", "-w", tmp_path / "empty.duckdb")
    assert res.exit_code == 2 and "no segment runs" in res.stderr


def test_help_and_schema() -> None:
    res = invoke("segment", "--help")
    assert res.exit_code == 0
    for cmd in ("run", "check", "preview", "diff", "export-audience"):
        assert cmd in res.output
    for cmd in ("run", "check", "preview", "diff", "export-audience"):
        assert invoke("segment", cmd, "--help").exit_code == 0
    res = invoke("rules", "schema", "segments")
    assert res.exit_code == 0 and json.loads(res.stdout)["title"] == "crmtool segments file"


def test_check_validates_without_data(tmp_path: Path) -> None:
    res = invoke("segment", "check", "-s", ROOT / "segments.yaml")
    assert res.exit_code == 0 and "12 segments" in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("features:\n  a: 'b'\n  b: 'a'\nsegments: [{name: x, when: 'TRUE'}]\n", encoding="utf-8")
    res = invoke("segment", "check", "-s", bad)
    assert res.exit_code == 2 and f"{bad}:2: cycle between features: a -> b -> a" in res.stderr
