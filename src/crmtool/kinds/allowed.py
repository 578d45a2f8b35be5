"""``allowed``: the value is one of a list (optionally ignoring case and accents)."""

from typing import Any, ClassVar

from crmtool.kinds.base import Kind, PlanContext, RuleSpec, failing_rows
from crmtool.sqltext import ident, sql_str


class Allowed(Kind):
    name = "allowed"
    summary = "The value must be one of the listed values; blanks are skipped."
    options_schema: ClassVar[dict[str, Any]] = {
        "values": {"type": "array", "items": {"type": ["string", "number", "boolean"]}, "minItems": 1},
        "ignore_case": {"type": "boolean"},
    }
    required_options = ("values",)
    columns = "many"

    def checks_value_only(self, spec: RuleSpec) -> bool:
        return True

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        fold = bool(spec.opt("ignore_case", False))

        def norm(sql: str) -> str:
            return f"lower(strip_accents({sql}))" if fold else sql

        def text(v: object) -> str:  # as DuckDB writes it: true, not Python's True
            return str(v).lower() if isinstance(v, bool) else str(v)

        values = ", ".join(norm(sql_str(text(v))) for v in spec.opt("values"))
        return " UNION ALL ".join(
            failing_rows(ctx, col, f"trim(CAST(t.{ident(col)} AS VARCHAR)) <> '' "
                                   f"AND {norm(f'CAST(t.{ident(col)} AS VARCHAR)')} "
                                   f"NOT IN ({values})", "'not an allowed value'")
            for col in spec.columns
        )
