"""User SQL is data: one expression over known columns, from an allow-list of functions.

Every piece of SQL a user writes in a rule, segments or pipeline file (``sql`` rules, ``where``
filters, dedupe blocking keys and survivorship, segment conditions and features) goes through
:func:`check_expression` before it reaches DuckDB. It is parsed with sqlglot (DuckDB dialect) and
accepted only when it is a single expression made of:

- column references (checked against the table's columns when they are known), literals,
  operators, ``CASE``, ``CAST``, ``IN (list)``, ``LIKE``, lambdas, list and struct literals;
- functions from :data:`SCALAR_FUNCTIONS` (and, where ``aggregates=True``, from
  :data:`AGGREGATE_FUNCTIONS` and window functions).

Refused: table functions (``read_text``, ``read_csv``, ``glob`` ...), subqueries and any other
relation, statements (``SET``, ``PRAGMA``, ``ATTACH``, ``COPY``, ``INSTALL``, ``LOAD``, ``CALL``),
``;``, parameters, and every function not on the list (``getenv``, ``current_setting`` ...).
The text returned is sqlglot's rendering of the vetted tree (comments dropped), so what runs is
exactly what was checked, whatever the two parsers think of odd quoting.

The DuckDB session is the second wall: it cannot touch files it was not given (see
:mod:`crmtool.workspace` and ``docs/decisions/0007-user-sql-sandbox.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from typing import Any

from crmtool.errors import ConfigError, Location


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


SCALAR_FUNCTIONS: frozenset[str] = _names("""
abs ceil ceiling floor round trunc sign sqrt cbrt power pow ln log log10 log2 exp mod greatest least
isnan isinf isfinite even factorial gcd lcm lower upper lcase ucase trim ltrim rtrim length len
strlen length_grapheme substr substring left right replace reverse concat concat_ws lpad rpad repeat
position strpos instr contains starts_with ends_with prefix suffix split_part string_split str_split
string_to_array regexp_matches regexp_replace regexp_extract regexp_extract_all regexp_full_match
regexp_split_to_array strip_accents nfc_normalize ascii chr unicode ord format printf translate
levenshtein damerau_levenshtein jaro_similarity jaro_winkler_similarity jaccard hamming mismatches
md5 sha256 hash array_to_string list_to_string coalesce nullif ifnull if typeof today current_date
now current_timestamp date_part datepart date_diff datediff date_sub datesub date_trunc datetrunc
date_add year month day dayofmonth dayofweek dayofyear week weekofyear weekday quarter hour minute
second millisecond epoch epoch_ms make_date make_time make_timestamp strftime strptime try_strptime
to_days to_months to_years to_weeks age last_day monthname dayname isodow isoyear yearweek extract
to_timestamp list_value list_pack array_length list_contains list_has array_contains array_has
list_sort array_sort list_reverse_sort array_reverse_sort list_distinct array_distinct list_unique
array_unique list_transform array_transform apply list_apply array_apply list_filter array_filter
filter list_extract list_element array_extract list_concat array_concat list_cat array_cat
list_slice array_slice flatten list_reverse array_reverse list_position list_indexof array_position
list_has_any array_has_any list_has_all array_has_all list_min list_max list_sum list_count
struct_pack struct_extract row map map_extract element_at cardinality json_extract
json_extract_string json_extract_path json_extract_path_text json_valid
""")

AGGREGATE_FUNCTIONS: frozenset[str] = _names("""
count sum avg mean min max arg_max arg_min arg_max_null arg_min_null max_by min_by any_value first
last string_agg group_concat listagg list array_agg median mode quantile quantile_cont quantile_disc
stddev stddev_samp stddev_pop var_samp var_pop variance bool_and bool_or count_if countif
approx_count_distinct product fsum favg kurtosis skewness entropy row_number rank dense_rank
percent_rank cume_dist ntile lag lead first_value last_value nth_value
""")

HINT = ("user SQL is one expression over the table's columns using the functions listed in the README "
        "('Which SQL is accepted'); no tables, subqueries, statements or ';'")
_MAX_SHOWN = 60


class UserSqlError(ConfigError):
    """User SQL that is not one allowed expression (a configuration error: exit 2)."""


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


@cache
def _function_classes() -> tuple[frozenset[type], frozenset[type]]:
    """sqlglot's expression classes of the allowed scalar and aggregate names.

    sqlglot turns most known functions into their own class (``lower(x)`` is ``exp.Lower``) and
    keeps unknown ones as ``exp.Anonymous`` with the name as written; the classes are found by
    parsing a probe call of every allowed name.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    def classes(names: Iterable[str]) -> frozenset[type]:
        found: set[type] = set()
        for name in names:
            for probe in (f"{name}(x)", f"{name}(x, y)", f"{name}(x, y, z)", name):
                try:
                    node = sqlglot.parse_one(probe, read="duckdb", error_level=ErrorLevel.IGNORE)
                except Exception:  # a probe sqlglot cannot parse at all names nothing
                    continue
                for sub in node.walk():
                    if isinstance(sub, exp.Func) and not isinstance(sub, exp.Anonymous):
                        found.add(type(sub))
        return frozenset(found)

    scalar = classes(SCALAR_FUNCTIONS)
    return scalar, classes(AGGREGATE_FUNCTIONS) - scalar


