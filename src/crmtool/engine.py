"""Plan and run a rule set on a table in the workspace, as set-based SQL.

Fixes run first: each column's fixes on its distinct values (or row by row where a fix reads
other columns), recorded in a changes table; the working table is the loaded table with the
fixed values joined back once. Checks then run on the fixed values, into a violations table.
Nothing here writes files; the API layer turns the result into outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, Location
from crmtool.kinds import KINDS
from crmtool.kinds.base import Kind, PlanContext, RuleSpec
from crmtool.rulefile import RuleSet, column_problems
from crmtool.sqltext import ident, sql_str
from crmtool.timing import Laps

if TYPE_CHECKING:

    import duckdb

    from crmtool.progress import Progress

#: the result tables live in the in-memory database ``crm_scratch`` (not TEMP, which is private to
#: one connection), so clean can write its audit change set on a second cursor while it writes its outputs
CHANGES = "crm_scratch.__changes"
#: kinds that only make sense on text: skipped on typed (e.g. Parquet numeric or date) columns
TEXT_ONLY = frozenset({"trim", "case", "unicode_nfc", "mojibake", "email_normalise", "decimal"})
VIOLATIONS = "crm_scratch.__violations"
#: at most this many rows, every column whose fixes read only itself is fixed row by row in one
#: statement, and every check runs on the rows: a table of distinct values saves nothing on a
#: small table and costs round trips
ROW_WISE_UP_TO = 10_000
#: above this share of distinct values (HyperLogLog estimate: half, plus a margin for its error) a
#: column whose fixes are SQL alone is fixed row by row (decision 0004, 2026-12-02)
ROW_WISE_SHARE = 0.55
#: how the changes table records a changed value: ``(column, SQL of the value) -> SQL``
RecordedAs = Callable[[str, str], str]


def as_is(_column: str, value: str) -> str:
    """Changed values recorded as they are (the default)."""
    return value


@dataclass
class RuleOutcome:
    """What one rule did: rows it looked at, failed, fixed and rejected, and its verdict."""

    spec: RuleSpec
    checked: int = 0
    failed: int = 0
    fixed: int = 0
    rejected: int = 0
    status: str = "pass"  # pass | fail | warn
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    sample_rows: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        s = self.spec
        return {
            "rule": s.name, "kind": s.kind, "severity": s.severity, "action": s.action,
            "columns": list(s.columns), "threshold": str(s.threshold), "checked": self.checked,
            "failed": self.failed, "failed_share": round(self.failed / self.checked, 6) if self.checked else 0.0,
            "fixed": self.fixed, "rejected": self.rejected, "status": self.status,
            "reasons": dict(sorted(self.reasons.items())), "sample_rows": self.sample_rows,
            "source": str(s.loc), "seconds": self.seconds,
        }


@dataclass
class EngineResult:
    work_table: str
    rows: int
    outcomes: list[RuleOutcome]
    rejected_rows: int
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(o.status == "fail" for o in self.outcomes)


def _bind_problems(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet,
                   skip: frozenset[str] | set[str] = frozenset()) -> list[tuple[Location, str]]:
    """SQL written by users must bind against the data before anything runs."""
    import duckdb

    problems = []
    for spec in ruleset.rules:
        if spec.name in skip:
            continue
        exprs = [("where", spec.where)] if spec.where else []
        if spec.kind == "sql":
            exprs.append(("expr", spec.opt("expr")))
        for label, expr in exprs:
            try:
                con.execute(f"SELECT ({expr}) FROM {ident(table)} LIMIT 0")
            except duckdb.Error as exc:
                problems.append((spec.loc, f"rule '{spec.name}': {label}: {str(exc).splitlines()[0]}"))
    return problems


@contextmanager
def _rule_errors(*specs: RuleSpec) -> Iterator[None]:
    """SQL that binds but fails on the data becomes a configuration error naming the rule(s).

    DuckDB's message can quote the offending value (customer data), so only its class is kept.
    """
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        kind = str(exc).split(":", 1)[0].strip() or type(exc).__name__
        problems = [(s.loc, f"rule '{s.name}': fails on the data ({kind}); values are not shown") for s in specs]
        raise ConfigError(problems, "check the rule's SQL (where, expr) against the column types") from None


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchall()[0]
    return int(row[0]) if row and row[0] is not None else 0


def _fix_steps(ruleset: RuleSet) -> dict[str, list[tuple[int, RuleSpec]]]:
    """Per column, in rule order, the rules that may fix it (normalisers and kinds with action fix)."""
    steps: dict[str, list[tuple[int, RuleSpec]]] = {}
    for index, spec in enumerate(ruleset.rules):
        kind = KINDS[spec.kind]
        if type(kind).fix is Kind.fix:
            continue
        for column in spec.columns:
            steps.setdefault(column, []).append((index, spec))
    return steps


def _needs_rows(spec: RuleSpec) -> bool:
    """A fix that reads other columns of the row cannot run on distinct values."""
    return bool(spec.where or spec.opt("region_column"))


def _fix_on_distinct(con: duckdb.DuckDBPyConnection, ctx: PlanContext, source: str, value: str, column: str,
                     steps: list[tuple[int, RuleSpec]], recorded_as: RecordedAs) -> str:
    """Run a column's fixes on its distinct values; record changes and flags; return the map table.

    ``value`` is SQL over ``source`` (alias ``w``) giving the column's text.

    Each step reads ``(__v0, <column>)`` (original and current value) and writes the next such
    table with ``__b``/``__a`` (before/after) beside. What each step changed (or flagged) is kept
    per distinct value and joined to the rows once for the whole column. The map table returned
    holds ``__v0`` and the final value for the values that changed, to be joined back once too.
    """
    dist = ctx.temp_name("dist")
    steps_table = ctx.temp_name("steps")
    col = ident(column)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {dist} AS SELECT __v0, __v0 AS {col} "
                f"FROM (SELECT DISTINCT {value} AS __v0 FROM {ident(source)} w WHERE __v0 IS NOT NULL)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {steps_table} (rule INTEGER, fix BOOLEAN, __v0 VARCHAR, "
                f"old VARCHAR, new VARCHAR)")
    ctx_d = ctx.on(dist)
    for index, spec in steps:
        plan = KINDS[spec.kind].fix(ctx_d, spec, column)
        if plan is None:
            continue
        nxt = ctx_d.temp_name("dist")
        kept = "__a" if spec.action == "fix" else "__b"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {nxt} AS SELECT __v0, {kept} AS {col}, __b, __a FROM "
                    f"(SELECT t.__v0, t.{col} AS __b, CAST({plan.expr} AS VARCHAR) AS __a "
                    f"FROM {dist} t {plan.join or ''})")
        con.execute(f"DROP TABLE {dist}")
        dist = ctx_d.table = nxt
        con.execute(f"INSERT INTO {steps_table} SELECT ?, ?, __v0, __b, __a FROM {dist} "
                    f"WHERE __b IS DISTINCT FROM __a", [index, spec.action == "fix"])
    def rows(steps_sql: str) -> str:
        return f"FROM {ident(source)} w JOIN ({steps_sql}) s ON {value} = s.__v0"

    # old and new are put in their recorded form once per distinct change, not once per row
    recorded = (f"SELECT rule, __v0, {recorded_as(column, 'old')} AS old, {recorded_as(column, 'new')} AS new "
                f"FROM {steps_table} WHERE fix")
    con.execute(f"INSERT INTO {CHANGES} SELECT s.rule, w._row, ?, s.old, s.new {rows(recorded)}", [column])
    con.execute(f"INSERT INTO {VIOLATIONS} SELECT s.rule, w._row, ?, 'value not normalised', false "
                f"{rows(f'SELECT rule, __v0 FROM {steps_table} WHERE NOT fix')}", [column])
    changed = ctx.temp_name("fixmap")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {changed} AS SELECT __v0, {col} FROM {dist} "
                f"WHERE {col} IS DISTINCT FROM __v0; DROP TABLE {dist}; DROP TABLE {steps_table}")
    return changed


def _row_wise_columns(con: duckdb.DuckDBPyConnection, table: str, steps: dict[str, list[tuple[int, RuleSpec]]],
                      total: int) -> list[str]:
    """The columns whose fixes run row by row (:func:`_fix_row_wise`) rather than on distinct values.

    On a small table every column whose fixes read only itself: a table of distinct values saves
    nothing there and costs round trips. Otherwise a column whose fixes are SQL alone (no Python
    per value) and most of whose values are distinct (HyperLogLog, one scan for all): mapping
    every value and joining it back costs more than working on the rows. The path never changes
    results, only time.
    """
    own = [c for c, col_steps in steps.items() if not any(_needs_rows(spec) for _i, spec in col_steps)]
    if total <= ROW_WISE_UP_TO:
        return own
    sql_only = [c for c in own if all(KINDS[spec.kind].fix_in_sql(spec) for _i, spec in steps[c])]
    if not sql_only:
        return []
    row = con.execute("SELECT " + ", ".join(f"approx_count_distinct({ident(c)})" for c in sql_only)
                      + f" FROM {ident(table)}").fetchall()[0]
    return [c for c, n in zip(sql_only, row, strict=True) if int(n or 0) > ROW_WISE_SHARE * total]


def _fix_row_wise(con: duckdb.DuckDBPyConnection, ctx: PlanContext, source: str, text: dict[str, str],
                  columns: dict[str, list[tuple[int, RuleSpec]]], recorded_as: RecordedAs, *,
                  small: bool = False) -> str | None:
    """Run the fixes of ``columns`` row by row, composed into one SELECT; record changes and flags.

    Each step is one level of nested SELECTs over the rows of ``source`` carrying, per column, the
    original text (``__v<n>``) and the current value under the column's own name, plus the value
    before and after each step (``__b<k>``/``__a<k>``). A step whose kind runs Python per value
    (small tables only, see :func:`_row_wise_columns`) maps the distinct values of its own
    column's levels below it (a temp table of the small table's column, from which the column's
    later levels go on) as it does on the distinct-value path. Only rows that some step changed or
    flagged are kept: the returned table (``_row``, ``__v<n>``, each column's final value), or
    None when no step applies; the working table takes the final values from it by ``_row``.
    On a ``small`` table each column's own levels run alone and are put side by side (``UNION
    ALL BY NAME``, one row per ``_row``): the same rows, without binding every column's levels
    inside every later column's; a large table keeps the one nest (one scan of its rows).
    """
    sql = ("SELECT w._row, " + ", ".join(f"{text[c]} AS __v{n}, {text[c]} AS {ident(c)}"
                                         for n, c in enumerate(columns)) + f" FROM {ident(source)} w")
    done: list[tuple[int, str, int, bool]] = []  # (column number, column, rule index, fix or flag) per step
    views = []
    chains = []  # per column, its own levels alone
    for n, (column, col_steps) in enumerate(columns.items()):
        col = ident(column)
        # the column's own levels alone, for the level tables of its Python steps (binding the
        # levels of every column before it each time would cost more than the step)
        own = f"SELECT w._row, {text[column]} AS __v{n}, {text[column]} AS {col} FROM {ident(source)} w"
        for index, spec in col_steps:
            kind = KINDS[spec.kind]
            step_ctx = ctx
            if not kind.fix_in_sql(spec):  # Python per value: on the distinct values of this level's input
                # kept as a table (a small table's one column): the mapping reads it, and the
                # column's later levels start from it, without binding the levels below again
                views.append(ctx.temp_name("level"))
                con.execute(f"CREATE OR REPLACE TEMP TABLE {views[-1]} AS {own}")
                own = f"SELECT * FROM {views[-1]}"
                step_ctx = ctx.on(views[-1])
            plan = kind.fix(step_ctx, spec, column)
            if plan is None:
                continue
            k = len(done)
            head = f"SELECT t.*, t.{col} AS __b{k}, CAST({plan.expr} AS VARCHAR) AS __a{k} FROM ("
            tail = f") t {plan.join or ''}"
            if spec.action == "fix":
                head, tail = f"SELECT * REPLACE (__a{k} AS {col}) FROM ({head}", f"{tail})"
            sql, own = head + sql + tail, head + own + tail
            done.append((n, column, index, spec.action == "fix"))
        chains.append(own)
    if small and len(chains) > 1:
        # a small table: each column's own levels side by side, one row per _row (each column's
        # values come from its chain alone, the others' are NULL there): binding every level of
        # every column in one nest costs more than the steps (2026-12-02 evening, decision 0014)
        sql = ("SELECT _row, any_value(COLUMNS(* EXCLUDE (_row))) FROM ("
               + " UNION ALL BY NAME ".join(f"({chain})" for chain in chains) + ") GROUP BY _row")
    if not done:
        for view in reversed(views):
            con.execute(f"DROP TABLE {view}")
        return None
    changed = [f"(__v{n} IS NOT NULL AND __b{k} IS DISTINCT FROM __a{k})" for k, (n, *_rest) in enumerate(done)]
    table = ctx.temp_name("rowfix")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM ({sql}) WHERE {' OR '.join(changed)}")
    for view in reversed(views):
        con.execute(f"DROP TABLE {view}")
    fixes = [f"SELECT {index} AS rule, _row, {sql_str(column)} AS \"column\", "
             f"{recorded_as(column, f'__b{k}')} AS old, {recorded_as(column, f'__a{k}')} AS new "
             f"FROM {table} WHERE {changed[k]}" for k, (_n, column, index, fix) in enumerate(done) if fix]
    flags = [f"SELECT {index} AS rule, _row, {sql_str(column)} AS \"column\", 'value not normalised', false "
             f"FROM {table} WHERE {changed[k]}" for k, (_n, column, index, fix) in enumerate(done) if not fix]
    for target, parts in ((CHANGES, fixes), (VIOLATIONS, flags)):
        if parts:
            con.execute(f"INSERT INTO {target} " + " UNION ALL ".join(parts))
    return table


def _fix_on_rows(con: duckdb.DuckDBPyConnection, ctx: PlanContext, work: str, column: str, index: int,
                 spec: RuleSpec, recorded_as: RecordedAs) -> None:
    plan = KINDS[spec.kind].fix(ctx, spec, column)
    if plan is None:
        return
    c = f"t.{ident(column)}"
    join = plan.join or ""
    expr = plan.expr
    if spec.where:
        # the filter is evaluated on its own, so its column names cannot clash with the plan's join
        con.execute(f"CREATE OR REPLACE TEMP TABLE __where AS SELECT _row FROM {ident(work)} WHERE ({spec.where})")
        join += " LEFT JOIN __where __w ON __w._row = t._row"
        expr = f"CASE WHEN __w._row IS NOT NULL THEN {plan.expr} ELSE {c} END"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __step AS SELECT * FROM (SELECT t._row, {c} AS old, "
                f"CAST({expr} AS VARCHAR) AS new FROM {ident(work)} t {join}) "
                f"WHERE old IS DISTINCT FROM new")
    if spec.action == "fix":
        con.execute(f"INSERT INTO {CHANGES} SELECT ?, _row, ?, {recorded_as(column, 'old')}, "
                    f"{recorded_as(column, 'new')} FROM __step", [index, column])
        con.execute(f"UPDATE {ident(work)} SET {ident(column)} = s.new FROM __step s WHERE {ident(work)}._row = s._row")
        ctx.rewrote(work, column)
    else:
        con.execute(f"INSERT INTO {VIOLATIONS} SELECT ?, _row, ?, 'value not normalised', false FROM __step",
                    [index, column])


def _on_distinct_candidate(spec: RuleSpec) -> bool:
    """Whether a check reads nothing but its one column's values (so may run per distinct value)."""
    return not spec.where and len(spec.columns) == 1 and KINDS[spec.kind].checks_value_only(spec)


