"""``required``: the value is present (not null, not blank)."""

from crmtool.kinds.base import Kind, PlanContext, RuleSpec, failing_rows
from crmtool.sqltext import ident


class Required(Kind):
    name = "required"
    summary = "The value must be present: not null and not only spaces."
    columns = "many"

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        return " UNION ALL ".join(
            failing_rows(ctx, col, f"t.{ident(col)} IS NULL OR trim(CAST(t.{ident(col)} AS VARCHAR)) = ''",
                         "'missing value'")
            for col in spec.columns
        )
