"""What every rule kind is: a spec parsed from YAML and a plan of SQL over the working table.

A kind is a :class:`Kind` subclass registered in :mod:`crmtool.kinds`. It may *fix* values
(normalisers) and/or *check* rows. Both produce SQL that the engine runs on DuckDB; work that
needs Python (a phone library, email-validator) runs once per distinct value through
:meth:`PlanContext.map_distinct` and is joined back.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from crmtool.errors import Location
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

SEVERITIES = ("error", "warning")
ACTIONS = ("flag", "fix", "reject")




@dataclass(frozen=True)
class Threshold:
    """How many failing rows a rule tolerates: a count, or a share of the checked rows."""

    count: int = 0
    share: float | None = None

    @classmethod
    def parse(cls, raw: Any) -> Threshold:
        if raw is None:
            return cls()
        if isinstance(raw, str) and raw.strip().endswith("%"):
            return cls(share=float(raw.strip()[:-1]) / 100.0)
        return cls(count=int(raw))

    def exceeded(self, failed: int, checked: int) -> bool:
        if self.share is not None:
            return checked > 0 and failed / checked > self.share
        return failed > self.count

    def __str__(self) -> str:
        return f"{self.share * 100:g}%" if self.share is not None else str(self.count)


@dataclass(frozen=True)
class RuleSpec:
    """One rule as written in a rule file: typed, frozen, and knowing where it came from."""

    name: str
    kind: str
    columns: tuple[str, ...]
    severity: str
    action: str
    threshold: Threshold
    options: Mapping[str, Any]
    loc: Location
    description: str = ""
    where: str | None = None  # optional SQL filter: the rule applies only to rows where it holds

    def opt(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass
class FixPlan:
    """New value of a column: ``expr`` over alias ``t`` (and ``m`` when ``join`` is given)."""

    expr: str
    join: str | None = None


@dataclass
class PlanContext:
    """What a kind may use while planning: the connection, the working table, a distinct mapper."""

    con: duckdb.DuckDBPyConnection
    table: str
    #: what a kind keeps for the run under a key of its own (email_risk: its result table)
    cache: dict[tuple[Any, ...], dict[Any, Any]] = field(default_factory=dict)
    #: numbers for temp table names, shared by every context of a run (see on())
    names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    #: per cache key, the temp table holding every value mapped so far (see map_distinct)
    tables: dict[tuple[Any, ...], str] = field(default_factory=dict)
    #: a small table (``crmtool.engine.ROW_WISE_UP_TO`` rows at most): map_distinct reads its few
    #: values into Python and writes them once, in two statements instead of five
    small: bool = False
    #: per (table, column), how many times a fix rewrote the column in place (a ``where`` fix
    #: updates the working table): a kind that remembers what it saw of a column reads this
    edits: dict[tuple[str, str], int] = field(default_factory=dict)

    def temp_name(self, stem: str) -> str:
        return f"__{stem}_{next(self.names)}"

    def on(self, table: str) -> PlanContext:
        """The same context over another table (distinct values, say), sharing caches and names."""
        return PlanContext(self.con, table, self.cache, self.names, self.tables, self.small, self.edits)

    def rewrote(self, table: str, column: str) -> None:
        """Say that ``column`` of ``table`` was changed in place (see ``edits``)."""
        self.edits[(table, column)] = self.edits.get((table, column), 0) + 1

    def has_duckdb_sql(self) -> bool:
        """Whether the plan runs on DuckDB, so DuckDB-only SQL functions may be used (another
        engine's plan takes the kind's Python per distinct value instead)."""
        return True

    def map_distinct(self, value_sql: str, func: Callable[[str], Any], out: list[tuple[str, str]],
                     cache_key: tuple[Any, ...], prefilter: str | None = None,
                     fast: dict[str, str] | None = None, fast_input: str | None = None,
                     settled: str | None = None) -> str:
        """Apply ``func`` once per distinct non-null value of ``value_sql`` (over alias ``t``).

        ``func`` returns a tuple matching ``out`` (column name, DuckDB type). ``fast`` may give,
        per output column, a SQL expression over ``v`` that decides the value without Python
        (NULL where it cannot): only values the fast path leaves undecided reach ``func``.
        ``fast_input``: SQL over ``v`` computed once per value as ``f``, for ``fast`` to read
        (a normalised form that several output columns derive from, say). ``settled``: SQL over
        ``v`` (and ``f``), true where the fast path's NULLs are the answer (a value certainly
        invalid, say), so those values skip ``func`` too.

        Results are kept per ``cache_key`` in one table for the whole run, so rules with the
        same options, and a check after the fix of the same kind, only map values not seen
        before. Returns the name of that table ``(value VARCHAR, <out columns>)``; join on
        ``value``.
        """
        where = f"v IS NOT NULL AND ({prefilter})" if prefilter else "v IS NOT NULL"
        name = self.tables.get(cache_key)
        if name is None:
            name = self.tables[cache_key] = self.temp_name("map")
            cols = ", ".join(f"{ident(n)} {t}" for n, t in out)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (value VARCHAR, {cols})")
        new = f"{name}_new"
        fast_cols = ", ".join(f"CAST({(fast or {}).get(n, 'NULL')} AS {t}) AS {ident(n)}" for n, t in out)
        # only values not mapped before: the anti join comes before any fast-path work
        values_sql = (f"SELECT v FROM (SELECT DISTINCT v FROM (SELECT CAST({value_sql} AS VARCHAR) AS v "
                      f"FROM {ident(self.table)} t) WHERE {where}) d ANTI JOIN {name} c ON c.value = d.v")
        if fast_input:
            values_sql = f"SELECT v, {fast_input} AS f FROM ({values_sql})"
        if self.small:
            self._map_few(name, values_sql, fast_cols, func, out, fast, settled)
            return name
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {new} AS SELECT v AS value, {fast_cols}, "
                         f"coalesce({settled or 'false'}, false) AS __settled FROM ({values_sql})")
        decided = " AND ".join(f"{ident(n)} IS NOT NULL" for n in (fast or {})) or "false"
        todo_sql = f"SELECT value FROM {new} WHERE NOT (__settled OR ({decided}))"
        from crmtool.db import ARROW_FROM, map_in_batches, python_relation

        sets = ", ".join(f"{ident(n)} = CAST(s.{ident(n)} AS {t})" for n, t in out)

        def mapped(values: list[Any]) -> dict[str, list[Any]]:
            results = [func(v) for v in values]
            return {"value": values} | {n: [r[i] for r in results] for i, (n, _t) in enumerate(out)}

        self.con.complete()
        first = self.con.execute(todo_sql).fetchmany(ARROW_FROM)
        if len(first) < ARROW_FROM:  # few: read in that one execution, as crmtool.db.fetch_column does
            if first:  # distinct, and none mapped before: the table above is the only cache needed
                with python_relation(self.con, mapped([row[0] for row in first]), ["value"]) as (source, params):
                    self.con.execute(f"UPDATE {new} SET {sets} FROM {source} s WHERE {new}.value = s.value", params)
        else:
            # many (a near-unique column at millions of rows): to Python a batch at a time
            # (crmtool.db.MAP_BATCH), not all at once as Python strings beside DuckDB's capped pool
            del first
            done = f"{new}_mapped"
            map_in_batches(self.con, todo_sql, done, mapped, {"value": "VARCHAR"} | dict(out))
            self.con.execute(f"UPDATE {new} SET {sets} FROM {done} s WHERE {new}.value = s.value; DROP TABLE {done}")
        self.con.execute(f"INSERT INTO {name} SELECT * EXCLUDE (__settled) FROM {new}; DROP TABLE {new}")
        return name

    def _map_few(self, name: str, values_sql: str, fast_cols: str, func: Callable[[str], Any],
                 out: list[tuple[str, str]], fast: dict[str, str] | None, settled: str | None) -> None:
        """map_distinct on a small table: the new values with their fast-path answers are read into
        Python, the undecided ones mapped by ``func``, and all of them written in one INSERT (the
        same rows the five statements of the general path leave in ``name``)."""
        from crmtool.db import python_relation

        rows = self.con.execute(f"SELECT v, {fast_cols}, coalesce({settled or 'false'}, false) "
                                f"FROM ({values_sql})").fetchall()
        if not rows:
            return
        decided = [i + 1 for i, (n, _t) in enumerate(out) if n in (fast or {})]
        mapped = []
        for row in rows:
            if row[-1] or (decided and all(row[i] is not None for i in decided)):
                mapped.append(row[:-1])
            else:
                mapped.append((row[0], *func(row[0])))
        columns = {"value": [r[0] for r in mapped]} | {n: [r[i + 1] for r in mapped] for i, (n, _t) in enumerate(out)}
        casts = ", ".join(f"CAST(s.{ident(n)} AS {t})" for n, t in out)
        text = ["value", *(n for n, t in out if t == "VARCHAR")]
        with python_relation(self.con, columns, text) as (source, params):
            self.con.execute(f"INSERT INTO {name} SELECT s.value, {casts} FROM {source} s", params)


class Kind:
    """Base of rule kinds. Subclasses set the class attributes and override fix and/or check."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: JSON Schema properties of the kind's own options (merged with the common ones)
    options_schema: ClassVar[dict[str, Any]] = {}
    required_options: ClassVar[tuple[str, ...]] = ()
    #: whether the rule acts on one column (``column``), several (``columns``) or none
    columns: ClassVar[str] = "one"  # one | many | none
    actions: ClassVar[tuple[str, ...]] = ("flag", "reject")
    default_action: ClassVar[str] = "flag"
    default_severity: ClassVar[str] = "error"
    #: options holding user SQL (one boolean expression over the row): the rule loader vets them
    #: with :func:`crmtool.usersql.check_expression` and keeps the vetted text
    sql_options: ClassVar[tuple[str, ...]] = ()

    def problems(self, spec: RuleSpec) -> list[str]:
        """Semantic problems in a spec that the schema cannot express (bad regex, SQL ...)."""
        return []

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        """New value of ``column``; ``None`` when the kind does not fix."""
        return None

    def fix_in_sql(self, spec: RuleSpec) -> bool:
        """Whether :meth:`fix` is SQL over the value alone: no Python per value and no table of
        mapped values (so the engine may run it row by row, on any number of rows, without
        building a table of the column's distinct values first)."""
        return False

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str | None:
        """SQL selecting ``(_row, "column", reason)`` for each failing row of ``ctx.table`` (alias t)."""
        return None

    def checks_value_only(self, spec: RuleSpec) -> bool:
        """Whether the check reads nothing but each value of the rule's columns (no other column,
        no other row), so the engine may run it once per distinct value."""
        return False



def failing_rows(ctx: PlanContext, column: str, condition: str, reason_sql: str, join: str = "") -> str:
    """SQL for a check: rows of the working table (alias t) where ``condition`` holds fail."""
    return (f"SELECT t._row, {sql_str(column)} AS \"column\", {reason_sql} AS reason "
            f"FROM {ident(ctx.table)} t {join} WHERE ({condition})")
