"""Red team on the user-SQL wall: what the parser lets through is run on a real walled workspace."""

from __future__ import annotations

import pytest

from crmtool.usersql import expression_problems

COLUMNS = ["email", "x"]


@pytest.mark.parametrize("sql", [
    "list_transform([1], user -> 1)[1] = 1 AND user IS NOT NULL",
    "list_transform([1], current_role -> 1)[1] = 1 AND current_role = 'duckdb'",
    "list_filter([email], current_role -> true)[1] = current_role",
])
def test_a_lambda_parameter_name_does_not_admit_the_same_name_outside_the_lambda(sql: str) -> None:
    vetted, problems = expression_problems(sql, columns=COLUMNS)
    assert vetted is None and any(p.startswith("unknown column") for p in problems), problems


@pytest.mark.parametrize("sql", ["list_transform([email], e -> lower(e))[1] = 'a'",
                                 "list_filter([x], v -> list_transform([v], w -> w || v)[1] = x) = []"])
def test_a_lambda_parameter_inside_its_lambda_is_still_accepted(sql: str) -> None:
    vetted, problems = expression_problems(sql, columns=COLUMNS)
    assert problems == [] and vetted


def test_the_names_it_admitted_ran_duckdb_specials_on_a_walled_workspace() -> None:
    """What the hole let through: the session's role name, read by a rule. (Refused now, so this only
    shows that DuckDB would have run it.)"""
    from crmtool.workspace import Workspace

    with Workspace(":memory:") as ws:
        got = ws.con.execute('SELECT "current_role" IS NOT NULL, "user" IS NOT NULL').fetchall()
    assert got == [(True, True)]
