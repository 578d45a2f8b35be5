"""The checks of a rule set (and the fixes they run after) as named SELECT steps on any backend.

This is the engine's plan (:mod:`crmtool.engine`) written without ``UPDATE``, ``INSERT``,
``rowid`` or ``REPLACE``: per column, the fixes run on its distinct values as a chain of SELECT
steps; the working table is one SELECT joining the fixed values back; every check is a SELECT of
its failing rows; the violations are their ``UNION ALL``; and the outcomes come from one grouped
SELECT of per-rule failure counts (``GROUPING SETS``: per rule, and per rule and reason). The
kinds plan exactly as they do on DuckDB: their per-value Python goes through
:meth:`Backend.map_values` (Arrow batches on DuckDB, ``mapInArrow`` on Spark).

Kinds not in :data:`PORTED_KINDS` are refused before anything runs, one configuration error
naming each rule and kind: never a silent pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from crmtool.backend.base import Backend
from crmtool.engine import TEXT_ONLY, EngineResult, RuleOutcome
from crmtool.errors import ConfigError, EngineError, Location
from crmtool.kinds import KINDS
from crmtool.kinds.base import Kind, PlanContext, RuleSpec
from crmtool.rulefile import column_problems
from crmtool.ruleset import RuleSet
from crmtool.sqltext import ident, sql_str

#: kinds whose fix and check run on every backend (the rest are DuckDB-only for now)
PORTED_KINDS = frozenset({"required", "unique", "regex", "allowed", "range", "sql", "email", "phone", "date",
                          "national_id", "postal_code", "trim", "case", "decimal", "mojibake", "email_normalise",
                          "unicode_nfc", "email_risk"})
VIOLATIONS = "__bk_violations"
CHANGES = "__bk_changes"


class _Door:
    """What a kind may reach as ``ctx.con``: ``execute`` through the backend (its one UPDATE of a
    per-value table becomes a SELECT step there)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        if params:
            raise EngineError("a kind passed SQL parameters, which only the DuckDB engine takes")
        self.backend.execute(sql)


@dataclass
class BackendPlanContext(PlanContext):
    """A :class:`PlanContext` whose per-distinct-value mapping runs on a :class:`Backend`."""

    backend: Any = None
    #: the local workspace connection (its MX cache, history): what stays on this machine
    home: Any = None

    def on(self, table: str) -> BackendPlanContext:
        return BackendPlanContext(self.con, table, self.cache, self.names, self.tables, backend=self.backend,
                                  home=self.home)

    def has_duckdb_sql(self) -> bool:
        return bool(self.backend.dialect == "duckdb")

    def map_distinct(self, value_sql: str, func: Callable[[str], Any], out: list[tuple[str, str]],
                     cache_key: tuple[Any, ...], prefilter: str | None = None,
                     fast: dict[str, str] | None = None, fast_input: str | None = None,
                     settled: str | None = None) -> str:
        """Every distinct value goes to ``func`` (the SQL fast paths are DuckDB's optimisation;
        they agree with ``func`` by test, so skipping them changes no answer)."""
        key = (*cache_key, value_sql, self.table, prefilter)
        name = self.tables.get(key)
        if name is None:
            name = self.tables[key] = self.temp_name("bkmap")
            where = f"v IS NOT NULL AND ({prefilter})" if prefilter else "v IS NOT NULL"
            values = (f"SELECT DISTINCT v FROM (SELECT CAST({value_sql} AS VARCHAR) AS v "
                      f"FROM {ident(self.table)} t) d WHERE {where}")
            self.backend.map_values(name, values, func, out)
        return name


def _needs_rows(spec: RuleSpec) -> bool:
    """A fix that reads other columns of the row (engine._needs_rows): its column's fixes run on
    the distinct (value, region) pairs of the rows its ``where`` selects, after the others."""
    return bool(spec.where or spec.opt("region_column"))


