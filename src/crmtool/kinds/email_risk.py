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

    def _options(self, ctx: PlanContext, spec: RuleSpec) -> ClassifyOptions:
        from crmtool.emails.lists import EmailLists

        folder = self._lists_folder(spec)
        extra_disposable = tuple(spec.opt("disposable_domains", ()))
        extra_allow = tuple(spec.opt("allow_domains", ()))
        # the lists are read once per run: every rule with the same folder and extras shares them
        key = ("email_lists", str(folder), extra_disposable, extra_allow)
        if key not in ctx.cache:
            ctx.cache[key] = {"lists": EmailLists.load(folder, extra_disposable=extra_disposable,
                                                       extra_allow=extra_allow)}
        lists = ctx.cache[key]["lists"]
        return ClassifyOptions(
            lists=lists,
            mx=bool(spec.opt("mx", False)),
            resolver=spec.opt("resolver"),
            mx_timeout=float(spec.opt("mx_timeout", 3.0)),
            mx_budget=float(spec.opt("mx_budget", 120.0)),
            soft_bounces=int(spec.opt("soft_bounces", 3)),
            soft_window_days=int(spec.opt("soft_days", 30)),
        )

    def _key(self, spec: RuleSpec) -> tuple[Any, ...]:
        """What decides a value's classification: the rule file's folder and the shaping options."""
        shaping = ("lists", "disposable_domains", "allow_domains", "mx", "resolver", "mx_timeout", "mx_budget",
                   "soft_bounces", "soft_days")
        return ("email_risk", str(_folder(spec)), tuple((k, repr(spec.opt(k))) for k in shaping))

    def _on_backend(self, ctx: PlanContext, spec: RuleSpec, column: str) -> str | None:
        """Off the DuckDB engine (a :class:`crmtool.backend.Backend` plan): the classification as
        backend steps (:mod:`crmtool.kinds.email_risk_steps`); None on the engine."""
        if getattr(ctx, "backend", None) is None:
            return None
        from crmtool.kinds.email_risk_steps import classify_on_backend

        return classify_on_backend(ctx, spec, column, self._options(ctx, spec), self._key(spec))

    def _classify(self, ctx: PlanContext, spec: RuleSpec, column: str) -> str:
        """The table of classified addresses ``(value, status, reasons, suggestion ...)`` holding
        every distinct value of ``column`` in ``ctx.table``.

        Rules with the same options share one table for the run (only the options that change a
        value's classification count). An address is classified alone (syntax, its domain, its
        local part, its history), so a later table (the checks' fixed values after the fix's
        input values) only classifies the values not seen before and adds them. MX checks share
        one time budget per call, so with ``mx`` each table is classified on its own, as before.
        """
        # a fix with `where` rewrites the column in place: the same table, new values
        source = (ctx.table, column, ctx.edits.get((ctx.table, column), 0))
        key = (*self._key(spec), *(source if spec.opt("mx", False) else ()))
        cached = ctx.cache.get(key)
        if cached is None:
            table = self._classify_now(ctx, spec, column)
            assert table is not None  # nothing known: every value is classified
            ctx.cache[key] = {"table": table, "sources": {source}}
            return table
        table = str(cached["table"])
        if source not in cached["sources"]:
            more = self._classify_now(ctx, spec, column, known=table)
            if more is not None:
                ctx.con.execute(f"INSERT INTO {table} SELECT * FROM {more}; DROP TABLE {more}")
            cached["sources"].add(source)
        return table

    def _classify_now(self, ctx: PlanContext, spec: RuleSpec, column: str, known: str | None = None) -> str | None:
        """Classify the distinct values of ``column`` (but those in the table ``known``); returns the
        result table, or None when ``known`` holds every value already."""
        values = ctx.temp_name("email_risk_values")
        c = f"CAST(t.{ident(column)} AS VARCHAR)"
        new_only = f" ANTI JOIN {known} k ON k.value = {c}" if known else ""
        ctx.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {values} AS SELECT DISTINCT {c} AS value "
            f"FROM {ident(ctx.table)} t{new_only} WHERE {c} IS NOT NULL AND trim({c}) <> ''"
        )
        if known and not ctx.con.execute(f"SELECT 1 FROM {values} LIMIT 1").fetchall():
            ctx.con.execute(f"DROP TABLE {values}")
            return None
        result = classify_values(ctx.con, values, self._options(ctx, spec), prefix=ctx.temp_name("em"))
        return result.table

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        steps = self._on_backend(ctx, spec, column)
        if steps is not None:
            from crmtool.kinds.email_risk_steps import fix_plan

            return fix_plan(spec, column, steps)
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
        steps = self._on_backend(ctx, spec, column)
        if steps is not None:
            from crmtool.kinds.email_risk_steps import check_sql

            return check_sql(ctx, spec, steps)
        table = self._classify(ctx, spec, column)
        ignore = set(spec.opt("ignore", ()))
        failing = [r for r in spec.opt("reasons", sorted(INVALID_REASONS, key=REASONS.index)) if r not in ignore]
        wanted = ", ".join(sql_str(r) for r in failing) or "NULL"
        c = f"t.{ident(column)}"
        hits = f"list_filter(m.reasons, lambda r: split_part(r, ':', 1) IN ({wanted}))"
        return failing_rows(
            ctx, column, f"len({hits}) > 0", f"unnest({hits})", f"JOIN {table} m ON m.value = CAST({c} AS VARCHAR)"
        )
