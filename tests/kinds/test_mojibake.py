"""Tests of the `mojibake` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_mojibake_is_repaired_and_clean_text_untouched(run: Run) -> None:
    r = run({"n": ["MuÃ±oz", "JosÃ©", "Muñoz", "plain", "", None, "Ã\x81lvaro", "PeÃ±a NÃºÃ±ez"]},
            "rules: [{name: m, kind: mojibake, column: n}]")
    assert r.column("n") == ["Muñoz", "José", "Muñoz", "plain", "", None, "Álvaro", "Peña Núñez"]
    assert r.outcome("m").fixed == 4
