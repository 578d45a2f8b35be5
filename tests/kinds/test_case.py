"""Tests of the `case` kind: fixes, checks and reasons on tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[..., Any]


@pytest.mark.parametrize(("to", "expected"), [
    ("lower", ["josé maría de la fuente", "o'neill", None]),
    ("upper", ["JOSÉ MARÍA DE LA FUENTE", "O'NEILL", None]),
    ("title", ["José María de la Fuente", "O'Neill", None]),
])
def test_case(run: Run, to: str, expected: list[str | None]) -> None:
    r = run({"n": ["JOSÉ MARÍA DE LA FUENTE", "o'neill", None]},
            f"rules: [{{name: c, kind: case, column: n, to: {to}}}]")
    assert r.column("n") == expected


def test_title_case_keeps_spanish_particles_lower_except_first_word(run: Run) -> None:
    values = ["JOSÉ MARÍA DE LA FUENTE-LÓPEZ", "maría del carmen y lópez", "DE LA CRUZ", "van der berg",
              "  ana   luz ", "d’angelo DE LOS RÍOS", ""]
    r = run({"n": values}, "rules: [{name: c, kind: case, column: n, to: title}]")
    assert r.column("n") == ["José María de la Fuente-López", "María del Carmen y López", "De la Cruz",
                             "Van der Berg", "Ana Luz", "D’Angelo de los Ríos", ""]
