"""Tests of the `phone` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_phone_fix_to_e164_with_default_region_and_invalid_flagged(run: Run) -> None:
    values = ["600 12 34 56", "+34 600123456", "0034600123456", "12345", "", None, "+44 20 7946 0958", "abc",
              "612-345-678", "+1 202 555 0143"]
    r = run({"p": values}, "rules: [{name: p, kind: phone, column: p, action: fix}]")
    assert r.column("p") == ["+34600123456", "+34600123456", "+34600123456", "12345", "", None,
                             "+442079460958", "abc", "+34612345678", "+12025550143"]
    assert r.reasons("p") == [(4, "not a valid phone number"), (8, "not a valid phone number")]


def test_phone_region_column(run: Run) -> None:
    r = run({"p": ["202 555 0143", "600123456", "020 7946 0958", "600123456"], "cc": ["US", "es", "GB", ""]},
            "rules: [{name: p, kind: phone, column: p, region_column: cc, action: fix}]")
    assert r.column("p") == ["+12025550143", "+34600123456", "+442079460958", "+34600123456"]


def test_phone_flag_only_checks(run: Run) -> None:
    r = run({"p": ["600 12 34 56", "123"]}, "rules: [{name: p, kind: phone, column: p, region: ES}]")
    assert r.column("p") == ["600 12 34 56", "123"]
    assert r.failing("p") == [2]
