"""``trim``: trim and collapse white space (tabs, NBSP, newlines) to single spaces."""

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, ident


class Trim(Kind):
    name = "trim"
    summary = "Trim both ends and collapse runs of white space to one space."
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        c = f"t.{ident(column)}"
        # \s in RE2 misses NBSP and other Unicode spaces; name them explicitly
        return FixPlan(f"trim(regexp_replace({c}, '[\\s\\x{{00A0}}\\x{{2007}}\\x{{202F}}\\x{{3000}}]+', ' ', 'g'))")
