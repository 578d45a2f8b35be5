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


def test_unique_flag_skips_repeated_blank_keys_and_keys_with_a_blank_part(run: Run) -> None:
    # the repeated keys are found by GROUP BY and blank ones dropped there: "", NULL and spaces
    # repeated twice each are no duplicate, nor is a two-column key with a blank column
    r = run({"id": ["", "", None, None, "  ", "  ", "7", "7"]}, "rules: [{name: u, kind: unique, column: id}]")
    assert r.failing("u") == [7, 8]
    r = run({"a": ["1", "1", "1", "1", None, None], "b": ["", "", "x", "x", "y", "y"]},
            "rules: [{name: u, kind: unique, columns: [a, b]}]")
    assert r.failing("u") == [3, 4]