def _distinct_estimates(con: duckdb.DuckDBPyConnection, work: str, ruleset: RuleSet) -> dict[str, int]:
    """Estimated distinct values (HyperLogLog, one scan for all) of each column a check may run
    on per distinct value: near-unique columns go straight to the row path, without building
    (and throwing away) a table of their distinct values."""
    columns = sorted({spec.columns[0] for spec in ruleset.rules if _on_distinct_candidate(spec)})
    if not columns:
        return {}
    row = con.execute("SELECT " + ", ".join(f"approx_count_distinct({ident(c)})" for c in columns)
                      + f" FROM {ident(work)}").fetchall()[0]
    return {c: int(n or 0) for c, n in zip(columns, row, strict=True)}


def _check_on_distinct(con: duckdb.DuckDBPyConnection, ctx: PlanContext, work: str, index: int, spec: RuleSpec,
                       total: int, estimate: int | None = None) -> bool:
    """Run a value-only check once per distinct value and join the failures back to the rows.

    Worth it where values repeat (dates, amounts, codes): parsing 30,000 distinct dates instead
    of a million rows. Returns False, having done nothing, where the rule reads more than its
    column, or where at least half the values are distinct (the row path is then cheaper): by
    ``estimate`` (approximate distinct count) where it says so clearly, else by the exact count.
    """
    kind = KINDS[spec.kind]
    if not _on_distinct_candidate(spec):
        return False
    if estimate is not None and 2 * estimate > 1.1 * total:  # HyperLogLog errs by a few percent
        return False
    col = ident(spec.columns[0])
    dist = ctx.temp_name("chk")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {dist} AS SELECT row_number() OVER () AS _row, {col} "
                f"FROM (SELECT DISTINCT {col} FROM {ident(work)})")
    if 2 * _count(con, f"SELECT count(*) FROM {dist}") > total:
        con.execute(f"DROP TABLE {dist}")
        return False
    ctx_d = ctx.on(dist)
    check_sql = kind.check(ctx_d, spec)
    if check_sql:
        con.execute(f"INSERT INTO {VIOLATIONS} SELECT ?, w._row, f.\"column\", f.reason, ? FROM ({check_sql}) f "
                    f"JOIN {dist} d ON d._row = f._row JOIN {ident(work)} w ON w.{col} IS NOT DISTINCT FROM d.{col}",
                    [index, spec.action == "reject"])
    con.execute(f"DROP TABLE {dist}")
    return True


