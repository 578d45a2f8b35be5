"""How the engine checks without fixing: no working copy for validate, near-unique columns row by row."""

from __future__ import annotations

from pathlib import Path

from crmtool.engine import VIOLATIONS, _check_on_distinct, _distinct_estimates, create_result_tables, run_rules
from crmtool.kinds.base import PlanContext
from crmtool.rulefile import load_rules
from crmtool.workspace import Workspace

CHECKS = """
rules:
  - {name: need_name, kind: required, column: name}
  - {name: id_once, kind: unique, column: id}
  - {name: id_shape, kind: regex, column: id, pattern: 'C[0-9]+'}
  - {name: country_ok, kind: allowed, column: country, values: [ES, PT]}
  - {name: age_ok, kind: range, column: age, min: 18, max: 99}
"""

ROWS = [("C1", "Ana", "ES", "30"), ("C2", None, "FR", "7"), ("C2", "Luis", "ES", "40"), ("X3", " ", "PT", "abc"),
        ("C4", "Eva", "", "18"), ("C5", "Leo", "ES", "100")]


def _table(ws: Workspace, name: str = "data_t") -> str:
    ws.con.execute("CREATE TABLE t (id VARCHAR, name VARCHAR, country VARCHAR, age VARCHAR)")
    ws.con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", ROWS)
    ws.con.execute(f"CREATE TABLE {name} AS SELECT rowid + 1 AS _row, * FROM t")
    return name


def _rules(tmp_path: Path, text: str = CHECKS) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _violations(ws: Workspace) -> list[tuple[object, ...]]:
    return ws.con.execute(f'SELECT rule, _row, "column", reason FROM {VIOLATIONS} ORDER BY ALL').fetchall()


def _tables(ws: Workspace) -> set[str]:
    return {r[0] for r in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_without_fixes_checks_read_the_loaded_table_and_make_no_copy(ws: Workspace, tmp_path: Path) -> None:
    table = _table(ws)
    rules = load_rules(_rules(tmp_path))
    copied = run_rules(ws.con, table, rules, work_table="work_t")
    copied_outcomes = [o.as_dict() | {"seconds": 0} for o in copied.outcomes]
    copied_violations = _violations(ws)
    assert copied.work_table == "work_t" and "work_t" in _tables(ws)

    checked = run_rules(ws.con, table, rules, work_table="work_t", copy_unchanged=False)
    assert checked.work_table == table
    assert "work_t" not in _tables(ws)  # the copy of the run before is not left behind as this run's
    assert [o.as_dict() | {"seconds": 0} for o in checked.outcomes] == copied_outcomes
    assert _violations(ws) == copied_violations
    assert [o.failed for o in checked.outcomes] == [2, 2, 1, 1, 3]
    assert ws.con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(len(ROWS),)]


def test_fixes_still_make_the_working_copy_when_no_copy_is_asked(ws: Workspace, tmp_path: Path) -> None:
    table = _table(ws)
    rules = load_rules(_rules(tmp_path, CHECKS + "  - {name: trim_name, kind: trim, column: name}\n"))
    result = run_rules(ws.con, table, rules, work_table="work_t", copy_unchanged=False)
    assert result.work_table == "work_t"
    assert ws.con.execute("SELECT name FROM work_t ORDER BY _row").fetchall()[3] == ("",)
    assert ws.con.execute(f"SELECT name FROM {table} ORDER BY _row").fetchall()[3] == (" ",)  # loaded rows as read


def test_estimates_send_near_unique_columns_to_the_row_path(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute("CREATE TABLE data_u AS SELECT i + 1 AS _row, 'C' || i AS id, "
                   "CASE WHEN i % 2 = 0 THEN 'ES' ELSE 'PT' END AS country FROM range(2000) r(i)")
    rules = load_rules(_rules(tmp_path, """
rules:
  - {name: id_shape, kind: regex, column: id, pattern: 'C[0-9]+'}
  - {name: country_ok, kind: allowed, column: country, values: [ES]}
"""))
    estimates = _distinct_estimates(ws.con, "data_u", rules)
    assert estimates["country"] == 2 and estimates["id"] > 1500  # HyperLogLog: near, not exact
    ctx = PlanContext(ws.con, "data_u")
    create_result_tables(ws.con)  # the engine's changes and violations tables (in crm_scratch)
    before = _tables(ws)
    # near-unique by the estimate: declined before any table of distinct values is built
    assert not _check_on_distinct(ws.con, ctx, "data_u", 0, rules.rules[0], 2000, estimates["id"])
    assert _tables(ws) == before
    # few distinct values: checked once per value, the failures joined back to every row
    assert _check_on_distinct(ws.con, ctx, "data_u", 1, rules.rules[1], 2000, estimates["country"])
    assert ws.con.execute(f"SELECT count(*), min(_row) FROM {VIOLATIONS} WHERE rule = 1").fetchall() == [(1000, 2)]
    # without an estimate the exact count decides, as before
    assert not _check_on_distinct(ws.con, ctx, "data_u", 0, rules.rules[0], 2000)
