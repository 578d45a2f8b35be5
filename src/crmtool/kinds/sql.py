"""``sql``: a cross-field condition written in DuckDB SQL that every row must satisfy.

``expr`` is a boolean expression over the columns (e.g. ``signup_date <= last_order_date``).
A row fails when it is false; NULL counts as pass unless ``null_fails: true``. The expression
is parsed when the rule file is loaded and bound against the data before anything runs.
"""

import json
from typing import Any, ClassVar

from crmtool.kinds.base import Kind, PlanContext, RuleSpec, ident, sql_str


def sql_parse_problem(expr: str) -> str | None:
    """DuckDB's parser verdict on ``SELECT <expr>``: None when it parses, else the message."""
    import duckdb

    if ";" in expr:
        return "expression must not contain ';'"
    raw = duckdb.execute("SELECT json_serialize_sql(?)", ["SELECT " + expr]).fetchall()[0]
    result = json.loads(raw[0]) if raw else {}
    if result.get("error"):
        return f"SQL does not parse: {result.get('error_message', 'syntax error')}"
    if len(result.get("statements", [])) != 1:
        return "expression must be a single SQL expression"
    return None


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

    def problems(self, spec: RuleSpec) -> list[str]:
        problem = sql_parse_problem(spec.opt("expr"))
        return [f"expr: {problem}"] if problem else []

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        expr = spec.opt("expr")
        cond = f"NOT coalesce(({expr}), {'false' if spec.opt('null_fails') else 'true'})"
        message = sql_str(spec.opt("message", f"condition not met: {expr}"))
        label = spec.columns[0] if spec.columns else ""
        return (f"SELECT t._row, {sql_str(label)} AS \"column\", {message} AS reason "
                f"FROM (SELECT * FROM {ident(ctx.table)}) t WHERE {cond}")
