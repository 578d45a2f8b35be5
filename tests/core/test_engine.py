"""The engine: every fix path (distinct values, row by row) gives the same run; checks see fixed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtool.engine import CHANGES, VIOLATIONS, run_rules
from crmtool.kinds import KINDS
from crmtool.kinds.base import Kind
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



def test_changes_are_recorded_as_asked_on_both_fix_paths(ws: Workspace, tmp_path: Path) -> None:
    # the distinct-value path (name) and the row path (country, with a where) both apply it
    table = _table(ws, [("  ana  pérez ", "es"), ("LUIS", "Es"), (None, "fr")], ["name", "country"])
    result = run_rules(ws.con, table, load_rules(_rules(tmp_path, RULES)),
                       recorded_as=lambda column, value: f"'{column}:' || {value}")
    changes = ws.con.execute(f"SELECT rule, _row, old, new FROM {CHANGES} ORDER BY rule, _row").fetchall()
    assert changes == [
        (0, 1, "name:  ana  pérez ", "name:ana pérez"),
        (1, 1, "name:ana pérez", "name:Ana Pérez"), (1, 2, "name:LUIS", "name:Luis"),
        (2, 1, "country:es", "country:ES"), (2, 2, "country:Es", "country:ES"),
    ]
    # the working table keeps the fixed values themselves
    rows = ws.con.execute(f"SELECT name, country FROM {result.work_table} ORDER BY _row").fetchall()
    assert rows == [("Ana Pérez", "ES"), ("Luis", "ES"), (None, "fr")]

def test_flag_normaliser_reports_without_changing(ws: Workspace, tmp_path: Path) -> None:
    table = _table(ws, [(" a ",), ("b",)], ["name"])
    rules = _rules(tmp_path, "rules:\n  - {name: trim, kind: trim, column: name, action: flag, severity: error}\n")
    result = run_rules(ws.con, table, load_rules(rules))
    assert ws.con.execute(f"SELECT name FROM {result.work_table} ORDER BY _row").fetchall() == [(" a ",), ("b",)]
    outcome = result.outcomes[0]
    assert (outcome.failed, outcome.fixed, outcome.status) == (1, 0, "fail")
    assert outcome.reasons == {"value not normalised": 1}


CHECKS = """
rules:
  - {name: day, kind: date, column: d, formats: ['%d/%m/%Y'], not_future: true, action: reject}
  - {name: amount, kind: range, column: a, min: 0, max: 100}
  - {name: code, kind: regex, column: c, pattern: '[A-Z]{2}'}
  - {name: cp, kind: postal_code, column: p, country: ES}
  - {name: cp_where, kind: postal_code, column: p, country: ES, where: "c = 'ES'"}
"""


def _violations(ws: Workspace) -> list[tuple[object, ...]]:
    return ws.con.execute(f"SELECT rule, _row, \"column\", reason, reject FROM {VIOLATIONS} ORDER BY ALL").fetchall()


def test_value_only_checks_on_distinct_values_equal_the_row_path(ws: Workspace, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # few distinct values over many rows, NULLs and blanks included: the engine takes the distinct path
    # (were the table not small: small tables are checked row by row)
    from crmtool import engine

    monkeypatch.setattr(engine, "ROW_WISE_UP_TO", 0)
    base = [("31/02/2020", "5", "ES", "28001"), ("01/01/2020", "-1", "es", "2800"), (None, None, None, None),
            ("", " ", "", ""), ("01/01/2999", "1.000,5", "FR", "08001"), ("15/06/1990", "abc", "ES", "X")]
    table = _table(ws, [base[i % len(base)] for i in range(60)], ["d", "a", "c", "p"])
    rules = load_rules(_rules(tmp_path, CHECKS))
    run_rules(ws.con, table, rules)
    distinct = _violations(ws)
    assert {r[0] for r in distinct} == {0, 1, 2, 3, 4}  # every rule has failures
    assert len(distinct) == 90
    for kind in {type(k) for k in KINDS.values()}:  # now every check runs row by row
        monkeypatch.setattr(kind, "checks_value_only", Kind.checks_value_only)
    run_rules(ws.con, table, rules)
    assert _violations(ws) == distinct


def test_fix_then_check_of_one_kind_map_each_value_once(ws: Workspace, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from crmtool.kinds import national_id

    calls: list[str] = []
    real = national_id.es_id_verdict.__wrapped__

    def counted(value: str, kind: str) -> tuple[str | None]:
        calls.append(value)
        return real(value, kind)

    monkeypatch.setattr(national_id, "es_id_verdict", counted)
    # CIFs take the Python path (the SQL fast path decides DNI/NIE shapes only)
    table = _table(ws, [("a58818501",), ("A58818501",), ("Q123",), ("a58818501",)], ["id"])
    rules = _rules(tmp_path, "rules:\n  - {name: cif, kind: national_id, column: id, type: cif, action: fix}\n")
    result = run_rules(ws.con, table, load_rules(rules))
    assert ws.con.execute(f"SELECT id FROM {result.work_table} ORDER BY _row").fetchall() == [
        ("A58818501",), ("A58818501",), ("Q123",), ("A58818501",)]
    # the fix mapped the three distinct values; the check (on fixed values) mapped nothing new
    assert sorted(calls) == ["A58818501", "Q123", "a58818501"]
    assert result.outcomes[0].failed == 1
