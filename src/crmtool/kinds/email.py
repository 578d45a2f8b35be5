"""``email``: syntax of email addresses with email-validator (no network), per distinct value.

``action: fix`` rewrites valid addresses in the library's normalised form (lower-case domain,
NFC); invalid ones are flagged or rejected with a ``syntax:<detail>`` reason.
"""

from crmtool.emails.syntax import syntax_verdict
from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, failing_rows
from crmtool.kinds.email_sql import valid_email_fast_sql
from crmtool.sqltext import ident


class Email(Kind):
    name = "email"
    summary = "Email syntax per email-validator (no network); fix writes the normalised form."
    actions = ("fix", "flag", "reject")

    def _map(self, ctx: PlanContext, column: str) -> str:
        return ctx.map_distinct(f"t.{ident(column)}", syntax_verdict,
                                [("ok", "BOOLEAN"), ("normalized", "VARCHAR"), ("detail", "VARCHAR")],
                                ("email_syntax",), fast_input=valid_email_fast_sql("v"),
                                fast={"ok": "CASE WHEN f IS NOT NULL THEN true END", "normalized": "f"})

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        c = f"t.{ident(column)}"
        return FixPlan(f"coalesce(m.normalized, {c})", f"LEFT JOIN {self._map(ctx, column)} m ON m.value = {c}")

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        column = spec.columns[0]
        c = f"t.{ident(column)}"
        return failing_rows(ctx, column, f"trim({c}) <> '' AND NOT m.ok", "m.detail",
                            f"LEFT JOIN {self._map(ctx, column)} m ON m.value = {c}")