def _config_problems(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet) -> None:
    """Raise one ConfigError for every column a rule names that the data lacks and every SQL that does not bind."""
    columns = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row"]
    problems = column_problems(ruleset, columns)
    # a rule whose SQL names a column the data lacks was reported above: binding it again adds nothing
    reported = {msg.split("'", 2)[1] for _loc, msg in problems if msg.startswith("rule '")}
    problems += _bind_problems(con, table, ruleset, skip=reported)
    if problems:
        raise ConfigError(problems, "fix the rule files or check that the right export was given")


def _typed_fix_steps(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet
                     ) -> tuple[dict[str, list[tuple[int, RuleSpec]]], dict[str, str], list[str]]:
    """The fix steps per column with text normalisers dropped on typed columns, the column types, and
    the typed columns that fixes turn into text."""
    steps = _fix_steps(ruleset)
    types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                             f"WHERE table_name = '{table}'").fetchall())
    retyped = []  # typed columns that fixes turn into text
    for col in sorted(steps):
        if types.get(col) in (None, "VARCHAR"):
            continue
        # text normalisers have nothing to do on typed values (a Parquet DOUBLE is already a number);
        # kinds that rewrite a value into text (phone -> E.164, date -> ISO) need the column as text
        steps[col] = [(i, spec) for i, spec in steps[col] if spec.kind not in TEXT_ONLY]
        if steps[col]:
            retyped.append(col)
        else:
            del steps[col]
    return steps, types, retyped


