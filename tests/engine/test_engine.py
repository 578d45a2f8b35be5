"""The engine: fixes on distinct values equal fixes row by row; checks see fixed values."""

from __future__ import annotations

from pathlib import Path

from crmtool.engine import CHANGES, VIOLATIONS, run_rules
from crmtool.rulefile import load_rules
from crmtool.workspace import Workspace


def _table(ws: Workspace, rows: list[tuple[str | None, ...]], cols: list[str]) -> str:
    ws.con.execute("CREATE TABLE t (" + ", ".join(f'"{c}" VARCHAR' for c in cols) + ")")
    ws.con.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in cols)})", rows)
    ws.con.execute("CREATE TABLE data_t AS SELECT rowid + 1 AS _row, * FROM t")
    return "data_t"


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


RULES = """
rules:
  - {name: trim, kind: trim, column: name}
  - {name: title, kind: case, to: title, column: name}
  - {name: upper_es, kind: case, to: upper, column: country, where: "country ILIKE 'es%'"}
  - {name: need_name, kind: required, column: name, action: reject}
"""


def test_chained_fixes_on_distinct_values_record_each_step(ws: Workspace, tmp_path: Path) -> None:
    table = _table(ws, [("  ana  pérez ", "es"), ("  ana  pérez ", "pt"), ("LUIS", "Es"), ("", "es"), (None, "fr")],
                   ["name", "country"])
    result = run_rules(ws.con, table, load_rules(_rules(tmp_path, RULES)))
    rows = ws.con.execute(f"SELECT name, country FROM {result.work_table} ORDER BY _row").fetchall()
    assert rows == [("Ana Pérez", "ES"), ("Ana Pérez", "pt"), ("Luis", "ES"), ("", "ES"), (None, "fr")]
    changes = ws.con.execute(f"SELECT rule, _row, old, new FROM {CHANGES} ORDER BY rule, _row").fetchall()
    assert changes == [
        (0, 1, "  ana  pérez ", "ana pérez"), (0, 2, "  ana  pérez ", "ana pérez"),
        (1, 1, "ana pérez", "Ana Pérez"), (1, 2, "ana pérez", "Ana Pérez"), (1, 3, "LUIS", "Luis"),
        (2, 1, "es", "ES"), (2, 3, "Es", "ES"), (2, 4, "es", "ES"),
    ]
    assert [o.fixed for o in result.outcomes] == [2, 3, 3, 0]
    # the required check ran on fixed values: the blank and the NULL name are rejected
    assert ws.con.execute(f"SELECT _row FROM {VIOLATIONS} WHERE reject ORDER BY _row").fetchall() == [(4,), (5,)]
    assert result.rejected_rows == 2


def test_flag_normaliser_reports_without_changing(ws: Workspace, tmp_path: Path) -> None:
    table = _table(ws, [(" a ",), ("b",)], ["name"])
    rules = _rules(tmp_path, "rules:\n  - {name: trim, kind: trim, column: name, action: flag, severity: error}\n")
    result = run_rules(ws.con, table, load_rules(rules))
    assert ws.con.execute(f"SELECT name FROM {result.work_table} ORDER BY _row").fetchall() == [(" a ",), ("b",)]
    outcome = result.outcomes[0]
    assert (outcome.failed, outcome.fixed, outcome.status) == (1, 0, "fail")
    assert outcome.reasons == {"value not normalised": 1}
