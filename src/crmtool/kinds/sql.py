"""``sql``: a cross-field condition written in DuckDB SQL that every row must satisfy.

``expr`` is a boolean expression over the columns (e.g. ``signup_date <= last_order_date``).
A row fails when it is false; NULL counts as pass unless ``null_fails: true``. The expression
is parsed when the rule file is loaded (one expression, allowed functions only: see
:mod:`crmtool.usersql`) and checked against the data's columns and bound before anything runs.
"""

from typing import Any, ClassVar

from crmtool.kinds.base import Kind, PlanContext, RuleSpec
from crmtool.sqltext import ident, sql_str


def sql_parse_problem(expr: str) -> str | None:
    """The parser's verdict on a user expression (columns not yet known): None when accepted."""
    from crmtool.usersql import expression_problems

    _vetted, problems = expression_problems(expr, columns=None)
    return "; ".join(problems) or None


class Sql(Kind):
    name = "sql"
    summary = "A DuckDB SQL boolean expression every row must satisfy (cross-field checks)."
    options_schema: ClassVar[dict[str, Any]] = {
        "expr": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
        "null_fails": {"type": "boolean"},
    }
    required_options = ("expr",)
    columns = "none"
    sql_options = ("expr",)  # vetted by the rule loader (crmtool.usersql), then bound against the data

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        expr = spec.opt("expr")
        cond = f"NOT coalesce(({expr}), {'false' if spec.opt('null_fails') else 'true'})"
        message = sql_str(spec.opt("message", f"condition not met: {expr}"))
        label = spec.columns[0] if spec.columns else ""
        return (f"SELECT t._row, {sql_str(label)} AS \"column\", {message} AS reason "
                f"FROM (SELECT * FROM {ident(ctx.table)}) t WHERE {cond}")
