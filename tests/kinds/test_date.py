"""Tests of the `date` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

Run = Callable[..., Any]


DATE_RULE = """
rules:
  - name: d
    kind: date
    column: d
    formats: ['%d/%m/%Y']
    excel_serial: true
    not_future: true
    min: '1900-01-01'
    action: {action}
"""


def test_date_fix_writes_iso_and_flags_impossible_future_and_too_old(run: Run) -> None:
    future = (date.today() + timedelta(days=400)).strftime("%d/%m/%Y")
    values = ["31/02/2020", "31/12/1990", "33238", future, "", None, "1990-12-31", "garbage", "29/02/2024",
              "01/01/1899"]
    r = run({"d": values}, DATE_RULE.format(action="fix"))
    fixed = r.column("d")
    assert fixed[:3] == ["31/02/2020", "1990-12-31", "1990-12-31"]  # Excel serial 33238 is 1990-12-31
    assert fixed[4:9] == ["", None, "1990-12-31", "garbage", "2024-02-29"]
    assert r.reasons("d") == [(1, "not a date in the accepted formats"), (4, "date in the future"),
                              (8, "not a date in the accepted formats"), (10, "date before 1900-01-01")]


def test_date_flag_does_not_change_values(run: Run) -> None:
    r = run({"d": ["31/12/1990", "31/02/2020", "1990-12-31"]}, DATE_RULE.format(action="flag"))
    assert r.column("d") == ["31/12/1990", "31/02/2020", "1990-12-31"]
    # with flag, only the declared formats are accepted
    assert r.reasons("d") == [(2, "not a date in the accepted formats"),
                              (3, "not a date in the accepted formats")]


def test_date_default_formats_and_max(run: Run) -> None:
    r = run({"d": ["2020-01-31", "31/01/2020", "2030-01-01", "2020/01/31"]},
            "rules: [{name: d, kind: date, column: d, max: '2025-12-31'}]")
    assert r.reasons("d") == [(3, "date after 2025-12-31"), (4, "not a date in the accepted formats")]


def test_date_declared_formats_win_over_excel_serials_and_years_are_not_serials(run: Run) -> None:
    r = run({"d": ["1985", "33238", "44927.5"], "y": ["1985", "2001", "33238"]}, """
rules:
  - {name: d, kind: date, column: d, formats: ['%d/%m/%Y'], excel_serial: true, action: fix}
  - {name: y, kind: date, column: y, formats: ['%Y'], excel_serial: true, action: fix}
""")
    assert r.column("d") == ["1985", "1990-12-31", "2023-01-01"]
    assert r.reasons("d") == [(1, "not a date in the accepted formats")]
    assert r.column("y")[:2] == ["1985-01-01", "2001-01-01"]
