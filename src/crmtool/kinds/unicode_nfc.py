"""``unicode_nfc``: compose Unicode to NFC so that ``é`` is one code point everywhere."""

import unicodedata

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec
from crmtool.sqltext import ident


def nfc(value: str) -> tuple[str]:
    """The NFC form of one value (what DuckDB's ``nfc_normalize`` gives)."""
    return (unicodedata.normalize("NFC", value),)


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
        c = f"t.{ident(column)}"
        if ctx.has_duckdb_sql():
            return FixPlan(f"nfc_normalize({c})")
        # no nfc_normalize elsewhere: Python's, once per distinct value that is not plain ASCII
        table = ctx.map_distinct(c, nfc, [("new", "VARCHAR")], ("unicode_nfc",),
                                 prefilter="regexp_matches(v, '[^\\x00-\\x7F]')")
        return FixPlan(f"coalesce(m.new, {c})", f"LEFT JOIN {table} m ON m.value = {c}")
