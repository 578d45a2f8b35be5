"""Tests of the `unicode_nfc` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_unicode_nfc(run: Run) -> None:
    r = run({"s": ["Jose\u0301", "José", None]}, "rules: [{name: u, kind: unicode_nfc, column: s}]")
    assert r.column("s") == ["José", "José", None]
    assert r.outcome("u").fixed == 1
