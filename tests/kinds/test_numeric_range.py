"""Tests of the `numeric_range` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_numeric_range_reads_decimal_comma(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: r, kind: range, column: v, min: 0, max: 100}]")
    assert r.reasons("r") == [(2, "below 0"), (3, "above 100"), (4, "not a number")]
