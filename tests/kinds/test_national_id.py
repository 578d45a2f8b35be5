"""Tests of the `national_id` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[..., Any]


def test_national_id_any_checks_letters_and_fixes_compact_form(run: Run) -> None:
    values = ["12345678Z", "12345678-z", "12345678A", "X1234567L", "X1234567A", "B12345674", "B12345670",
              "", None, "abc"]
    r = run({"n": values}, "rules: [{name: n, kind: national_id, column: n, action: fix}]")
    assert r.column("n")[:2] == ["12345678Z", "12345678Z"]
    assert r.failing("n") == [3, 5, 7, 10]
    assert r.reasons("n")[0] == (3, "not a valid NIF/NIE/CIF")


@pytest.mark.parametrize(("kind", "failing", "label"), [
    ("nif", [], "NIF"), ("nie", [1, 3], "NIE"), ("cif", [1, 2], "CIF"), ("dni", [2, 3], "DNI"),
])
def test_national_id_types(run: Run, kind: str, failing: list[int], label: str) -> None:
    r = run({"n": ["12345678Z", "X1234567L", "B12345674"]},
            f"rules: [{{name: n, kind: national_id, column: n, type: {kind}}}]")
    assert r.failing("n") == failing
    assert all(reason == f"not a valid {label}" for _, reason in r.reasons("n"))
