"""Tests of the `regex` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_regex_whole_value_and_message(run: Run) -> None:
    r = run({"id": ["C0000001", "C12", "xC0000001", "", None]},
            "rules: [{name: x, kind: regex, column: id, pattern: 'C[0-9]{7}', message: bad id}]")
    assert r.reasons("x") == [(2, "bad id"), (3, "bad id")]
