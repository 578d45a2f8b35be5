"""Tests of the `allowed` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_allowed_values_exact_and_ignoring_case_and_accents(run: Run) -> None:
    r = run(CHECK_DATA, """
rules:
  - {name: exact, kind: allowed, column: cc, values: [ES, FR, España]}
  - {name: folded, kind: allowed, column: cc, values: [ES, FR, España], ignore_case: true}
""")
    assert r.failing("exact") == [2, 3, 4, 6]
    assert r.reasons("folded") == [(6, "not an allowed value")]
