"""Tests of the `email_normalise` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_email_normalise(run: Run) -> None:
    r = run({"e": [" <MAILTO:Ana@Example.COM> ", "a b@x.com", "ok@x.es", None, "  ", "Ñu@X.ES"]},
            "rules: [{name: e, kind: email_normalise, column: e}]")
    assert r.column("e") == ["ana@example.com", "ab@x.com", "ok@x.es", None, "", "ñu@x.es"]
