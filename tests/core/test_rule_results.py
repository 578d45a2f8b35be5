"""A run records each rule's outcome in the workspace's ``crm_rule_results``, in rule order."""

from __future__ import annotations

from pathlib import Path

from crmtool.api import validate
from crmtool.workspace import Workspace


def test_validate_records_every_rule_outcome(tmp_path: Path) -> None:
    data = tmp_path / "small.csv"
    data.write_text("id,name,age\nC1,ana,30\nC2,,7\nC2, Bo ,40\n", encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: n, kind: required, column: name}\n"
                     "  - {name: u, kind: unique, column: id, severity: warning}\n"
                     "  - {name: t, kind: trim, column: name}\n"
                     "  - {name: a, kind: range, column: age, min: 18}\n", encoding="utf-8")
    with Workspace(tmp_path / "ws.duckdb") as ws:
        report = validate(ws, data, [rules])
        stored = ws.con.execute("SELECT rule, kind, severity, checked, failed, fixed, rejected, status "
                                "FROM crm_rule_results WHERE run_id = ? ORDER BY rowid", [report.run_id]).fetchall()
    assert stored == [(o.spec.name, o.spec.kind, o.spec.severity, o.checked, o.failed, o.fixed, o.rejected, o.status)
                      for o in report.engine.outcomes]
    assert [row[0] for row in stored[-4:]] == ["n", "u", "t", "a"]
    assert stored[-4:] == [("n", "required", "error", 3, 1, 0, 0, "fail"),
                           ("u", "unique", "warning", 3, 2, 0, 0, "warn"),
                           ("t", "trim", "warning", 3, 0, 1, 0, "pass"),
                           ("a", "range", "error", 3, 1, 0, 0, "fail")]