def unported_problems(ruleset: RuleSet) -> list[tuple[Location, str]]:
    """Rules that cannot run off DuckDB yet, each with its place and kind."""
    problems = []
    for spec in ruleset.rules:
        if spec.kind not in PORTED_KINDS:
            problems.append((spec.loc, f"rule '{spec.name}': kind '{spec.kind}' does not run on Spark yet"))
    return problems


def _config_problems(backend: Backend, table: str, ruleset: RuleSet) -> dict[str, str]:
    """One ConfigError for unported kinds, missing columns and SQL that does not bind; the types."""
    problems = unported_problems(ruleset)
    types = dict(backend.columns(table))
    problems += column_problems(ruleset, [c for c in types if c != "_row"])
    reported = {msg.split("'", 2)[1] for _loc, msg in problems if msg.startswith("rule '")}
    for spec in ruleset.rules:
        exprs = [("where", spec.where)] if spec.where else []
        exprs += [("expr", spec.opt("expr"))] if spec.kind == "sql" else []
        for label, expr in exprs:
            if spec.name in reported:
                continue
            try:
                backend.fetch(f"SELECT ({expr}) AS x FROM {ident(table)} LIMIT 0")
            except EngineError as exc:
                problems.append((spec.loc, f"rule '{spec.name}': {label}: {exc.message}"))
    if problems:
        raise ConfigError(problems, "run these rules on --engine duckdb (the default), or fix the rule files")
    return types


def _fix_steps(ruleset: RuleSet, types: dict[str, str]) -> dict[str, list[tuple[int, RuleSpec]]]:
    """Per column, in rule order, the rules that may fix it; text normalisers dropped on typed columns."""
    steps: dict[str, list[tuple[int, RuleSpec]]] = {}
    for index, spec in enumerate(ruleset.rules):
        if type(KINDS[spec.kind]).fix is Kind.fix:
            continue
        for column in spec.columns:
            if types.get(column) not in (None, "VARCHAR") and spec.kind in TEXT_ONLY:
                continue
            steps.setdefault(column, []).append((index, spec))
    return steps


@dataclass
class _Plan:
    """What the fix phase leaves: per column its map table, and the change and flag SELECTs."""

    maps: dict[str, str]
    changes: list[str]
    flags: list[str]
    tables: list[str]


def _fix_column(ctx: BackendPlanContext, source: str, column: str, steps: list[tuple[int, RuleSpec]],
                plan: _Plan) -> None:
    """A column's fixes on its distinct values, as a chain of SELECT steps (engine._fix_on_distinct)."""
    backend: Backend = ctx.backend
    col, value = ident(column), f"CAST(w.{ident(column)} AS VARCHAR)"
    dist = ctx.temp_name("bkdist")
    backend.create_table(dist, f"SELECT __v0, __v0 AS {col} FROM (SELECT DISTINCT {value} AS __v0 "
                               f"FROM {ident(source)} w WHERE {value} IS NOT NULL) d", keep=True)
    plan.tables.append(dist)
    ctx_d = ctx.on(dist)
    for index, spec in steps:
        fix = KINDS[spec.kind].fix(ctx_d, spec, column)
        if fix is None:
            continue
        nxt = ctx.temp_name("bkdist")
        kept = "__a" if spec.action == "fix" else "__b"
        backend.create_table(nxt, f"SELECT __v0, {kept} AS {col}, __b, __a FROM (SELECT t.__v0, t.{col} AS __b, "
                                  f"CAST({fix.expr} AS VARCHAR) AS __a FROM {dist} t {fix.join or ''}) s", keep=True)
        plan.tables.append(nxt)
        dist = ctx_d.table = nxt
        rows = (f"FROM {ident(source)} w JOIN (SELECT __v0, __b, __a FROM {nxt} WHERE __b IS DISTINCT FROM __a) s "
                f"ON {value} = s.__v0")
        if spec.action == "fix":  # the value before and after this step, as the engine records them
            plan.changes.append(f"SELECT {index} AS rule, w._row, {sql_str(column)} AS \"column\", "
                                f"s.__b AS old, s.__a AS new {rows}")
        else:
            plan.flags.append(f"SELECT {index} AS rule, w._row, {sql_str(column)} AS \"column\", "
                              f"'value not normalised' AS reason, false AS reject {rows}")
    final = ctx.temp_name("bkfixmap")
    backend.create_table(final, f"SELECT __v0, {col} FROM {dist} WHERE {col} IS DISTINCT FROM __v0", keep=True)
    plan.tables.append(final)
    plan.maps[column] = final


