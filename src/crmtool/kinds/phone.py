"""``phone``: check phone numbers with Google's libphonenumber metadata; fix to E.164.

``action: fix`` rewrites valid numbers as E.164 (``600 12 34 56`` -> ``+34600123456``) and
flags or rejects the invalid ones; ``flag``/``reject`` only check. Numbers without a country
code are read in ``region`` (default ``ES``), or in the region named by ``region_column``.
"""

from typing import Any, ClassVar

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, failing_rows
from crmtool.kinds.phone_sql import compact_sql, e164_fast_sql, invalid_fast_sql
from crmtool.normalise import phone_e164
from crmtool.sqltext import ident


class Phone(Kind):
    name = "phone"
    summary = "Validate phone numbers (phonenumbers library); fix writes E.164."
    options_schema: ClassVar[dict[str, Any]] = {
        "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "region_column": {"type": "string"},
    }
    actions = ("fix", "flag", "reject")
    default_action = "flag"

    def _region_sql(self, spec: RuleSpec) -> str:
        region = spec.opt("region", "ES")
        if spec.opt("region_column"):
            rc = f"t.{ident(spec.opt('region_column'))}"
            return f"coalesce(nullif(upper(trim({rc})), ''), '{region}')"
        return f"'{region}'"

    def _mapping(self, ctx: PlanContext, spec: RuleSpec, column: str) -> tuple[str, str]:
        c = f"t.{ident(column)}"
        key = f"({c}) || '|' || ({self._region_sql(spec)})"

        def parse(v: str) -> tuple[str | None]:
            value, _, region = v.rpartition("|")
            return (phone_e164(value, region if len(region) == 2 else "ES"),)

        fast = settled = None
        if not spec.opt("region_column"):
            # keys are 'value|REGION'; the fast path reads the value part, and numbers certainly
            # invalid (too short) are settled as NULL without the library
            region = spec.opt("region", "ES")
            fast = {"e164": e164_fast_sql("", region, compact="f")}
            settled = invalid_fast_sql("", region, compact="f")
        table = ctx.map_distinct(key, parse, [("e164", "VARCHAR")], ("phone",), fast=fast,
                                 fast_input=compact_sql("left(v, -3)") if fast else None, settled=settled)
        return table, key

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        table, key = self._mapping(ctx, spec, column)
        c = f"t.{ident(column)}"
        return FixPlan(f"coalesce(m.e164, {c})", f"LEFT JOIN {table} m ON m.value = {key}")

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        column = spec.columns[0]
        table, key = self._mapping(ctx, spec, column)
        c = f"t.{ident(column)}"
        return failing_rows(ctx, column, f"trim({c}) <> '' AND m.e164 IS NULL", "'not a valid phone number'",
                            f"LEFT JOIN {table} m ON m.value = {key}")
