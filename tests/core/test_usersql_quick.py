"""The quick path of user SQL (crmtool.usersql_quick) is narrower than sqlglot's wall, never wider:
every expression it accepts, sqlglot accepts too, with the same columns, and DuckDB gives the same
values for the text as written and for sqlglot's rendering; anything unsure goes to sqlglot."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.usersql import expression_problems, sqlglot_problems
from crmtool.usersql_quick import FUNCTIONS, KEYWORDS, quick_vetted

COLUMNS = ["a", "b", "s", "d", "last_order_date", "signup_date"]
#: one row per case of NULLs, signs and dates; every column is text, as a CSV export loads
ROWS = [("1", "2", "x", "2024-01-02", "2024-03-01", "2023-12-31"),
        ("-3", "0", "Abc ", "2020-02-29", None, "2024-01-01"), (None, "5", "", "bad", "2024-01-01", None),
        ("2.5", None, None, None, "2019-05-05", "2019-05-05")]


def _table() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("CREATE TABLE t (a VARCHAR, b VARCHAR, s VARCHAR, d VARCHAR, last_order_date VARCHAR, "
              "signup_date VARCHAR)")
    c.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    c.execute("CREATE TABLE n AS SELECT TRY_CAST(a AS DOUBLE) AS a, TRY_CAST(b AS DOUBLE) AS b, s, "
              "TRY_CAST(d AS DATE) AS d, last_order_date, signup_date FROM t")
    return c


_CON = _table()  # hypothesis runs many examples: one connection for all


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return _CON


def _sqlglot_columns(sql: str) -> set[str]:
    import sqlglot
    from sqlglot import exp

    return {str(c.name).lower() for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}


def _quick_columns(sql: str) -> set[str]:
    from crmtool.usersql_quick import _Grammar, _tokens

    tokens = _tokens(sql)
    assert tokens
    grammar = _Grammar(tokens)
    grammar.expr()
    return {c.lower() for c in grammar.columns}


def _same_as_sqlglot(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """``sql`` is accepted by the quick path: sqlglot accepts it too, finds the same columns, and
    (over known columns) both texts give the same values (or the same error) in DuckDB."""
    quick = quick_vetted(sql, None)
    assert quick == sql.strip()
    vetted, problems = sqlglot_problems(sql, columns=None)
    assert problems == [] and vetted is not None, (sql, problems)
    columns = _quick_columns(sql)
    assert _sqlglot_columns(sql) == columns
    if not columns <= set(COLUMNS):
        assert quick_vetted(sql, COLUMNS) is None
        return
    assert quick_vetted(sql, COLUMNS) == quick
    assert sqlglot_problems(sql, columns=COLUMNS)[1] == []
    if con is None:
        return
    for table in ("t", "n"):
        results = []
        for text in (quick, vetted):
            try:
                results.append(("rows", con.execute(f"SELECT ({text}) FROM {table} ORDER BY rowid").fetchall()))
            except duckdb.Error as exc:
                results.append(("error", type(exc).__name__))
        assert results[0] == results[1], (sql, table, quick, vetted)


PLAIN = [
    "try_strptime(last_order_date, '%Y-%m-%d') >= try_strptime(signup_date, '%Y-%m-%d')",
    "a + b > 3 AND s IS NOT NULL",
    "NOT a = b OR b IS NULL",
    "lower(s) = 'abc' or upper(trim(s)) <> 'X'",
    "coalesce(a, b, '0') != '1'",
    "length(s) * 2 - -1 / 4 >= 0.5",
    "s || 'x' = 'xx'",
    "(a = '1') = (b = '2')",
    "starts_with(s, 'A') AND NOT contains(s, ' ') AND ends_with(d, '2')",
    "regexp_full_match(s, '[a-z]+') OR regexp_matches(d, '^20')",
    "year(try_strptime(d, '%Y-%m-%d')) > 2020",
    "nullif(s, '') IS NULL AND ifnull(a, b) IS NOT NULL",
    "greatest(a, b) = least(a, b, s)",
    "abs(length(s) - 3) < 2 AND TRUE AND NOT FALSE AND NULL IS NULL",
    "  Last_Order_Date > Signup_Date\n",
    "s IN ('ES', 'ESPAÑA') OR s IS NULL",
    "a NOT IN ('1', b) AND NOT s in (lower(d))",
]


@pytest.mark.parametrize("sql", PLAIN)
def test_plain_expressions_take_the_quick_path_and_mean_what_sqlglot_means(sql: str, con: duckdb.DuckDBPyConnection
                                                                         ) -> None:
    _same_as_sqlglot(sql, con)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_quick_function_at_every_arity_is_one_sqlglot_accepts(name: str) -> None:
    fewest, most = FUNCTIONS[name]
    for n in range(0, most + 2):
        sql = f"{name}({', '.join((COLUMNS * 2)[:n])}) IS NULL"
        if fewest <= n <= most:
            _same_as_sqlglot(sql)
        else:
            assert quick_vetted(sql, None) is None, sql


# (expression, why the quick path leaves it to sqlglot)
NOT_PLAIN = [
    ("a = 1 -- a comment", "comment"), ("a /* c */ = 1", "comment"), ("a = 1; SELECT 1", "';'"),
    ("\"a\" = 1", "quoted name"), ("t.a = 1", "qualified name"), ("a::INT > 1", "cast"),
    ("current_date > d", "keyword"), ("date > 1", "keyword"), ("a IN (SELECT 1)", "subquery"),
    ("a NOT b", "NOT IN"), ("a IN ()", "empty list"), ("a IN 1", "IN without a list"),
    ("a BETWEEN 1 AND 2", "BETWEEN"), ("CASE WHEN a THEN 1 END = 1", "CASE"), ("'it''s' = s", "escaped quote"),
    ("s = E'\\n'", "escape string"), ("s = 'a\\'", "backslash"), ("a = ?", "parameter"), ("a = $1", "parameter"),
    ("read_text('x') IS NULL", "not a quick function"), ("getenv('HOME') = s", "not a quick function"),
    ("lower(a, b) = 1", "arity"), ("lower() = 1", "arity"), ("a = 1e3", "number form"), ("a = .5", "number form"),
    ("a = 1.", "number form"), ("a a", "two names"), ("a = ", "incomplete"),
    ("", "empty"), ("a // 2 = 1", "operator"), ("a ** 2 = 1", "operator"), ("x -> x = 1", "lambda"),
    ("a\u00a0= 1", "non-ASCII space"), ("lower = 1", "function name as a column"), ("a == 1", "operator"),
    ("count(a) > 1", "aggregate"), ("a = 1 OR", "incomplete"), ("(a = 1", "parenthesis"), ("a = 1)", "parenthesis"),
]


@pytest.mark.parametrize(("sql", "why"), NOT_PLAIN)
def test_anything_not_plain_goes_to_sqlglot(sql: str, why: str) -> None:
    assert quick_vetted(sql, None) is None, why


def test_unknown_columns_go_to_sqlglot_which_names_them() -> None:
    assert quick_vetted("a > zz", COLUMNS) is None
    assert expression_problems("a > zz", columns=COLUMNS) == (None, ["unknown column 'zz'"])
    assert expression_problems("a > zz", columns=None) == ("a > zz", [])


def test_the_keywords_cover_duckdbs_and_sqlglots() -> None:
    from sqlglot.dialects.duckdb import DuckDB

    duck = {r[0].lower() for r in duckdb.connect().execute("SELECT keyword_name FROM duckdb_keywords()").fetchall()}
    glot = {k.lower() for k in DuckDB.tokenizer_class.KEYWORDS if k.replace("_", "").isalnum()}
    no_paren = {getattr(k, "name", str(k)).lower() for k in DuckDB.parser_class.NO_PAREN_FUNCTIONS}
    assert not (duck | glot | no_paren) - KEYWORDS, sorted((duck | glot | no_paren) - KEYWORDS)


_PIECES = [" ", "a", "b", "s", "d", "'x'", "'%Y'", "1", "2.5", "(", ")", ",", "=", "<>", "<", ">=", "+", "-", "*",
           "/", "||", " AND ", " OR ", " NOT ", " IS ", " IN (", " NOT IN (", " NULL ", " TRUE ", "lower(",
           "coalesce(", "try_strptime(", "--", "/*", ";", ".", "'", "\"", "::", "?", "date", "current_date", " IN ",
           "$1", "\\"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12))
def test_whatever_the_quick_path_accepts_sqlglot_accepts(pieces: list[str]) -> None:
    sql = "".join(pieces)
    if quick_vetted(sql, None) is not None:
        _same_as_sqlglot(sql, _CON)
