"""``regex``: the whole value matches a pattern (RE2 syntax, as DuckDB runs it)."""

from typing import Any, ClassVar

from crmtool.kinds.base import Kind, PlanContext, RuleSpec, failing_rows
from crmtool.kinds.compiles import re2_compiles
from crmtool.sqltext import ident, sql_str


class Regex(Kind):
    name = "regex"
    summary = "The whole value must match a regular expression (RE2 syntax); blanks are skipped."
    options_schema: ClassVar[dict[str, Any]] = {
        "pattern": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
    }
    required_options = ("pattern",)
    columns = "many"

    def problems(self, spec: RuleSpec) -> list[str]:
        if isinstance(spec.opt("pattern"), str) and re2_compiles(spec.opt("pattern")):  # plain: no DuckDB needed
            return []
        import duckdb

        try:
            duckdb.execute("SELECT regexp_full_match('x', ?)", [spec.opt("pattern")]).fetchall()
        except duckdb.Error as exc:
            return [f"pattern does not compile: {str(exc).splitlines()[0]}"]
        return []

    def checks_value_only(self, spec: RuleSpec) -> bool:
        return True

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        pattern = sql_str(spec.opt("pattern"))
        message = sql_str(spec.opt("message", "does not match the expected pattern"))
        def text(col: str) -> str:  # typed columns (Parquet) are checked as text
            return f"CAST(t.{ident(col)} AS VARCHAR)"

        return " UNION ALL ".join(
            failing_rows(ctx, col, f"trim({text(col)}) <> '' AND NOT regexp_full_match({text(col)}, {pattern})",
                         message)
            for col in spec.columns
        )
