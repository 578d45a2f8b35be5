"""Plan and run a rule set on a table in the workspace, as set-based SQL.

The engine copies the loaded table to a working table, then runs the rules in file order:
fixes become ``UPDATE`` statements over the rows whose value changes (recorded in a changes
table), checks become ``INSERT INTO`` a violations table. Nothing here writes files; the API
layer turns the result into outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, Location
from crmtool.kinds import KINDS
from crmtool.kinds.base import PlanContext, RuleSpec, ident
from crmtool.rulefile import RuleSet, column_problems

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

CHANGES = "__changes"
VIOLATIONS = "__violations"


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
            "source": str(s.loc),
        }


@dataclass
class EngineResult:
    work_table: str
    rows: int
    outcomes: list[RuleOutcome]
    rejected_rows: int

    @property
    def failed(self) -> bool:
        return any(o.status == "fail" for o in self.outcomes)


def _bind_problems(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet) -> list[tuple[Location, str]]:
    """SQL written by users must bind against the data before anything runs."""
    import duckdb

    problems = []
    for spec in ruleset.rules:
        exprs = [("where", spec.where)] if spec.where else []
        if spec.kind == "sql":
            exprs.append(("expr", spec.opt("expr")))
        for label, expr in exprs:
            try:
                con.execute(f"SELECT ({expr}) FROM {ident(table)} LIMIT 0")
            except duckdb.Error as exc:
                problems.append((spec.loc, f"rule '{spec.name}': {label}: {str(exc).splitlines()[0]}"))
    return problems


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def run_rules(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet, *, work_table: str | None = None,
              sample_size: int = 5, progress: Callable[[str], None] | None = None) -> EngineResult:
    """Run every rule of ``ruleset`` over ``table``; fixes land in ``work_table`` (a copy)."""
    columns = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row"]
    problems = column_problems(ruleset, columns)
    work = work_table or f"work_{table}"
    con.execute(f"CREATE OR REPLACE TABLE {ident(work)} AS SELECT * FROM {ident(table)} ORDER BY _row")
    problems += _bind_problems(con, work, ruleset)
    if problems:
        raise ConfigError(problems, "fix the rule files or check that the right export was given")
    # text fixes need text columns
    types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                             f"WHERE table_name = '{work}'").fetchall())
    fixed_columns = {c for s in ruleset.rules if s.action == "fix" for c in s.columns}
    for col in sorted(fixed_columns):
        if types.get(col) not in (None, "VARCHAR"):
            con.execute(f"ALTER TABLE {ident(work)} ALTER {ident(col)} TYPE VARCHAR")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CHANGES} (rule INTEGER, _row BIGINT, \"column\" VARCHAR, "
                f"old VARCHAR, new VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {VIOLATIONS} (rule INTEGER, _row BIGINT, \"column\" VARCHAR, "
                f"reason VARCHAR, reject BOOLEAN)")
    total = _count(con, f"SELECT count(*) FROM {ident(work)}")
    ctx = PlanContext(con, work)
    outcomes: list[RuleOutcome] = []
    for index, spec in enumerate(ruleset.rules):
        if progress:
            progress(spec.name)
        start = time.perf_counter()
        outcome = RuleOutcome(spec)
        kind = KINDS[spec.kind]
        outcome.checked = (_count(con, f"SELECT count(*) FROM {ident(work)} WHERE ({spec.where})")
                           if spec.where else total)
        for column in spec.columns:
            plan = kind.fix(ctx, spec, column)
            if plan is None:
                continue
            c = f"t.{ident(column)}"
            expr = f"CASE WHEN {spec.where} THEN {plan.expr} ELSE {c} END" if spec.where else plan.expr
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE __step AS SELECT t._row, {c} AS old, CAST({expr} AS VARCHAR) AS new "
                f"FROM {ident(work)} t {plan.join or ''}"
            )
            con.execute(f"DELETE FROM __step WHERE old IS NOT DISTINCT FROM new")
            changed = _count(con, "SELECT count(*) FROM __step")
            if not changed:
                continue
            if spec.action == "fix":
                con.execute(f"INSERT INTO {CHANGES} SELECT ?, _row, ?, old, new FROM __step", [index, column])
                con.execute(f"UPDATE {ident(work)} SET {ident(column)} = s.new FROM __step s "
                            f"WHERE {ident(work)}._row = s._row")
                outcome.fixed += changed
            else:  # flag: report what a fix would change
                con.execute(f"INSERT INTO {VIOLATIONS} SELECT ?, _row, ?, 'value not normalised', false FROM __step",
                            [index, column])
        if kind.check is not None:
            check_sql = kind.check(ctx, spec)
            if check_sql:
                if spec.where:
                    check_sql = (f"SELECT f.* FROM ({check_sql}) f SEMI JOIN "
                                 f"(SELECT _row FROM {ident(work)} WHERE ({spec.where})) w ON f._row = w._row")
                con.execute(f"INSERT INTO {VIOLATIONS} SELECT ?, _row, \"column\", reason, ? FROM ({check_sql})",
                            [index, spec.action == "reject"])
        outcome.failed = _count(con, f"SELECT count(DISTINCT _row) FROM {VIOLATIONS} WHERE rule = ?", [index])
        if outcome.failed:
            outcome.reasons = {r: int(n) for r, n in con.execute(
                f"SELECT reason, count(*) FROM {VIOLATIONS} WHERE rule = ? GROUP BY reason", [index]).fetchall()}
            outcome.sample_rows = [int(r[0]) for r in con.execute(
                f"SELECT DISTINCT _row FROM {VIOLATIONS} WHERE rule = ? ORDER BY _row LIMIT {sample_size}",
                [index]).fetchall()]
            if spec.action == "reject":
                outcome.rejected = outcome.failed
        if spec.threshold.exceeded(outcome.failed, outcome.checked):
            outcome.status = "fail" if spec.severity == "error" else "warn"
        outcome.seconds = round(time.perf_counter() - start, 4)
        outcomes.append(outcome)
    rejected = _count(con, f"SELECT count(DISTINCT _row) FROM {VIOLATIONS} WHERE reject")
    return EngineResult(work, total, outcomes, rejected)
