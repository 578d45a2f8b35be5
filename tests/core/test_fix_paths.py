"""Fixes on distinct values or row by row (decision 0004, 2026-12-02): the path is chosen per
column from the data and never changes what a run gives, only its time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from crmtool import engine
from crmtool.engine import CHANGES, VIOLATIONS, run_rules
from crmtool.rulefile import load_rules
from crmtool.workspace import Workspace
from sqlrecording import Recording

RULES = """
rules:
  - {name: trim, kind: trim, columns: [id, name, email, phone, nif, country, amount]}
  - {name: trim_flag, kind: trim, column: note, action: flag}
  - {name: moji, kind: mojibake, column: name}
  - {name: nfc, kind: unicode_nfc, column: name}
  - {name: title, kind: case, to: title, column: name}
  - {name: upper, kind: case, to: upper, column: country}
  - {name: lower, kind: case, to: lower, column: id}
  - {name: mail_norm, kind: email_normalise, column: email}
  - {name: mail, kind: email, column: email, action: fix}
  - {name: tel, kind: phone, column: phone, region: ES, action: fix}
  - {name: dni, kind: national_id, column: nif, type: nif, action: fix}
  - {name: money, kind: decimal, column: amount, decimal_comma: true}
  - {name: day, kind: date, column: d, formats: ['%d/%m/%Y'], action: fix}
  - {name: typed_day, kind: date, column: born, action: fix}
  - {name: es_upper, kind: case, to: lower, column: note, where: "country = 'ES'"}