@cache
def _class_kind(cls: Any) -> str | None:
    """'scalar', 'aggregate' or None for a sqlglot function class: by its SQL names first, then by
    the probe of every allowed name (slower, done once, only for classes named differently)."""
    names = {str(n).lower() for n in getattr(cls, "sql_names", lambda: [])()}
    if names & SCALAR_FUNCTIONS:
        return "scalar"
    if names & AGGREGATE_FUNCTIONS:
        return "aggregate"
    scalar, aggs = _function_classes()
    return "scalar" if cls in scalar else "aggregate" if cls in aggs else None


@cache
def _allowed_types() -> tuple[type, ...]:
    """Node types that are not function calls and may appear in an expression."""
    from sqlglot import exp

    names = ("Binary", "Unary", "Literal", "Boolean", "Null", "Column", "Identifier", "Case", "Cast",
             "TryCast", "DataType", "DataTypeParam", "Interval", "Var", "Between", "In", "Is", "Bracket",
             "Dot", "Lambda", "Tuple", "Distinct", "Ordered", "Order", "Window", "WindowSpec", "Filter",
             "Star", "PropertyEQ", "Kwarg", "Slice", "RawString", "Escape", "Where", "IgnoreNulls",
             "RespectNulls", "IntervalSpan", "Collate", "Neg", "Not", "Paren", "JSONPath", "JSONPathPart")
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


def _function_name(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def _statement_problem(root: Any) -> str | None:
    from sqlglot import exp

    if isinstance(root, exp.Query | exp.Subquery):
        return f"a query is not allowed, only an expression: {_shown(root.sql(dialect='duckdb'))}"
    if isinstance(root, exp.Command):
        return f"statement {str(root.this).upper()} is not allowed"
    statements = ("Set", "Pragma", "Attach", "Detach", "Copy", "Install", "Use", "Create", "Drop", "Insert",
                  "Update", "Delete", "Alter", "Merge", "Transaction", "Commit", "Rollback", "Describe", "Show",
                  "Export", "Load", "Summarize", "Cache", "Uncache", "Refresh", "Grant", "Truncate")
    for name in statements:
        cls = getattr(exp, name, None)
        if cls is not None and isinstance(root, cls):
            return f"statement {name.upper()} is not allowed"
    return None


def _node_problem(node: Any, *, aggregates: bool, allowed: tuple[type, ...], extra: frozenset[str]) -> str | None:
    from sqlglot import exp

    if isinstance(node, exp.Query | exp.Subquery | exp.Table | exp.From | exp.Join):
        return f"a subquery or table is not allowed: {_shown(node.sql(dialect='duckdb'))}"
    if isinstance(node, exp.Placeholder | exp.Parameter | exp.SessionParameter):
        return f"a parameter is not allowed: {_shown(node.sql(dialect='duckdb'))}"
    if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous) and isinstance(node, allowed):
        return None  # syntax sqlglot models as a function: CASE, CAST, AND, OR, ...
    if isinstance(node, exp.Func):
        name = _function_name(node)
        if isinstance(node, exp.Anonymous):
            if name in SCALAR_FUNCTIONS or name in extra or (aggregates and name in AGGREGATE_FUNCTIONS):
                return None
            if name in AGGREGATE_FUNCTIONS:
                return f"aggregate function {name}() is not allowed here"
            return f"function {name}() is not allowed"
        kind = _class_kind(type(node))  # type: ignore[arg-type]
        if kind == "scalar" or (aggregates and kind == "aggregate"):
            return None
        if kind == "aggregate" or isinstance(node, exp.AggFunc):
            return f"aggregate function {name}() is not allowed here"
        return f"function {name}() is not allowed"
    if isinstance(node, exp.Window) and not aggregates:
        return "a window (OVER ...) is not allowed here"
    if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
        return "'*' is not allowed (name the columns)"
    if not isinstance(node, allowed):
        return f"{type(node).__name__} is not allowed: {_shown(node.sql(dialect='duckdb'))}"
    return None


