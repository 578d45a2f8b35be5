"""Tests of the `required` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_required(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: q, kind: required, column: id}]")
    assert r.reasons("q") == [(4, "missing value"), (5, "missing value")]
    assert (r.outcome("q").status, r.outcome("q").rejected) == ("fail", 0)


def test_required_reject_with_warning_severity(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: q, kind: required, column: id, action: reject, severity: warning}]")
    assert r.rejected() == [4, 5]
    assert (r.outcome("q").status, r.outcome("q").rejected) == ("warn", 2)
    assert not r.result.failed  # a warning never fails the run
    assert r.result.rejected_rows == 2
