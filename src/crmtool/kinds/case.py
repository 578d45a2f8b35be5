"""``case``: lower, upper, or name title case (``JOSÉ DE LA FUENTE`` -> ``José de la Fuente``)."""

from typing import Any, ClassVar

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec
from crmtool.normalise import title_name
from crmtool.sqltext import ident


class Case(Kind):
    name = "case"
    summary = "Change letter case: lower, upper, or title (names, with de/del/la/y kept lower)."
    options_schema: ClassVar[dict[str, Any]] = {"to": {"enum": ["lower", "upper", "title"]}}
    required_options = ("to",)
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix_in_sql(self, spec: RuleSpec) -> bool:
        return bool(spec.opt("to") != "title")  # title case runs in Python per distinct value

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        c = f"t.{ident(column)}"
        to = spec.opt("to")
        if to == "lower":
            return FixPlan(f"lower({c})")
        if to == "upper":
            return FixPlan(f"upper({c})")
        table = ctx.map_distinct(c, lambda v: (title_name(v),), [("new", "VARCHAR")], ("title",))
        return FixPlan(f"coalesce(m.new, {c})", f"LEFT JOIN {table} m ON m.value = {c}")
