"""diff and report as pipeline steps (registered in crmtool.pipeline.steps): a real `crmtool run`."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from crmtool.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PIPELINE = """version: 1
workspace: out/crmtool.duckdb
out: out
inputs:
  old: clientes.csv
  new: clientes-next.csv
steps:
  - step: diff
    old: old
    new: new
    key: customer_id
  - step: report
    since: all
"""


def test_diff_and_report_run_in_a_pipeline(tmp_path: Path) -> None:
    for name in ("clientes.csv", "clientes-next.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "pipeline.yaml"), "--date", "2026-11-01"])
    assert result.exit_code == 0, result.stderr
    latest = (tmp_path / "out" / "latest.txt").read_text().strip()  # runs/<run_id>
    folder = tmp_path / "out" / latest
    assert (folder / "diff" / "changes.csv").read_text(encoding="utf-8").startswith("customer_id,field,")
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "Changes between exports" in html and "Plotly.newPlot(" in html
