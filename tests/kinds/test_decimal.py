"""Tests of the `decimal` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_decimal_comma_is_fixed_and_non_numbers_flagged(run: Run) -> None:
    r = run({"a": ["1.234,56", "1234,5", "12", "-3,5", "abc", "", None, "1,234.56", "€ 5,00", "1 234,56"]},
            "rules: [{name: d, kind: decimal, column: a}]")
    assert r.column("a") == ["1234.56", "1234.5", "12", "-3.5", "abc", "", None, "1234.56", "5.00", "1234.56"]
    assert r.reasons("d") == [(5, "not a number")]
    assert r.outcome("d").status == "fail"  # decimal defaults to severity error


def test_decimal_point_mode(run: Run) -> None:
    r = run({"a": ["1,234.56", "1234.5", "1.234,56"]},
            "rules: [{name: d, kind: decimal, column: a, decimal_comma: false}]")
    assert r.column("a") == ["1234.56", "1234.5", "1.234,56"]
    assert r.failing("d") == [3]
