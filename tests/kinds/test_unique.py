"""Tests of the `unique` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_unique_flag_reports_every_row_of_a_repeated_key(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: u, kind: unique, column: id}]")
    assert r.failing("u") == [2, 3, 6, 7, 8]  # blank keys are skipped
    assert r.rejected() == []


def test_unique_reject_keeps_the_first_row_of_each_key(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: u, kind: unique, column: id, action: reject}]")
    assert r.rejected() == [3, 7, 8]
    assert r.reasons("u")[0] == (3, "repeats the key of an earlier row")


def test_unique_on_several_columns(run: Run) -> None:
    r = run({"a": ["1", "1", "1"], "b": ["x", "y", "x"]}, "rules: [{name: u, kind: unique, columns: [a, b]}]")
    assert r.failing("u") == [1, 3]
