"""``email_risk`` as backend steps (Spark, or the DuckDB backend): the classification of
:mod:`crmtool.emails.classify` split where the data lives.

* Per distinct address, where the rows are (``map_values``, a batch at a time): syntax (the SQL
  fast path, email-validator for the rest) and the local part (role account, random score). Each
  batch runs the very SQL steps of :mod:`crmtool.emails.classify` on an in-memory DuckDB of its
  own (on a Spark executor, say), so the facts agree with the engine's by construction.
* Per distinct domain, here: only the domains come back (one small SELECT); their facts
  (disposable, provider, typo, homoglyph, mixed script, TLD) and, with ``mx``, their MX answers
  (the workspace's MX cache, then DNS) are computed on this machine and sent back as a table
  mapped by a function that holds them.
* The reasons and the suggestion per address: one SELECT joining the two there, one column per
  reason (its label, or NULL), so checks and fixes need no list functions.

Bounce and suppression history (per address, matched by keyed token in the workspace) is not
sent to the executors: a rule set with history in the workspace is refused on Spark, naming the
rule, rather than run without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from crmtool.emails.classify import INVALID_REASONS, REASONS, ClassifyOptions
from crmtool.emails.lists import EmailLists
from crmtool.emails.randomness import THRESHOLD
from crmtool.kinds.base import FixPlan, PlanContext, RuleSpec, failing_rows
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.errors import Location

#: per distinct address: the facts of classify's steps 1 (syntax) and 3 (local part)
ADDRESS_OUT = [("ok", "BOOLEAN"), ("normalized", "VARCHAR"), ("detail", "VARCHAR"), ("fixed", "VARCHAR"),
               ("local", "VARCHAR"), ("domain", "VARCHAR"), ("role", "BOOLEAN"), ("random_score", "BIGINT")]
#: per distinct domain: classify's step 2 and its MX answer (step 4b)
DOMAIN_OUT = [("ascii", "VARCHAR"), ("tld_ok", "BOOLEAN"), ("disposable", "BOOLEAN"), ("provider", "BOOLEAN"),
              ("typo", "VARCHAR"), ("homoglyph", "BOOLEAN"), ("mixed", "BOOLEAN"), ("lookalike", "VARCHAR"),
              ("mx", "VARCHAR")]


class AddressFacts:
    """Syntax and local-part facts of a batch of distinct addresses, by classify's own SQL."""

    def __init__(self, lists: EmailLists) -> None:
        self.lists = lists

    def map_batch(self, values: list[str]) -> list[tuple[Any, ...]]:
        import duckdb

        from crmtool.emails.classify import _local_part_table, _quiet, _register, _syntax_table

        con = duckdb.connect()
        try:
            _quiet(con)
            _register(con, "__em_in", {"value": values}, {"value": "VARCHAR"})
            _syntax_table(con, "__em_in", "__em", {})
            _local_part_table(con, "__em", self.lists)
            rows = con.execute("SELECT a.value, a.ok, a.normalized, a.detail, a.fixed, a.local, a.domain, l.role, "
                               "l.random_score FROM __em_addr a LEFT JOIN __em_loc l ON l.value = a.value").fetchall()
        finally:
            con.close()
        facts = {r[0]: r[1:] for r in rows}
        return [facts[v] for v in values]

    def __call__(self, value: str) -> tuple[Any, ...]:
        return self.map_batch([value])[0]


class DomainFacts:
    """The facts of each domain, computed on this machine and carried to where the rows are."""

    def __init__(self, facts: dict[str, tuple[Any, ...]]) -> None:
        self.facts = facts

    def __call__(self, domain: str) -> tuple[Any, ...]:
        return self.facts[domain]


