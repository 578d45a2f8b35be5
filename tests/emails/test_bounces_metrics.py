"""`bounces import` records its own metrics (crm_metrics, step `bounces import`), not its summary's."""

from __future__ import annotations

from pathlib import Path

from crmtool.emails.bounces import import_bounces
from crmtool.io.readers import file_sha256
from crmtool.workspace import Workspace

FILES = Path(__file__).parent / "bounces"


def _metrics(ws: Workspace, run_id: str) -> dict[tuple[str, str], float]:
    rows = ws.con.execute("SELECT step, name, dimension, value FROM crm_metrics WHERE run_id = ?", [run_id]).fetchall()
    assert {r[0] for r in rows} == {"bounces import"}
    return {(name, dim): value for _step, name, dim, value in rows}


def test_rows_imports_and_bounces_by_type_are_metrics(ws: Workspace) -> None:
    path = FILES / "sendgrid_events.json"
    first = import_bounces(ws, path)
    assert _metrics(ws, first.run_id) == {
        ("rows_in", ""): first.rows, ("imported", ""): 4, ("duplicates", ""): 0, ("skipped", ""): first.skipped,
        ("undated", ""): 0, ("bounces", "hard"): 1, ("bounces", "soft"): 2, ("bounces", "complaint"): 1}
    again = import_bounces(ws, path)  # nothing new: no bounce of any type, four duplicates
    metrics = _metrics(ws, again.run_id)
    assert metrics[("imported", "")] == 0 and metrics[("duplicates", "")] == 4
    assert not [k for k in metrics if k[0] == "bounces"]
    summary_only = {"rows", "by_type", "platform", "run_id"}  # names the summary fallback used to store
    assert not {name for name, _dim in metrics} & summary_only
    inputs = ws.con.execute("SELECT summary FROM crm_runs WHERE run_id = ?", [again.run_id]).fetchall()[0][0]
    assert file_sha256(path) in inputs


def test_an_undated_row_and_rows_in(ws: Workspace) -> None:
    result = import_bounces(ws, FILES / "generic.csv")
    metrics = _metrics(ws, result.run_id)
    assert metrics[("undated", "")] == 1 and metrics[("rows_in", "")] == result.rows > 0
    assert {k[1]: v for k, v in metrics.items() if k[0] == "bounces"} == {"hard": 1, "soft": 1, "complaint": 1}
