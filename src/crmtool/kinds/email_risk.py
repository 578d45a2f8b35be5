"""``email_risk``: suspicious addresses (disposable, role, typo, lookalike, random, bounced ...).

Runs :func:`crmtool.emails.classify.classify_values` once over the distinct values of the column
and fails the rows whose address has one of the rule's ``reasons`` (default: the reasons that
make an address ``invalid``). One rule has one severity, so split reasons by severity over two
rules (see ``rules/25-email-risk.yaml``). Options:

* ``reasons``: reasons that fail a row; ``ignore``: reasons never reported;
* ``lists``: folder of user lists, relative to the rule file (default ``lists`` beside it when
  it exists): ``role_accounts.txt``, ``disposable_extra.txt``, ``allow_domains.txt``;
  ``disposable_domains`` / ``allow_domains``: inline lists;
* ``mx`` (default false), ``resolver``, ``mx_timeout``, ``mx_budget``: DNS checks;
* ``soft_bounces`` / ``soft_days``: N soft bounces within M days;
* ``action: fix`` writes the suggestion of addresses with a ``fix_reasons`` reason (default
  ``typo_domain``): ``ana@gmial.com`` -> ``ana@gmail.com``, through the engine's change log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from crmtool.emails.classify import INVALID_REASONS, REASONS, ClassifyOptions, classify_values
from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, failing_rows
from crmtool.sqltext import ident, sql_str

_REASON_LIST = {"type": "array", "items": {"enum": list(REASONS)}, "uniqueItems": True}


def _folder(spec: RuleSpec) -> Path:
    return Path(spec.loc.file).parent if spec.loc.file else Path.cwd()


class EmailRisk(Kind):
    name = "email_risk"
    summary = "Suspicious email addresses: disposable, role, typo, lookalike, random, bad TLD, no MX, bounced."
    options_schema: ClassVar[dict[str, Any]] = {
        "reasons": {**_REASON_LIST, "description": "reasons that fail a row (default: those of 'invalid')"},
        "ignore": {**_REASON_LIST, "description": "reasons never reported"},
        "fix_reasons": {
            "type": "array",
            "items": {"enum": ["typo_domain", "homoglyph", "syntax"]},
            "description": "with action fix: whose suggestions are applied (default typo_domain)",
        },
        "lists": {"type": "string", "description": "folder of user lists, relative to the rule file"},
        "disposable_domains": {"type": "array", "items": {"type": "string"}},
        "allow_domains": {"type": "array", "items": {"type": "string"}},
        "mx": {"type": "boolean"},
        "resolver": {"type": "string"},
        "mx_timeout": {"type": "number", "exclusiveMinimum": 0},
        "mx_budget": {"type": "number", "exclusiveMinimum": 0},
        "soft_bounces": {"type": "integer", "minimum": 1},
        "soft_days": {"type": "integer", "minimum": 1},
    }
    actions = ("fix", "flag", "reject")
    default_action = "flag"
    default_severity = "error"

    def _lists_folder(self, spec: RuleSpec) -> Path | None:
        raw = spec.opt("lists")
        folder = _folder(spec) / (raw or "lists")
        return folder if folder.is_dir() else None

    def problems(self, spec: RuleSpec) -> list[str]:
        found = []
        if spec.opt("lists") and self._lists_folder(spec) is None:
            found.append(f"lists: folder '{spec.opt('lists')}' not found next to the rule file")
        if spec.opt("resolver"):
            from crmtool.emails.mx import parse_resolver
            from crmtool.errors import UsageError

            try:
                parse_resolver(spec.opt("resolver"))
            except UsageError as exc:
                found.append(exc.message.replace("--resolver", "resolver"))
        overlap = set(spec.opt("reasons", ())) & set(spec.opt("ignore", ()))
        if overlap:
            found.append(f"reasons and ignore both name {', '.join(sorted(overlap))}")
        return found

    def _options(self, spec: RuleSpec) -> ClassifyOptions:
        from crmtool.emails.lists import EmailLists

        lists = EmailLists.load(
            self._lists_folder(spec),
            extra_disposable=tuple(spec.opt("disposable_domains", ())),
            extra_allow=tuple(spec.opt("allow_domains", ())),
        )
        return ClassifyOptions(
            lists=lists,
            mx=bool(spec.opt("mx", False)),
            resolver=spec.opt("resolver"),
            mx_timeout=float(spec.opt("mx_timeout", 3.0)),
            mx_budget=float(spec.opt("mx_budget", 120.0)),
            soft_bounces=int(spec.opt("soft_bounces", 3)),
            soft_window_days=int(spec.opt("soft_days", 30)),
        )

    def _classify(self, ctx: PlanContext, spec: RuleSpec, column: str) -> str:
        # several email_risk rules on one column share one classification of the same table
        # state (the checks all see the final values); only the options that change it count
        shaping = ("lists", "disposable_domains", "allow_domains", "mx", "resolver", "mx_timeout", "mx_budget",
                   "soft_bounces", "soft_days")
        key = ("email_risk", ctx.table, column, str(_folder(spec)),
               tuple((k, repr(spec.opt(k))) for k in shaping))
        cached = ctx.cache.get(key)
        if cached is not None:
            return str(cached["table"])
        table = self._classify_now(ctx, spec, column)
        ctx.cache[key] = {"table": table}
        return table

    def _classify_now(self, ctx: PlanContext, spec: RuleSpec, column: str) -> str:
        values = ctx.temp_name("email_risk_values")
        c = f"CAST(t.{ident(column)} AS VARCHAR)"
        ctx.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {values} AS SELECT DISTINCT {c} AS value "
            f"FROM {ident(ctx.table)} t WHERE {c} IS NOT NULL AND trim({c}) <> ''"
        )
        result = classify_values(ctx.con, values, self._options(spec), prefix=ctx.temp_name("em"))
        return result.table

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        table = self._classify(ctx, spec, column)
        wanted = ", ".join(sql_str(r) for r in spec.opt("fix_reasons", ["typo_domain"]))
        c = f"t.{ident(column)}"
        fixes = (
            f"(SELECT value, suggestion FROM {table} WHERE suggestion IS NOT NULL AND "
            f"len(list_filter(reasons, lambda r: split_part(r, ':', 1) IN ({wanted}))) > 0)"
        )
        return FixPlan(f"coalesce(m.suggestion, {c})", f"LEFT JOIN {fixes} m ON m.value = CAST({c} AS VARCHAR)")

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        column = spec.columns[0]
        table = self._classify(ctx, spec, column)
        ignore = set(spec.opt("ignore", ()))
        failing = [r for r in spec.opt("reasons", sorted(INVALID_REASONS, key=REASONS.index)) if r not in ignore]
        wanted = ", ".join(sql_str(r) for r in failing) or "NULL"
        c = f"t.{ident(column)}"
        hits = f"list_filter(m.reasons, lambda r: split_part(r, ':', 1) IN ({wanted}))"
        return failing_rows(
            ctx, column, f"len({hits}) > 0", f"unnest({hits})", f"JOIN {table} m ON m.value = CAST({c} AS VARCHAR)"
        )