def create_result_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create (empty) the changes and violations tables the fixes and checks insert into."""
    con.execute("ATTACH IF NOT EXISTS ':memory:' AS crm_scratch")
    con.execute(f"CREATE OR REPLACE TABLE {CHANGES} (rule INTEGER, _row BIGINT, \"column\" VARCHAR, "
                f"old VARCHAR, new VARCHAR)")
    con.execute(f"CREATE OR REPLACE TABLE {VIOLATIONS} (rule INTEGER, _row BIGINT, \"column\" VARCHAR, "
                f"reason VARCHAR, reject BOOLEAN)")


def _fix_distinct_columns(con: duckdb.DuckDBPyConnection, ctx: PlanContext, table: str,
                          steps: dict[str, list[tuple[int, RuleSpec]]], text: dict[str, str],
                          recorded_as: RecordedAs, timer: dict[int, float], progress: Progress | None,
                          row_wise: list[str]) -> dict[str, str]:
    """Fixes, phase 1: each column whose fixes read only itself, on its distinct values (but those
    fixed row by row, ``row_wise``); returns the map tables."""
    maps: dict[str, str] = {}
    for column, col_steps in steps.items():
        if column in row_wise or any(_needs_rows(spec) for _i, spec in col_steps):
            continue
        if progress:
            progress(f"fixing {column}", len(maps) + 1, len(steps))
        start = time.perf_counter()
        with _rule_errors(*(spec for _i, spec in col_steps)):
            maps[column] = _fix_on_distinct(con, ctx, table, text[column], column, col_steps, recorded_as)
        share = (time.perf_counter() - start) / len(col_steps)
        for i, _spec in col_steps:
            timer[i] += share
    return maps


def _fix_columns_row_wise(con: duckdb.DuckDBPyConnection, ctx: PlanContext, table: str,
                          steps: dict[str, list[tuple[int, RuleSpec]]], row_wise: list[str], text: dict[str, str],
                          recorded_as: RecordedAs, timer: dict[int, float], *, small: bool = False) -> str | None:
    """Fixes, phase 1 (continued): the ``row_wise`` columns in one statement; returns its table of changed rows."""
    if not row_wise:
        return None
    col_steps = {c: steps[c] for c in row_wise}
    specs = [spec for c in row_wise for _i, spec in steps[c]]
    start = time.perf_counter()
    with _rule_errors(*specs):
        row_fixes = _fix_row_wise(con, ctx, table, text, col_steps, recorded_as, small=small)
    share = (time.perf_counter() - start) / len(specs)
    for c in row_wise:
        for i, _spec in steps[c]:
            timer[i] += share
    return row_fixes


def _make_work_table(con: duckdb.DuckDBPyConnection, ctx: PlanContext, table: str, work: str,
                     maps: dict[str, str], text: dict[str, str], retyped: list[str], copy: bool,
                     row_wise: list[str], row_fixes: str | None) -> str:
    """Join the fixed values back into the working table (or check ``table`` itself); returns its name."""
    # the working table: the loaded rows with the fixed values joined back (and typed columns that
    # fixes rewrite as text); its row order carries no meaning, every reader sorts on _row
    replaced = [f"CASE WHEN m{n}.__v0 IS NULL THEN {text[c]} ELSE m{n}.{ident(c)} END AS {ident(c)}"
                for n, c in enumerate(maps)]
    joins = " ".join(f"LEFT JOIN {m} m{n} ON {text[c]} = m{n}.__v0" for n, (c, m) in enumerate(maps.items()))
    if row_fixes:  # the rows a row-wise fix changed, by row number (see _fix_row_wise)
        replaced += [f"CASE WHEN r.__v{n} IS NULL THEN {text[c]} ELSE r.{ident(c)} END AS {ident(c)}"
                     for n, c in enumerate(row_wise)]
        joins += f" LEFT JOIN {row_fixes} r ON r._row = w._row"
    replaced += [f"{text[c]} AS {ident(c)}" for c in retyped if c not in maps and not (row_fixes and c in row_wise)]
    if copy:
        con.execute(f"CREATE OR REPLACE TABLE {ident(work)} AS SELECT w.* "
                    f"{'REPLACE (' + ', '.join(replaced) + ')' if replaced else ''} FROM {ident(table)} w {joins}")
    else:  # nothing to fix and nobody reads a copy: check the loaded rows as they are
        con.execute(f"DROP TABLE IF EXISTS {ident(work)}")  # an earlier run's copy is not this run's
        work = ctx.table = table
    for mapped in [*maps.values(), *([row_fixes] if row_fixes else [])]:  # joined back: the memory is
        con.execute(f"DROP TABLE {mapped}")  # worth more to the steps that follow
    return work


def _fix_row_rules(con: duckdb.DuckDBPyConnection, ctx: PlanContext, work: str, ruleset: RuleSet,
                   steps: dict[str, list[tuple[int, RuleSpec]]], fixed: set[str],
                   recorded_as: RecordedAs, timer: dict[int, float]) -> None:
    """Fixes, phase 2: row by row, in rule order, where a fix reads more than its own column (the
    columns not ``fixed`` in phase 1)."""
    for index, spec in enumerate(ruleset.rules):
        for column in spec.columns:
            if column in steps and column not in fixed and any(i == index for i, _s in steps[column]):
                start = time.perf_counter()
                with _rule_errors(spec):
                    _fix_on_rows(con, ctx, work, column, index, spec, recorded_as)
                timer[index] += time.perf_counter() - start


def _run_checks(con: duckdb.DuckDBPyConnection, ctx: PlanContext, work: str, ruleset: RuleSet,
                types: dict[str, str], total: int, timer: dict[int, float], progress: Progress | None) -> None:
    """Checks, in rule order, on the fixed values: each rule's failures go into the violations table.

    On a small table (``ROW_WISE_UP_TO``) every check runs on the rows, and all of them in one
    INSERT (:func:`_insert_checks`): a table of distinct values there saves nothing, and a
    statement per rule costs more than its rows."""
    small = total <= ROW_WISE_UP_TO
    estimates = {} if small else _distinct_estimates(con, work, ruleset)
    merged: list[tuple[int, RuleSpec, str]] = []  # small table: (rule, spec, its INSERT's SELECT), run at the end
    for index, spec in enumerate(ruleset.rules):
        if progress:
            progress(f"checking {spec.name}", index + 1, len(ruleset.rules))
        start = time.perf_counter()
        if spec.kind in TEXT_ONLY and spec.columns and all(types.get(c) not in (None, "VARCHAR") for c in spec.columns):
            continue  # typed values already are what a text normaliser checks for
        with _rule_errors(spec):
            on_distinct = not small and _check_on_distinct(
                con, ctx, work, index, spec, total, estimates.get(spec.columns[0]) if spec.columns else None)
            check_sql = None if on_distinct else KINDS[spec.kind].check(ctx, spec)
            if check_sql:
                if spec.where:
                    check_sql = (f"SELECT f.* FROM ({check_sql}) f SEMI JOIN "
                                 f"(SELECT _row FROM {ident(work)} WHERE ({spec.where})) w ON f._row = w._row")
                select = (f"SELECT {int(index)} AS rule, _row, \"column\", reason, "
                          f"{'true' if spec.action == 'reject' else 'false'} AS reject FROM ({check_sql})")
                if small:
                    merged.append((index, spec, select))
                else:
                    con.execute(f"INSERT INTO {VIOLATIONS} {select}")
        timer[index] += time.perf_counter() - start
    _insert_checks(con, merged, timer)


def _insert_checks(con: duckdb.DuckDBPyConnection, parts: list[tuple[int, RuleSpec, str]],
                   timer: dict[int, float]) -> None:
    """A small table's checks in one INSERT (``UNION ALL`` of each rule's failing rows), its time
    shared among the rules. SQL that fails on the data is run again rule by rule, so that the
    error names the rule it is in (and the rules before it are recorded, as they were one by one)."""
    import duckdb

    if not parts:
        return
    start = time.perf_counter()
    try:
        con.execute(f"INSERT INTO {VIOLATIONS} " + " UNION ALL ".join(f"({select})" for _i, _s, select in parts))
    except duckdb.Error:
        for _index, spec, select in parts:
            with _rule_errors(spec):
                con.execute(f"INSERT INTO {VIOLATIONS} {select}")
    share = (time.perf_counter() - start) / len(parts)
    for index, _spec, _select in parts:
        timer[index] += share


def _summarise_outcomes(con: duckdb.DuckDBPyConnection, work: str, ruleset: RuleSet, total: int,
                        timer: dict[int, float], sample_size: int) -> list[RuleOutcome]:
    """Each rule's outcome from the changes and violations tables, in rule order."""
    # outcomes from the changes and violations tables, in two grouped queries
    fixed = dict(con.execute(f"SELECT rule, count(*) FROM {CHANGES} GROUP BY rule").fetchall())
    failed = dict(con.execute(f"SELECT rule, count(DISTINCT _row) FROM {VIOLATIONS} GROUP BY rule").fetchall())
    reasons: dict[int, dict[str, int]] = {}
    for rule, reason, n in con.execute(f"SELECT rule, reason, count(*) FROM {VIOLATIONS} GROUP BY ALL").fetchall():
        reasons.setdefault(rule, {})[reason] = int(n)
    samples: dict[int, list[int]] = {}
    for rule, rows in con.execute(
            f"SELECT rule, list(_row ORDER BY _row)[1:{int(sample_size)}] FROM "
            f"(SELECT DISTINCT rule, _row FROM {VIOLATIONS}) GROUP BY rule").fetchall():
        samples[rule] = [int(r) for r in rows]
    outcomes = []
    for index, spec in enumerate(ruleset.rules):
        outcome = RuleOutcome(spec)
        outcome.checked = (_count(con, f"SELECT count(*) FROM {ident(work)} WHERE ({spec.where})")
                           if spec.where else total)
        outcome.fixed = int(fixed.get(index, 0))
        outcome.failed = int(failed.get(index, 0))
        outcome.reasons = reasons.get(index, {})
        outcome.sample_rows = samples.get(index, [])
        outcome.rejected = outcome.failed if spec.action == "reject" else 0
        if spec.threshold.exceeded(outcome.failed, outcome.checked):
            outcome.status = "fail" if spec.severity == "error" else "warn"
        outcome.seconds = round(timer[index], 4)
        outcomes.append(outcome)
    return outcomes