def _work_table(backend: Backend, source: str, work: str, columns: list[str], plan: _Plan,
                as_text: set[str]) -> None:
    """The loaded rows with every fixed value joined back once (engine._make_work_table); the
    columns ``as_text`` (fixed row by row later) as text."""
    selects: list[str] = []
    joins: list[str] = []
    for column in columns:
        c = ident(column)
        if column in as_text:
            selects.append(f"CAST(w.{c} AS VARCHAR) AS {c}")
        elif column in plan.maps:
            n = len(joins)
            text = f"CAST(w.{c} AS VARCHAR)"
            joins.append(f"LEFT JOIN {plan.maps[column]} m{n} ON {text} = m{n}.__v0")
            selects.append(f"CASE WHEN m{n}.__v0 IS NULL THEN {text} ELSE m{n}.{c} END AS {c}")
        else:
            selects.append(f"w.{c}")
    backend.create_table(work, f"SELECT {', '.join(selects)} FROM {ident(source)} w {' '.join(joins)}", keep=True)


def _fix_on_pairs(ctx: BackendPlanContext, work: str, columns: list[str], column: str, index: int,
                  spec: RuleSpec, plan: _Plan) -> str:
    """One fix step that reads more than its column (engine._fix_on_rows), on distinct pairs.

    The step's inputs are the column's value and, for a phone fix, its ``region_column``, on the
    rows its ``where`` selects (evaluated on ``work`` as it is now): the distinct such pairs are
    the step's table, the kind's fix runs on them (its per-value Python once per distinct pair),
    and the changed pairs are joined back to the rows on both values and the ``where`` flag.
    Returns the working table after the step (a new one for a fix that changed values)."""
    backend: Backend = ctx.backend
    region = spec.opt("region_column")
    keys = [column, *([region] if region and region != column else [])]
    where = f" WHERE ({spec.where})" if spec.where else ""
    pairs = ctx.temp_name("bkpairs")
    backend.create_table(pairs, f"SELECT DISTINCT {', '.join(ident(k) for k in keys)} FROM {ident(work)}{where}",
                         keep=True)
    plan.tables.append(pairs)
    fix = KINDS[spec.kind].fix(ctx.on(pairs), spec, column)
    if fix is None:
        return work
    col = ident(column)
    step = ctx.temp_name("bkstep")
    backend.create_table(step, f"SELECT * FROM (SELECT {', '.join(f't.{ident(k)}' for k in keys)}, t.{col} AS __b, "
                               f"CAST({fix.expr} AS VARCHAR) AS __a, true AS __m FROM {pairs} t {fix.join or ''}) s "
                               f"WHERE __b IS DISTINCT FROM __a", keep=True)
    plan.tables.append(step)
    flag = f"CASE WHEN ({spec.where}) THEN true ELSE false END" if spec.where else "true"
    on = " AND ".join(f"w.{ident(k)} IS NOT DISTINCT FROM s.{ident(k)}" for k in keys)
    source = f"(SELECT *, {flag} AS __w FROM {ident(work)}) w"
    rows = f"{source} JOIN {step} s ON w.__w AND {on}"
    if spec.action != "fix":
        plan.flags.append(f"SELECT {index} AS rule, w._row, {sql_str(column)} AS \"column\", "
                          f"'value not normalised' AS reason, false AS reject FROM {rows}")
        return work
    plan.changes.append(f"SELECT {index} AS rule, w._row, {sql_str(column)} AS \"column\", "
                        f"s.__b AS old, s.__a AS new FROM {rows}")
    selects = ", ".join(f"CASE WHEN s.__m THEN s.__a ELSE w.{col} END AS {col}" if c == column else f"w.{ident(c)}"
                        for c in columns)
    nxt = ctx.temp_name("bkwork")
    backend.create_table(nxt, f"SELECT {selects} FROM {source} LEFT JOIN {step} s ON w.__w AND {on}", keep=True)
    plan.tables.append(nxt)
    return nxt


