"""Tests of the `sql` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_sql_cross_field_with_null_handling(run: Run) -> None:
    r = run(CHECK_DATA, """
rules:
  - {name: s, kind: sql, expr: "cc <> 'XX'", message: no XX}
  - {name: s_null, kind: sql, expr: "cc <> 'XX'", null_fails: true}
""")
    assert r.reasons("s") == [(6, "no XX")]
    assert r.reasons("s_null") == [(6, "condition not met: cc <> 'XX'"), (8, "condition not met: cc <> 'XX'")]