def _column_problems(root: Any, columns: Iterable[str], aliases: Iterable[str]) -> list[str]:
    from sqlglot import exp

    known = {c.lower() for c in columns}
    qualifiers = {a.lower() for a in aliases}
    problems: list[str] = []
    for col in root.find_all(exp.Column):
        parts = [str(p.name) for p in col.parts]
        head = parts[0].lower()
        if head in qualifiers and len(parts) > 1:
            parts, head = parts[1:], parts[1].lower()
        if head in known or head in _lambda_names(col):
            continue
        problems.append(f"unknown column '{'.'.join(parts)}'")
    return list(dict.fromkeys(problems))


def _lambda_names(node: Any) -> set[str]:
    """The parameters of the lambdas ``node`` is inside: a lambda's name means nothing outside its
    body (``list_transform(l, user -> 1) AND user`` names DuckDB's ``user``, not the parameter)."""
    from sqlglot import exp

    names: set[str] = set()
    lam = node.find_ancestor(exp.Lambda)
    while lam is not None:
        names |= {str(i.name).lower() for i in lam.expressions}
        lam = lam.find_ancestor(exp.Lambda)
    return names


def _parse(sql: str) -> tuple[Any, list[str]]:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError
    from sqlglot.tokens import TokenType  # type: ignore[attr-defined,unused-ignore]

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" is ours to report
    if not sql.strip():
        return None, ["the expression is empty"]
    try:
        tokens = sqlglot.Dialect.get_or_raise("duckdb").tokenize(sql)
    except TokenError as exc:
        return None, [f"SQL does not parse: {str(exc).splitlines()[0]}"]
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        return None, ["';' (a statement separator) is not allowed"]
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except ParseError as exc:
        errors = exc.errors[0] if exc.errors else {}
        what = errors.get("description") or str(exc).splitlines()[0]
        return None, [f"SQL does not parse: {what}"]
    if len(trees) != 1:
        return None, ["write exactly one SQL expression"]
    return trees[0], []


def expression_problems(sql: str, *, columns: Iterable[str] | None, aggregates: bool = False,
                        aliases: Iterable[str] = (), functions: Iterable[str] = ()) -> tuple[str | None, list[str]]:
    """(vetted SQL, []) when ``sql`` is one allowed expression, else (None, every problem found).
    ``functions``: macros crmtool itself defines for this place (``seg_date``), allowed besides the list."""
    root, problems = _parse(sql)
    if root is None:
        return None, problems
    statement = _statement_problem(root)
    if statement:
        return None, [statement]
    allowed = _allowed_types()
    extra = frozenset(f.lower() for f in functions)
    stack = [root]
    while stack:  # depth first; a refused node's children are not reported again
        node = stack.pop()
        problem = _node_problem(node, aggregates=aggregates, allowed=allowed, extra=extra)
        if problem:
            if problem not in problems:
                problems.append(problem)
            continue
        stack.extend(reversed(list(node.iter_expressions())))
    if columns is not None and not problems:
        problems.extend(_column_problems(root, columns, aliases))
    if problems:
        return None, problems
    return root.sql(dialect="duckdb", comments=False), []


def check_expression(sql: str, *, columns: Iterable[str] | None, location: str | Location,
                     aggregates: bool = False, aliases: Iterable[str] = (), functions: Iterable[str] = ()) -> str:
    """The vetted SQL text of ``sql``, or a :class:`UserSqlError` naming ``location`` and each
    forbidden part. ``columns`` are the table's columns (``None`` only where they cannot be known
    yet: check again once they are); ``aggregates`` lets aggregate and window functions in;
    ``aliases`` are table aliases a column may be qualified with (``t.email``)."""
    vetted, problems = expression_problems(sql, columns=columns, aggregates=aggregates, aliases=aliases,
                                           functions=functions)
    if vetted is None:
        loc = location if isinstance(location, Location) else _location(location)
        raise UserSqlError([(loc, p) for p in problems], HINT)
    return vetted


def _location(text: str) -> Location:
    file, _, line = text.rpartition(":")
    if file and line.isdigit():
        return Location(file, int(line))
    return Location(text)


def allowed_functions(*, aggregates: bool = False) -> list[str]:
    """The allowed function names, sorted (for docs and ``rules schema``)."""
    names: set[str] = set(SCALAR_FUNCTIONS)
    if aggregates:
        names |= AGGREGATE_FUNCTIONS
    return sorted(names)
