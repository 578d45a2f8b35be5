"""``mojibake``: repair text that was UTF-8 decoded as Latin-1/cp1252 (``MuÃ±oz`` -> ``Muñoz``).

Only distinct non-ASCII values are sent to ftfy: pure ASCII text cannot be mojibake.
"""

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec
from crmtool.normalise import fix_mojibake
from crmtool.sqltext import ident


class Mojibake(Kind):
    name = "mojibake"
    summary = "Repair mojibake (UTF-8 read as Latin-1) with ftfy, e.g. MuÃ±oz -> Muñoz."
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        c = f"t.{ident(column)}"
        table = ctx.map_distinct(c, lambda v: (fix_mojibake(v),), [("new", "VARCHAR")], ("mojibake",),
                                 prefilter="regexp_matches(v, '[^\\x00-\\x7F]')")
        return FixPlan(f"coalesce(m.new, {c})", f"LEFT JOIN {table} m ON m.value = {c}")
