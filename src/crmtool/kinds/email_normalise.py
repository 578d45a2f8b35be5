"""``email_normalise``: trim, drop ``mailto:`` and angle brackets, lower-case."""

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, ident


class EmailNormalise(Kind):
    name = "email_normalise"
    summary = "Trim an email address, drop mailto: and <>, remove inner spaces, lower-case it."
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        # same steps as crmtool.normalise.normalise_email, in SQL (tested equal)
        c = f"t.{ident(column)}"
        v = f"trim(regexp_replace({c}, '\\s+', ' ', 'g'))"
        v = f"trim(trim({v}, '<>'))"
        v = f"CASE WHEN lower({v}) LIKE 'mailto:%' THEN substr({v}, 8) ELSE {v} END"
        return FixPlan(f"lower(replace({v}, ' ', ''))")
