"""``unicode_nfc``: compose Unicode to NFC so that ``é`` is one code point everywhere."""

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec
from crmtool.sqltext import ident


class UnicodeNfc(Kind):
    name = "unicode_nfc"
    summary = "Normalise Unicode to NFC (composed accents), as DuckDB's nfc_normalize does."
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix_in_sql(self, spec: RuleSpec) -> bool:
        return True

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        return FixPlan(f"nfc_normalize(t.{ident(column)})")
