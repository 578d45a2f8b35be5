"""Tests of the `trim` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_trim_collapses_spaces_tabs_nbsp_and_newlines(run: Run) -> None:
    r = run({"s": ["  a \t b\u00a0 c  ", "x", None, "\u3000y\u3000", "a\nb", ""]},
            "rules: [{name: t, kind: trim, column: s}]")
    assert r.column("s") == ["a b c", "x", None, "y", "a b", ""]
    o = r.outcome("t")
    assert (o.fixed, o.failed, o.status, o.spec.severity, o.spec.action) == (3, 0, "pass", "warning", "fix")


def test_trim_with_action_flag_reports_instead_of_fixing(run: Run) -> None:
    r = run({"s": [" a", "b", "c  c"]}, "rules: [{name: t, kind: trim, column: s, action: flag}]")
    assert r.column("s") == [" a", "b", "c  c"]
    assert r.reasons("t") == [(1, "value not normalised"), (3, "value not normalised")]
    assert r.outcome("t").status == "warn"  # default severity warning
