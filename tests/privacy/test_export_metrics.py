"""`export` records its own metrics (crm_metrics, step `export`): rows in and out, erased rows
dropped, columns per action; and its input with its SHA-256."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from crmtool.io.readers import file_sha256
from crmtool.privacy.export import export
from crmtool.workspace import Workspace

POLICY = """version: 1
columns:
  customer_id: hash
  first_name: keep
  email: mask
  birth_date: {generalise: year}
  postal_code: {generalise: province}
"""


def _input(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "in.csv"
    source.write_text("customer_id,first_name,last_name,email,birth_date,postal_code\n"
                      "C1,Ana,García,ana@example.com,10/07/1985,08246\n"
                      "C2,Luis,Pérez,luis@example.com,2001-03-08,28001\n"
                      "C3,Marta,Ruiz,marta@example.com,1990-01-01,48001\n", encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return source, policy


def _metrics(ws: Workspace, run_id: str) -> dict[tuple[str, str], float]:
    rows = ws.con.execute("SELECT step, name, dimension, value FROM crm_metrics WHERE run_id = ?", [run_id]).fetchall()
    assert {r[0] for r in rows} == {"export"}
    return {(name, dim): value for _s, name, dim, value in rows}


def test_rows_columns_and_input_are_recorded(ws: Workspace, tmp_path: Path) -> None:
    source, policy = _input(tmp_path)
    result = export(ws, source, policy, tmp_path / "out.csv", as_of=date(2026, 11, 1))
    assert _metrics(ws, result.run_id) == {
        ("rows_in", ""): 3, ("rows_out", ""): 3, ("dropped_erased", ""): 0, ("columns_out", ""): 5,
        ("columns_dropped", ""): 1, ("columns", "hash"): 1, ("columns", "keep"): 1, ("columns", "mask"): 1,
        ("columns", "generalise"): 2}
    summary = ws.con.execute("SELECT summary FROM crm_runs WHERE run_id = ?", [result.run_id]).fetchall()[0][0]
    assert file_sha256(source) in summary


def test_erased_people_are_counted_out(ws: Workspace, tmp_path: Path) -> None:
    from crmtool.privacy.erase import erase

    ws.con.execute("CREATE TABLE data_c AS SELECT 1 AS _row, 'C2' AS customer_id, 'luis@example.com' AS email")
    requests = tmp_path / "requests.csv"
    requests.write_text("ref;customer_id\nR1;C2\n", encoding="utf-8")
    erase(ws, requests, out_dir=tmp_path / "erased")
    source, policy = _input(tmp_path)
    result = export(ws, source, policy, tmp_path / "out.csv", as_of=date(2026, 11, 1))
    metrics = _metrics(ws, result.run_id)
    assert (metrics[("rows_in", "")], metrics[("rows_out", "")], metrics[("dropped_erased", "")]) == (3, 2, 1)