def _fix_row_rules(ctx: BackendPlanContext, first: str, work: str, columns: list[str], ruleset: RuleSet,
                   steps: dict[str, list[tuple[int, RuleSpec]]], plan: _Plan) -> None:
    """Fixes, phase 2 (engine._fix_row_rules): in rule order, the steps of the columns some fix
    of which reads more than the column, from ``first``; the last step's table becomes ``work``."""
    current = first
    for index, spec in enumerate(ruleset.rules):
        for column in spec.columns:
            if column in steps and column not in plan.maps and any(i == index for i, _s in steps[column]):
                current = _fix_on_pairs(ctx, current, columns, column, index, spec, plan)
    ctx.backend.create_table(work, f"SELECT * FROM {current}", keep=True)


def _check_selects(ctx: BackendPlanContext, work: str, ruleset: RuleSet, types: dict[str, str],
                   timer: dict[int, float]) -> list[str]:
    """Each rule's failing rows as ``(rule, _row, column, reason, reject)``, in rule order."""
    parts = []
    for index, spec in enumerate(ruleset.rules):
        if spec.kind in TEXT_ONLY and spec.columns and all(types.get(c) not in (None, "VARCHAR") for c in spec.columns):
            continue  # typed values already are what a text normaliser checks for
        start = time.perf_counter()
        check = KINDS[spec.kind].check(ctx, spec)
        timer[index] += time.perf_counter() - start
        if not check:
            continue
        if spec.where:
            check = f"SELECT f.* FROM ({check}) f WHERE f._row IN (SELECT _row FROM {ident(work)} WHERE ({spec.where}))"
        parts.append(f"SELECT {index} AS rule, c._row, c.\"column\", c.reason, "
                     f"{'true' if spec.action == 'reject' else 'false'} AS reject FROM ({check}) c")
    return parts


def _union(parts: list[str], empty: str) -> str:
    return " UNION ALL ".join(parts) if parts else empty


def _outcomes(backend: Backend, work: str, ruleset: RuleSet, total: int, sample_size: int,
              timer: dict[int, float]) -> list[RuleOutcome]:
    """Each rule's outcome: one grouped SELECT of failure counts (per rule, per rule and reason),
    one of the first rows per rule, one of the fix counts, one of the rows each ``where`` selects."""
    failed: dict[int, int] = {}
    reasons: dict[int, dict[str, int]] = {}
    for rule, reason, n, rows, by_rule in backend.fetch(
            f"SELECT rule, reason, count(*) AS n, count(DISTINCT _row) AS r, grouping(reason) AS g FROM {VIOLATIONS} "
            f"GROUP BY GROUPING SETS ((rule), (rule, reason))"):
        if by_rule:
            failed[int(rule)] = int(rows)
        else:
            reasons.setdefault(int(rule), {})[str(reason)] = int(n)
    samples: dict[int, list[int]] = {}
    for rule, row in backend.fetch(
            f"SELECT rule, _row FROM (SELECT rule, _row, row_number() OVER (PARTITION BY rule ORDER BY _row) AS n "
            f"FROM (SELECT DISTINCT rule, _row FROM {VIOLATIONS}) d) s WHERE n <= {int(sample_size)} "
            f"ORDER BY rule, _row"):
        samples.setdefault(int(rule), []).append(int(row))
    fixed = {int(r): int(n) for r, n in backend.fetch(f"SELECT rule, count(*) FROM {CHANGES} GROUP BY rule")}
    wheres = [(i, s.where) for i, s in enumerate(ruleset.rules) if s.where]
    checked = dict.fromkeys(range(len(ruleset.rules)), total)
    if wheres:
        row = backend.fetch("SELECT " + ", ".join(f"sum(CASE WHEN ({w}) THEN 1 ELSE 0 END) AS w{i}" for i, w in wheres)
                            + f" FROM {ident(work)}")[0]
        checked.update({i: int(n or 0) for (i, _w), n in zip(wheres, row, strict=True)})
    outcomes = []
    for index, spec in enumerate(ruleset.rules):
        outcome = RuleOutcome(spec, checked=checked[index], failed=failed.get(index, 0), fixed=fixed.get(index, 0),
                              reasons=reasons.get(index, {}), sample_rows=samples.get(index, []))
        outcome.rejected = outcome.failed if spec.action == "reject" else 0
        if spec.threshold.exceeded(outcome.failed, outcome.checked):
            outcome.status = "fail" if spec.severity == "error" else "warn"
        outcome.seconds = round(timer[index], 4)
        outcomes.append(outcome)
    return outcomes


