"""``trim``: trim and collapse white space (tabs, NBSP, newlines) to single spaces."""

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec
from crmtool.sqltext import ident

# exactly the characters Python's \s matches (crmtool.normalise.collapse_spaces), in RE2 syntax:
# RE2's own \s lacks \v, the separators \x1c-\x1f, NEL, NBSP and the other Unicode spaces
WHITE_SPACE = (r"[\t\n\x0B\f\r \x1C-\x1F\x{0085}\x{00A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
               r"\x{202F}\x{205F}\x{3000}]")


class Trim(Kind):
    name = "trim"
    summary = "Trim both ends and collapse runs of white space to one space."
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix_in_sql(self, spec: RuleSpec) -> bool:
        return True

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        c = f"t.{ident(column)}"
        # most values hold no white space at all: finding none costs less than rewriting them
        return FixPlan(f"CASE WHEN regexp_matches({c}, '{WHITE_SPACE}') "
                       f"THEN trim(regexp_replace({c}, '{WHITE_SPACE}+', ' ', 'g')) ELSE {c} END")
