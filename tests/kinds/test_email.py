"""Tests of the `email` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_email_syntax_fix_and_reasons_without_values(run: Run) -> None:
    values = ["ana@example.com", "bad@", "x@@y.com", "ANA@EXAMPLE.COM", "", None, "a@b", "José@correo.es"]
    r = run({"e": values}, "rules: [{name: e, kind: email, column: e, action: fix}]")
    assert r.column("e")[3] == "ANA@example.com"  # the domain is lower-cased, the local part kept
    assert r.failing("e") == [2, 3, 7]
    assert all(reason.startswith("syntax:") and "@" not in reason for _, reason in r.reasons("e"))
