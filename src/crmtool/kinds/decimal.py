"""``decimal``: numbers written with a decimal comma (``1.234,56``) or point, fixed to ``1234.56``."""

from typing import Any, ClassVar

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, failing_rows
from crmtool.normalise import parse_decimal
from crmtool.sqltext import ident

_COMMA = r"[+-]?[0-9]{1,3}(\.[0-9]{3})*(,[0-9]+)?|[+-]?[0-9]+(,[0-9]+)?"
_POINT = r"[+-]?[0-9]{1,3}(,[0-9]{3})*(\.[0-9]+)?|[+-]?[0-9]+(\.[0-9]+)?"


def decimal_sql(value_sql: str, decimal_comma: bool) -> str:
    """SQL twin of :func:`crmtool.normalise.parse_decimal`: canonical number text, or NULL."""
    v = (f"replace(replace(replace(regexp_replace(CAST({value_sql} AS VARCHAR), '\\s', '', 'g'), "
         f"chr(160), ''), '€', ''), ' ', '')")
    comma = f"WHEN regexp_full_match({v}, '{_COMMA}') THEN replace(replace({v}, '.', ''), ',', '.') " \
        if decimal_comma else ""
    return f"CASE {comma}WHEN regexp_full_match({v}, '{_POINT}') THEN replace({v}, ',', '') END"


class Decimal(Kind):
    name = "decimal"
    summary = "Parse numbers with decimal comma or point (1.234,56 -> 1234.56); flag what is not a number."
    options_schema: ClassVar[dict[str, Any]] = {"decimal_comma": {"type": "boolean"}}
    columns = "many"
    actions = ("fix", "flag", "reject")
    default_action = "fix"

    def _map(self, ctx: PlanContext, spec: RuleSpec, column: str) -> str:
        comma = bool(spec.opt("decimal_comma", True))
        # decided entirely in SQL (decimal_sql mirrors normalise.parse_decimal, tested equal); the Python
        # function only sees values the SQL leaves NULL, where it returns None as well
        return ctx.map_distinct(f"t.{ident(column)}", lambda v: (parse_decimal(v, comma),), [("new", "VARCHAR")],
                                ("decimal", comma), fast={"new": decimal_sql("v", comma)})

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        c = f"t.{ident(column)}"
        return FixPlan(f"coalesce(m.new, {c})", f"LEFT JOIN {self._map(ctx, spec, column)} m ON m.value = {c}")

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        parts = []
        for column in spec.columns:
            c = f"t.{ident(column)}"
            table = self._map(ctx, spec, column)
            parts.append(failing_rows(ctx, column, f"trim({c}) <> '' AND m.new IS NULL", "'not a number'",
                                      f"LEFT JOIN {table} m ON m.value = {c}"))
        return " UNION ALL ".join(parts)