def run_rules(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet, *, work_table: str | None = None,
              sample_size: int = 5, progress: Progress | None = None,
              recorded_as: RecordedAs = as_is, copy_unchanged: bool = True) -> EngineResult:
    """Run every rule of ``ruleset`` over ``table``; fixes land in ``work_table`` (a copy).

    ``copy_unchanged=False`` (validate, which writes nothing): where no fix applies, the checks
    read ``table`` itself and no working copy is made; the result's ``work_table`` is then
    ``table``, which the caller must not drop or change.

    Each change is a row of the changes table, its old and new values as ``recorded_as`` gives
    them (the audit log records personal values as keyed hashes, so clear values need not be
    kept even in the workspace's temporary tables).

    Fixes run first, then checks (on the fixed values), each in rule order. A column whose
    fixes read only the column itself is fixed on its *distinct* values and joined back once;
    fixes with a ``where`` (or reading another column) run row by row in SQL after those.
    """
    _config_problems(con, table, ruleset)
    work = work_table or f"work_{table}"
    steps, types, retyped = _typed_fix_steps(con, table, ruleset)
    create_result_tables(con)
    text = {c: f"CAST(w.{ident(c)} AS VARCHAR)" if c in retyped else f"w.{ident(c)}" for c in steps}
    total = _count(con, f"SELECT count(*) FROM {ident(table)}")
    ctx = PlanContext(con, work, small=total <= ROW_WISE_UP_TO)
    timer = {i: 0.0 for i in range(len(ruleset.rules))}

    laps = Laps()
    lap = laps.lap
    lap("prepare")
    row_wise = _row_wise_columns(con, table, steps, total)
    maps = _fix_distinct_columns(con, ctx, table, steps, text, recorded_as, timer, progress, row_wise)
    lap("fix_distinct")
    row_fixes = _fix_columns_row_wise(con, ctx, table, steps, row_wise, text, recorded_as, timer, small=ctx.small)
    lap("fix_row_wise")
    work = _make_work_table(con, ctx, table, work, maps, text, retyped, bool(steps) or copy_unchanged,
                            row_wise, row_fixes)
    lap("fix_apply")
    _fix_row_rules(con, ctx, work, ruleset, steps, set(maps) | set(row_wise), recorded_as, timer)
    lap("fix_rows")
    _run_checks(con, ctx, work, ruleset, types, total, timer, progress)
    lap("checks")
    outcomes = _summarise_outcomes(con, work, ruleset, total, timer, sample_size)
    rejected = _count(con, f"SELECT count(DISTINCT _row) FROM {VIOLATIONS} WHERE reject")
    for cached in ctx.tables.values():
        con.execute(f"DROP TABLE IF EXISTS {cached}")
    lap("summarise")
    return EngineResult(work, total, outcomes, rejected, laps.timings)