def run_checks(backend: Backend, table: str, ruleset: RuleSet, *, work_table: str = "__bk_work",
               sample_size: int = 5, keep_results: bool = False, home: Any = None) -> EngineResult:
    """Run ``ruleset``'s fixes and checks over ``table`` on ``backend``; the same outcomes as
    :func:`crmtool.engine.run_rules` gives on DuckDB (the parity tests compare them).

    ``keep_results``: leave the violations ``(rule, _row, column, reason, reject)`` and changes
    ``(rule, _row, column, old, new)`` tables (:data:`VIOLATIONS`, :data:`CHANGES`; old and new
    are each fix step's value before and after, as text) for the caller to read. ``home``: the
    local workspace connection (email_risk's MX cache and history; the DuckDB backend's own
    connection by default)."""
    start = time.perf_counter()
    types = _config_problems(backend, table, ruleset)
    columns = [c for c, _t in backend.columns(table)]
    total = int(backend.fetch(f"SELECT count(*) FROM {ident(table)}")[0][0])
    home = home if home is not None else getattr(backend, "con", None)
    ctx = BackendPlanContext(cast(Any, _Door(backend)), work_table, backend=backend, home=home)
    timer = dict.fromkeys(range(len(ruleset.rules)), 0.0)
    plan = _Plan({}, [], [], [])
    phases: dict[str, float] = {}
    steps = _fix_steps(ruleset, types)
    on_rows = {c for c, col_steps in steps.items() if any(_needs_rows(spec) for _i, spec in col_steps)}
    for column, col_steps in steps.items():
        if column not in on_rows:
            _fix_column(ctx, table, column, col_steps, plan)
    try:
        # with fixes on rows to come, the joined table is their first input, kept apart from the
        # final working table (their change rows are read from each step's input)
        first = ctx.temp_name("bkwork") if on_rows else work_table
        _work_table(backend, table, first, columns, plan, on_rows)
        if on_rows:
            plan.tables.append(first)
            _fix_row_rules(ctx, first, work_table, columns, ruleset, steps, plan)
        phases["fix"] = time.perf_counter() - start
        backend.create_table(CHANGES, _union(plan.changes, "SELECT 0 AS rule, CAST(0 AS BIGINT) AS _row, '' AS "
                                                           "\"column\", '' AS old, '' AS new WHERE false"), keep=True)
        parts = plan.flags + _check_selects(ctx, work_table, ruleset, types, timer)
        backend.create_table(VIOLATIONS, _union(parts, "SELECT 0 AS rule, CAST(0 AS BIGINT) AS _row, '' AS \"column\", "
                                                       "'' AS reason, false AS reject WHERE false"), keep=True)
        phases["checks"] = time.perf_counter() - start - phases["fix"]
        outcomes = _outcomes(backend, work_table, ruleset, total, sample_size, timer)
        rejected = int(backend.fetch(f"SELECT count(DISTINCT _row) FROM {VIOLATIONS} WHERE reject")[0][0])
    finally:
        for name in [*plan.tables, *ctx.tables.values(), *([] if keep_results else [CHANGES, VIOLATIONS])]:
            backend.drop_table(name)
    phases["summarise"] = time.perf_counter() - start - phases["fix"] - phases.get("checks", 0.0)
    return EngineResult(work_table, total, outcomes, rejected, {k: round(v, 4) for k, v in phases.items()})
