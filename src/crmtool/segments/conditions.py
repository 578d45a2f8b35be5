"""Compile segment conditions (:class:`~crmtool.segments.model.Cond`) to SQL boolean expressions.

Semantics, documented for users:

- ``all`` / ``any`` / ``not`` nest freely; ``{sql: ...}`` or a plain string is a raw SQL expression
  over features and customer columns.
- A comparison (``eq ne lt lte gt gte in not_in between before after``) with a missing value (NULL)
  is false, and ``not`` of it is true: every leaf is ``coalesce(<test>, false)``. ``is_null: true``
  asks for missing values explicitly. ``between: [a, b]`` includes both ends.
- Dates: a value may be an ISO date, ``today``/``as_of`` (the run's reference date) or ``N days ago``
  (also weeks, months, years). ``within: last 30 days`` means the 30 days that end at ``as_of``, both
  included at day resolution: ``as_of - 29 days .. as_of``; dates after ``as_of`` are outside.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from crmtool.errors import ConfigError, Location
from crmtool.segments.model import COMPARISONS, SEGMENT_MACROS, Cond
from crmtool.segments.spec import parse_relative
from crmtool.sqltext import ident, sql_str

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"




def date_sql(value: str, as_of: date) -> str | None:
    """SQL DATE for ``today``/``as_of``, ``N days ago`` or an ISO date; ``None`` otherwise."""
    import re

    text = value.strip().lower()
    if text in ("today", "as_of", "as of"):
        return f"DATE '{as_of.isoformat()}'"
    rel = parse_relative(text)
    if rel is not None and text.endswith("ago"):
        n, unit = rel
        return f"CAST(DATE '{as_of.isoformat()}' - INTERVAL {n} {unit.upper()} AS DATE)"
    if re.match(_ISO_DATE, text):
        return f"DATE '{text}'"
    return None


class Compiler:
    """Turns conditions into SQL over a table whose column names and types are given."""

    def __init__(self, columns: dict[str, str], as_of: date) -> None:
        self.columns = columns  # name -> DuckDB type
        self.as_of = as_of
        self.problems: list[tuple[Location, str]] = []
        self.context = ""  # what is being compiled, for messages: "segment 'x': "

    def _literal(self, value: Any, is_date: bool) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int | float):
            return repr(value)
        text = str(value)
        as_date = date_sql(text, self.as_of)
        if as_date is not None and (
            is_date or not text.strip()[:1].isdigit() or text.strip().endswith("ago")
        ):
            return as_date
        return sql_str(text)

    def compile(self, cond: Cond) -> str:
        if cond.op in ("all", "any"):
            joiner = " AND " if cond.op == "all" else " OR "
            return "(" + joiner.join(self.compile(c) for c in cond.children) + ")"
        if cond.op == "not":
            return f"(NOT {self.compile(cond.children[0])})"
        if cond.op == "sql":
            from crmtool.usersql import expression_problems

            vetted, found = expression_problems(cond.sql or "", columns=list(self.columns), functions=SEGMENT_MACROS)
            self.problems.extend((cond.loc, f"{self.context}condition: {p}") for p in found)
            return f"coalesce(CAST(({vetted}) AS BOOLEAN), FALSE)" if vetted is not None else "FALSE"
        assert cond.field is not None
        if cond.field not in self.columns:
            self.problems.append((cond.loc, f"unknown feature or column '{cond.field}'"))
            return "FALSE"
        ctype = self.columns[cond.field].upper()
        is_date = ctype.startswith(("DATE", "TIMESTAMP"))
        f = ident(cond.field)
        op, v = cond.op, cond.value
        if op == "is_null":
            return f"({f} IS NULL)" if v else f"({f} IS NOT NULL)"
        if op in COMPARISONS:
            test = f"{f} {COMPARISONS[op]} {self._literal(v, is_date)}"
        elif op in ("before", "after"):
            test = f"{f} {'<' if op == 'before' else '>'} {self._literal(v, True)}"
        elif op in ("in", "not_in"):
            items = ", ".join(self._literal(x, is_date) for x in v)
            test = f"{f} {'NOT IN' if op == 'not_in' else 'IN'} ({items})"
        elif op == "between":
            test = f"{f} BETWEEN {self._literal(v[0], is_date)} AND {self._literal(v[1], is_date)}"
        elif op in ("within", "not_within"):
            rel = parse_relative(str(v))
            if rel is None:  # the spec reported it already
                return "FALSE"
            n, unit = rel
            d = f"CAST({f} AS DATE)"
            start = f"CAST(DATE '{self.as_of.isoformat()}' - INTERVAL {n} {unit.upper()} AS DATE)"
            test = f"({d} > {start} AND {d} <= DATE '{self.as_of.isoformat()}')"
            if op == "not_within":
                return f"(NOT coalesce({test}, FALSE))"
        else:  # pragma: no cover - the schema allows no other operator
            raise AssertionError(op)
        return f"coalesce({test}, FALSE)"

    def raise_problems(self) -> None:
        if self.problems:
            known = ", ".join(sorted(self.columns))
            raise ConfigError(self.problems, f"known features and columns: {known}")
