"""Rule options every kind shares: where, thresholds, severities, actions, fix-then-check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[..., Any]


CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_where_limits_checked_rows(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: w, kind: required, column: cc, where: \"id = '3'\"}]")
    assert r.failing("w") == [7, 8]
    assert r.outcome("w").checked == 3


def test_where_limits_fixes(run: Run) -> None:
    r = run({"id": ["1", "2"], "n": ["ANA", "BO"]},
            "rules: [{name: c, kind: case, column: n, to: lower, where: \"id = '2'\"}]")
    assert r.column("n") == ["ANA", "bo"]
    assert r.outcome("c").fixed == 1


@pytest.mark.parametrize(("threshold", "error_status", "warning_status"), [
    ("2", "fail", "warn"), ("3", "pass", "pass"), ("'2%'", "fail", "warn"), ("'3%'", "pass", "pass"),
    ("'2.5%'", "fail", "warn"), ("0", "fail", "warn"),
])
def test_thresholds_count_and_percent(run: Run, threshold: str, error_status: str,
                                      warning_status: str) -> None:
    data = {"x": ["a"] * 97 + [""] * 3}  # 3 failures in 100 rows
    r = run(data, f"""
rules:
  - {{name: e, kind: required, column: x, threshold: {threshold}}}
  - {{name: w, kind: required, column: x, threshold: {threshold}, severity: warning}}
""")
    assert (r.outcome("e").status, r.outcome("w").status) == (error_status, warning_status)
    assert r.result.failed is (error_status == "fail")
    assert r.outcome("e").failed == 3


def test_reject_rows_are_the_union_over_rules(run: Run) -> None:
    r = run(CHECK_DATA, """
rules:
  - {name: q, kind: required, column: id, action: reject}
  - {name: u, kind: unique, column: id, action: reject}
  - {name: r, kind: range, column: v, min: 0, max: 100}
""")
    assert r.rejected() == [3, 4, 5, 7, 8]
    assert r.result.rejected_rows == 5
    assert r.failing("r") == [2, 3, 4]  # flagged, not rejected


def test_fix_then_check_sees_the_fixed_value(run: Run) -> None:
    r = run({"e": [" ANA@X.ES "]}, """
rules:
  - {name: n, kind: email_normalise, column: e}
  - {name: s, kind: regex, column: e, pattern: '[a-z@.]+'}
""")
    assert r.column("e") == ["ana@x.es"]
    assert r.failing("s") == []


@pytest.mark.parametrize(("rule", "failing"), [
    ("{name: x, kind: regex, column: id, pattern: '[0-9]'}", [3]),
    ("{name: x, kind: allowed, column: id, values: [1, 2]}", [3]),
    ("{name: x, kind: allowed, column: flag, values: [true]}", [2]),
    ("{name: x, kind: required, column: id}", []),
    ("{name: x, kind: unique, column: flag}", [1, 3]),
    ("{name: x, kind: range, column: amt, min: 0}", [2]),
    ("{name: x, kind: date, column: d, not_future: true}", [2]),
    ("{name: x, kind: postal_code, column: pc}", [2]),
    ("{name: x, kind: phone, column: phone}", [2, 3]),
])
def test_checks_on_typed_columns_as_parquet_gives_them(ws: Any, tmp_path: Any, rule: str, failing: list[int]) -> None:
    from crmtool.engine import VIOLATIONS, run_rules
    from crmtool.rulefile import load_rules

    ws.con.execute("""CREATE TABLE typed AS SELECT * FROM (VALUES
        (1, 1, 28001, DATE '2020-01-01', 5.5, 600123456, true),
        (2, 2, 99999, DATE '2999-01-01', -1.0, 12, false),
        (3, 10, 28002, NULL, 0.0, 13, true)) v(_row, id, pc, d, amt, phone, flag)""")
    rules = tmp_path / "r.yaml"
    rules.write_text(f"rules:\n  - {rule}\n", encoding="utf-8")
    run_rules(ws.con, "typed", load_rules(rules))
    rows = ws.con.execute(f"SELECT DISTINCT _row FROM {VIOLATIONS} ORDER BY _row").fetchall()
    assert [r[0] for r in rows] == failing
