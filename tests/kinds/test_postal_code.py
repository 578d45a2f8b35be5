"""Tests of the `postal_code` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = Callable[..., Any]


def test_postal_code_by_country_column_and_fixed_country(run: Run) -> None:
    data = {"pc": ["28001", "53000", "00123", "2800", "", "1000-100", "SW1A 1AA", "sw1a 1aa", "12345-6789",
                   "X"],
            "cc": ["ES", "ES", "ES", "ES", "ES", "PT", "GB", "GB", "US", "ZZ"]}
    r = run(data, """
rules:
  - {name: by_col, kind: postal_code, column: pc, country_column: cc}
  - {name: es, kind: postal_code, column: pc, country: ES}
""")
    assert r.failing("by_col") == [2, 3, 4]  # ZZ has no pattern: passes
    assert r.failing("es") == [2, 3, 4, 6, 7, 8, 9, 10]
    assert r.reasons("by_col")[0] == (2, "not a postal code of the country")
