"""A small table (``engine.ROW_WISE_UP_TO`` rows at most) takes fewer statements than a large
one, with the same results (issue 19: a 10-row validate under 0.5 s). Each test counts the
statements of the thing it keeps from creeping back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crmtool import engine
from crmtool.engine import VIOLATIONS, run_rules
from crmtool.errors import ConfigError
from crmtool.rulefile import load_rules
from crmtool.workspace import Workspace
from sqlrecording import Recording

CHECKS = """
rules:
  - {name: need_id, kind: required, column: id}
  - {name: one_id, kind: unique, column: id, action: reject}
  - {name: two, kind: regex, column: country, pattern: '[A-Z]{2}', severity: warning}
  - {name: adult, kind: range, column: age, min: 18, where: "country = 'ES'"}
  - {name: known, kind: allowed, column: country, values: [ES, PT]}
  - {name: tel, kind: phone, column: phone, region: ES}
"""
ROWS = [("C1", "ES", 30, "600123456"), ("C1", "es", 7, "12"), (None, "PT", 15, None),
        ("C2", "FRA", 40, "+34 912 345 678")]


def _table(ws: Workspace, copies: int = 1) -> str:
    ws.con.execute("CREATE OR REPLACE TABLE data_t (_row BIGINT, id VARCHAR, country VARCHAR, age INTEGER, "
                   "phone VARCHAR)")
    ws.con.executemany("INSERT INTO data_t VALUES (?, ?, ?, ?, ?)",
                       [(n + 1, *row) for n, row in enumerate(ROWS * copies)])
    return "data_t"


def _run(ws: Workspace, tmp_path: Path, text: str) -> tuple[list[str], list[Any], list[Any]]:
    rules = tmp_path / "r.yaml"
    rules.write_text(text, encoding="utf-8")
    con = Recording(ws.con)
    result = run_rules(con, _table(ws), load_rules(rules))  # type: ignore[arg-type]
    violations = ws.con.execute(f"SELECT * FROM {VIOLATIONS} ORDER BY ALL").fetchall()
    outcomes = [(o.failed, o.rejected, o.status, o.reasons, o.sample_rows) for o in result.outcomes]
    return con.sql, violations, outcomes


def test_a_small_tables_checks_run_in_one_insert(ws: Workspace, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    small_sql, small_violations, small_outcomes = _run(ws, tmp_path, CHECKS)
    inserts = [s for s in small_sql if s.startswith(f"INSERT INTO {VIOLATIONS}")]
    assert len(inserts) == 1 and inserts[0].count(" UNION ALL ") == 5  # six rules, one statement
    monkeypatch.setattr(engine, "ROW_WISE_UP_TO", 0)  # the same rows as a large table: a statement per rule
    large_sql, large_violations, large_outcomes = _run(ws, tmp_path, CHECKS)
    assert len([s for s in large_sql if s.startswith(f"INSERT INTO {VIOLATIONS}")]) >= 6
    assert small_violations == large_violations and len({v[0] for v in small_violations}) == 5  # adult: none
    assert small_outcomes == large_outcomes


def test_a_check_failing_on_a_small_tables_data_still_names_its_rule(ws: Workspace, tmp_path: Path) -> None:
    _sql, violations, _outcomes = _run(ws, tmp_path, CHECKS)
    with pytest.raises(ConfigError) as raised:
        _run(ws, tmp_path, CHECKS + '  - {name: bad, kind: sql, expr: "CAST(country AS INTEGER) > 0"}\n')
    assert "rule 'bad': fails on the data" in str(raised.value) and "need_id" not in str(raised.value)
    # the rules before it were recorded, as one by one
    assert ws.con.execute(f"SELECT * FROM {VIOLATIONS} ORDER BY ALL").fetchall() == violations != []