def has_history(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether classify would use bounce or suppression history in this workspace."""
    from crmtool.db import scalar
    from crmtool.emails.bounces import TABLE, _has_macro, _has_table

    bounces = _has_table(con, TABLE) and bool(scalar(con, f"SELECT count(*) > 0 FROM {TABLE}"))
    supp = _has_table(con, "privacy_suppressions") and bool(
        scalar(con, "SELECT count(*) > 0 FROM privacy_suppressions WHERE channel = 'email'"))
    return (bounces or supp) and _has_macro(con, "crm_token")


def history_problems(con: duckdb.DuckDBPyConnection, rules: list[RuleSpec]) -> list[tuple[Location, str]]:
    """The email_risk rules that cannot run off the engine because this workspace holds history."""
    risky = [spec for spec in rules if spec.kind == "email_risk"]
    if not risky or not has_history(con):
        return []
    return [(spec.loc, _HISTORY.format(spec.name)) for spec in risky]


_HISTORY = "rule '{}': email_risk with the workspace's bounce or suppression history does not run on Spark yet"


def _domain_table(options: ClassifyOptions, lists: EmailLists, domains: list[str],
                  home: duckdb.DuckDBPyConnection | None) -> dict[str, tuple[Any, ...]]:
    """Per domain, its facts and MX answer (asked for domains with a valid TLD, as classify asks)."""
    from crmtool.emails.classify import _domain_facts

    facts = _domain_facts(domains, lists)
    statuses: dict[str, str] = {}
    if options.mx:
        import duckdb

        from crmtool.emails.mx import check_domains

        asked = sorted({a for a, ok in zip(facts["ascii"], facts["tld_ok"], strict=True) if ok})
        con = home if home is not None else duckdb.connect()
        statuses = check_domains(con, asked, resolver=options.resolver, timeout=options.mx_timeout,
                                 budget=options.mx_budget, concurrency=options.mx_concurrency,
                                 refresh=options.mx_refresh, now=options.now).statuses
    names = [n for n, _t in DOMAIN_OUT if n != "mx"]
    return {d: (*(facts[n][i] for n in names), statuses.get(facts["ascii"][i]) if facts["tld_ok"][i] else None)
            for i, d in enumerate(facts["domain"])}


def _assemble_sql(addresses: str, domains: str, mx: bool) -> str:
    """Per address, its suggestion and one column ``r_<reason>`` per reason: the reason's label
    (``syntax:no_at``, ``role`` ...) where it applies, else NULL (classify's step 5, without lists)."""
    from crmtool.emails.classify import _reason_conditions

    conds = _reason_conditions(None, mx)
    conds |= {"role": "a.role", "random_local": f"a.random_score >= {THRESHOLD}"}
    labels = {r: "coalesce(a.detail, 'syntax:invalid')" if r == "syntax" else sql_str(r) for r in REASONS}
    reasons = ", ".join(f"CASE WHEN coalesce({conds[r]}, false) THEN {labels[r]} END AS r_{r}" for r in REASONS)
    return (f"SELECT a.value, CASE WHEN d.lookalike IS NOT NULL THEN a.local || '@' || d.lookalike "
            f"WHEN d.typo IS NOT NULL THEN a.local || '@' || d.typo WHEN NOT a.ok THEN a.fixed END AS suggestion, "
            f"{reasons} FROM {addresses} a LEFT JOIN {domains} d ON d.value = a.domain AND a.ok "
            f"LEFT JOIN {domains} m ON m.value = a.domain AND a.ok")


def classify_on_backend(ctx: PlanContext, spec: RuleSpec, column: str, options: ClassifyOptions,
                        key: tuple[Any, ...]) -> str:
    """The table ``(value, suggestion, r_<reason> ...)`` holding every distinct value of ``column``
    in ``ctx.table``, on the context's backend.

    Rules with the same options share it; as on the engine, a later table (the checks' fixed
    values after the fix's input values) only classifies the values not seen before, and the
    table grows by them. With ``mx`` each table is classified on its own, as the engine does (the
    DNS checks share one time budget per call)."""
    from crmtool.errors import ConfigError

    cache_key = ("email_risk_steps", *key, ctx.table, column)
    if cache_key in ctx.tables:
        return ctx.tables[cache_key]
    backend: Any = cast(Any, ctx).backend  # a crmtool.backend.checks.BackendPlanContext
    home = getattr(ctx, "home", None)
    if options.history and home is not None and has_history(home):
        raise ConfigError([(spec.loc, _HISTORY.format(spec.name))],
                          "run this rule set on --engine duckdb (the default)")
    shared = ("email_risk_steps", *key)
    known = None if options.mx else ctx.tables.get(shared)
    lists = options.lists or EmailLists.load()
    c = f"CAST(t.{ident(column)} AS VARCHAR)"
    values = f"SELECT DISTINCT {c} AS v FROM {ident(ctx.table)} t WHERE {c} IS NOT NULL AND trim({c}) <> ''"
    if known:  # only the values not classified yet
        values = f"SELECT d.v FROM ({values}) d LEFT JOIN {known} k ON k.value = d.v WHERE k.value IS NULL"
    addresses, domains, result = (ctx.temp_name(stem) for stem in ("bkem_addr", "bkem_dom", "bkem"))
    for name in (addresses, domains):
        ctx.tables[("email_risk_steps", name)] = name  # dropped with the run's other tables
    backend.map_values(addresses, values, AddressFacts(lists), ADDRESS_OUT)
    wanted = f"SELECT DISTINCT domain AS v FROM {addresses} WHERE ok"
    facts = _domain_table(options, lists, sorted(str(r[0]) for r in backend.fetch(wanted)), home)
    backend.map_values(domains, wanted, DomainFacts(facts), DOMAIN_OUT)
    assembled = _assemble_sql(addresses, domains, options.mx)
    backend.create_table(result, f"SELECT * FROM {known} UNION ALL {assembled}" if known else assembled, keep=True)
    ctx.tables[cache_key] = ctx.tables[shared] = result
    return result


def check_sql(ctx: PlanContext, spec: RuleSpec, table: str) -> str:
    """The failing rows, one per reason of the rule that applies (as the engine's ``unnest``)."""
    column = spec.columns[0]
    ignore = set(spec.opt("ignore", ()))
    failing = [r for r in spec.opt("reasons", sorted(INVALID_REASONS, key=REASONS.index)) if r not in ignore]
    join = f"JOIN {table} m ON m.value = CAST(t.{ident(column)} AS VARCHAR)"
    parts = [failing_rows(ctx, column, f"m.r_{r} IS NOT NULL", f"m.r_{r}", join) for r in failing]
    return " UNION ALL ".join(parts) if parts else failing_rows(ctx, column, "false", "''")


def fix_plan(spec: RuleSpec, column: str, table: str) -> FixPlan:
    """The suggestion of addresses with one of the rule's ``fix_reasons``."""
    wanted = " OR ".join(f"r_{r} IS NOT NULL" for r in spec.opt("fix_reasons", ["typo_domain"]))
    c = f"t.{ident(column)}"
    fixes = f"(SELECT value, suggestion FROM {table} WHERE suggestion IS NOT NULL AND ({wanted}))"
    return FixPlan(f"coalesce(m.suggestion, {c})", f"LEFT JOIN {fixes} m ON m.value = CAST({c} AS VARCHAR)")