"""

BASE: list[tuple[Any, ...]] = [
    (" C1 ", " josé  PÉREZ", " ANA@Example.COM ", "600 12 34 56", "12345678z", " es", "1.234,5", "31/12/2020",
     "2001-02-03", " a  b "),
    ("c2", "MuÃ±oz", "mailto:<b@x.es>", "+34 912 345 678", "X1234567L", "ES", "12,50", "31/02/2020", None, "ok"),
    (None, None, None, None, None, None, None, None, None, None),
    ("", "", "", "", "", "", "", "", "1999-12-31", ""),
    ("C3\u00a0", "e\u0301va", "not an email", "123", "00000000A", "pt ", "abc", "01/01/1990", "1990-01-01", "x\ty"),
]
COLUMNS = ["id", "name", "email", "phone", "nif", "country", "amount", "d", "born", "note"]


def _table(ws: Workspace, copies: int) -> str:
    cols = ", ".join(f'"{c}" {"DATE" if c == "born" else "VARCHAR"}' for c in COLUMNS)
    ws.con.execute(f"CREATE OR REPLACE TABLE t ({cols})")
    rows = []
    for i in range(copies):  # repeats, plus one value per copy that makes the id column near-unique
        for r in BASE:
            rows.append((f" C{i:05d} " if r[0] == "c2" else r[0], *r[1:]))
    ws.con.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in COLUMNS)})", rows)
    ws.con.execute("CREATE OR REPLACE TABLE data_t AS SELECT rowid + 1 AS _row, * FROM t")
    return "data_t"


def _outcome(ws: Workspace, tmp_path: Path, copies: int) -> tuple[Any, ...]:
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES, encoding="utf-8")
    result = run_rules(ws.con, _table(ws, copies), load_rules(rules),
                       recorded_as=lambda column, value: f"'{column}:' || {value}")
    work = ws.con.execute(f"SELECT * FROM {result.work_table} ORDER BY _row").fetchall()
    changes = ws.con.execute(f"SELECT * FROM {CHANGES} ORDER BY ALL").fetchall()
    violations = ws.con.execute(f"SELECT * FROM {VIOLATIONS} ORDER BY ALL").fetchall()
    counts = [(o.fixed, o.failed, o.status, o.reasons) for o in result.outcomes]
    return work, changes, violations, counts


PATHS = {
    "distinct": (0, 2.0),  # no table is small, no column near-unique enough
    "pure_sql_row_wise": (0, 0.0),  # every column whose fixes are SQL alone row by row, the rest distinct
    "all_row_wise": (10**9, 2.0),  # every table small: every column row by row
}


@pytest.mark.parametrize("copies", [1, 7])
def test_every_fix_path_gives_the_same_run(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           copies: int) -> None:
    results = {}
    for name, (up_to, share) in PATHS.items():
        monkeypatch.setattr(engine, "ROW_WISE_UP_TO", up_to)
        monkeypatch.setattr(engine, "ROW_WISE_SHARE", share)
        results[name] = _outcome(ws, tmp_path, copies)
    work, changes, violations, _counts = results["distinct"]
    assert len(changes) > 10 * copies and violations  # the data exercises the fixes and flags
    assert ("Muñoz",) in {(r[2],) for r in work} and ("+34600123456",) in {(r[4],) for r in work}
    assert results["pure_sql_row_wise"] == results["distinct"]
    assert results["all_row_wise"] == results["distinct"]


def test_a_small_table_builds_no_table_of_distinct_values(ws: Workspace, tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES, encoding="utf-8")
    table = _table(ws, 2)
    con = Recording(ws.con)
    run_rules(con, table, load_rules(rules))  # type: ignore[arg-type]
    assert not [s for s in con.sql if "__dist_" in s]
    # one statement fixes every column (Python kinds map their distinct values through a view)
    rowfix = [s for s in con.sql if s.startswith("CREATE OR REPLACE TEMP TABLE __rowfix_")]
    assert len(rowfix) == 1
    # each column's levels alone, side by side (one nest of every level of every column binds
    # far more): as many chains as columns, each starting from the loaded rows
    assert " UNION ALL BY NAME " in rowfix[0]
    assert rowfix[0].count(" UNION ALL BY NAME ") == len(set(re.findall(r"__v([0-9]+)\b", rowfix[0]))) - 1 > 3
    # a Python step maps the values of a level table, from which the column's next levels go on
    # (a view would bind every level below it again for each step)
    levels = [s for s in con.sql if s.startswith("CREATE OR REPLACE TEMP TABLE __level_")]
    assert levels and not [s for s in con.sql if "TEMP VIEW" in s]
    assert any("FROM __level_" in s for s in levels[1:])


def test_the_path_is_chosen_per_column_from_the_data(ws: Workspace, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "ROW_WISE_UP_TO", 10)
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES, encoding="utf-8")
    table = _table(ws, 200)  # 1,000 rows: id near-unique (a fresh id in every fifth row, the rest repeat)
    steps = engine._fix_steps(load_rules(rules))
    # 205 distinct ids of 1,000 rows: not near-unique
    assert engine._row_wise_columns(ws.con, table, steps, 1000) == []
    ws.con.execute("UPDATE data_t SET id = 'C' || _row")  # now every id differs
    # id (trim, lower: SQL alone) goes row by row; phone and email are near-unique too, but their
    # fixes run Python per value and stay on distinct values; the low-cardinality columns as well
    monkeypatch.setattr(engine, "ROW_WISE_SHARE", 0.55)
    assert engine._row_wise_columns(ws.con, table, steps, 1000) == ["id"]
    con = Recording(ws.con)
    run_rules(con, table, load_rules(rules))  # type: ignore[arg-type]
    distinct_of = [s for s in con.sql if s.startswith("CREATE OR REPLACE TEMP TABLE __dist_") and "DISTINCT" in s]
    assert distinct_of and not [s for s in distinct_of if 'w."id"' in s]


def test_a_small_table_is_checked_row_by_row(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: day, kind: date, column: d, formats: ['%d/%m/%Y']}\n"
                     "  - {name: two, kind: regex, column: country, pattern: '[A-Z]{2}'}\n", encoding="utf-8")
    table = _table(ws, 4)  # 20 rows, few distinct values
    runs = {}
    for up_to in (0, 10_000):
        monkeypatch.setattr(engine, "ROW_WISE_UP_TO", up_to)
        con = Recording(ws.con)
        run_rules(con, table, load_rules(rules))  # type: ignore[arg-type]
        runs[up_to] = ([s for s in con.sql if "__chk_" in s or "approx_count_distinct" in s],
                       ws.con.execute(f"SELECT * FROM {VIOLATIONS} ORDER BY ALL").fetchall())
    assert runs[0][0] and not runs[10_000][0]  # distinct-value tables only for a table that is not small
    assert runs[0][1] == runs[10_000][1] and runs[0][1]
