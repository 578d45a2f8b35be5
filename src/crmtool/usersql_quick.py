"""The quick path of user SQL vetting: a plain expression proved allowed without sqlglot.

Importing sqlglot with its DuckDB dialect costs about 0.1 s of CPU, a seventh of a 10-row
``validate`` of the example rules (one ``sql`` check, one ``where``; issue 19). Most user
expressions are plain: column names, literals, comparisons, arithmetic, ``AND``/``OR``/``NOT``,
``IS [NOT] NULL``, ``[NOT] IN (list)`` and a few common functions. :func:`quick_vetted` accepts
exactly such an expression, by a full tokenisation and a small recursive-descent grammar, and
returns its text; anything else (or anything it is not
sure of) returns None and goes to sqlglot (:mod:`crmtool.usersql`), which also words every refusal.

The quick path is narrower than sqlglot's wall, never wider: every token is one of a closed set
(no quotes but plain single-quoted strings without backslashes, no comments, no ``;``, ``:``,
``.``, ``$``, ``?``, no other operators), a bare name is a column only when it is no keyword of
DuckDB or of sqlglot's DuckDB dialect (``KEYWORDS``), and a call names a function of
``FUNCTIONS`` with an arity both accept. ``tests/core/test_usersql_quick.py`` checks that every
expression it accepts is accepted by sqlglot with the same columns and gives the same values in
DuckDB. Since the text is fully tokenised, what runs is exactly what was checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: a call the quick path accepts: name -> (fewest, most) arguments (all scalar, all on sqlglot's
#: and DuckDB's lists with these arities; any other function goes to sqlglot)
FUNCTIONS: dict[str, tuple[int, int]] = {
    "lower": (1, 1), "upper": (1, 1), "trim": (1, 1), "ltrim": (1, 1), "rtrim": (1, 1), "length": (1, 1),
    "abs": (1, 1), "coalesce": (1, 8), "nullif": (2, 2), "ifnull": (2, 2), "greatest": (1, 8), "least": (1, 8),
    "strptime": (2, 2), "try_strptime": (2, 2), "contains": (2, 2), "starts_with": (2, 2), "ends_with": (2, 2),
    "regexp_matches": (2, 2), "regexp_full_match": (2, 2), "year": (1, 1), "month": (1, 1), "day": (1, 1),
}

#: words that are no column on the quick path: DuckDB's keywords (``duckdb_keywords()``), the
#: single-word keywords of sqlglot's DuckDB tokenizer and its functions written without
#: parentheses (``current_date``); ``tests/core/test_usersql_quick.py`` checks it covers all three
KEYWORDS: frozenset[str] = _words("""
abort absolute access action add admin after aggregate all also alter always analyse analyze and anti any
apply approx array as asc asof assertion assignment asymmetric at attach attribute authorization
auto_increment autoincrement backward before begin between bigdecimal bigint bignum bignumeric binary bit
bitstring blob bool boolean both bpchar by byte bytea cache call called cascade cascaded case cast catalog
centuries century chain char character characteristics check checkpoint class clob close cluster coalesce
collate collation column columns comment comments commit committed compression concurrently configuration
conflict connect connection constraint constraints content continue conversion copy cost create cross csv cube
current current_catalog current_date current_datetime current_role current_schema current_time
current_timestamp current_user cursor cycle data database date datemultirange daterange datetime day days
deallocate dec decade decades decfloat decimal decimal128 decimal256 decimal32 decimal64 declare default
defaults deferrable deferred definer delete delimiter delimiters depends desc describe destroy detach
dictionary disable discard disconnect distance distinct div do document domain double drop each else enable
encoding encrypted end enum error escape event exact except exclude excluding exclusive execute exists explain
export export_state extension extensions external extract false family fetch file filter first fixed float
float4 float8 following for force foreign format forward freeze from full function functions generated
geography geometry glob global grant granted group grouping grouping_id groups handler having header hold hour
hours hugeint identity if ignore ilike immediate immutable implicit import in include including increment
index indexes inet inherit inherits initially inline inner inout input insensitive insert install instead int
int1 int128 int16 int2 int256 int32 int4 int4multirange int4range int64 int8 int8multirange int8range integer
intersect interval into invoker is isnull isolation join json jsonb keep key kill label lambda language large
last lateral leading leakproof left level like limit list listen load local localtime localtimestamp location
lock locked logged logical long longblob longtext longvarchar macro map mapping match matched materialized
maxvalue mediumblob mediumint mediumtext merge method microsecond microseconds millennia millennium
millisecond milliseconds minute minutes minvalue mode month months move name names namespace national natural
nchar nearest new next no none not nothing notify notnull nowait null nullable nullif nulls number numeric
nummultirange numrange nvarchar nvarchar2 object of off offset oids old on only operator optimize option
options or order ordinality others out outer over overlaps overlay overriding overwrite owned owner parallel
parser partial partition partitioned partitioned_by passing password percent persistent pivot pivot_longer
pivot_wider placing plans policy position positional pragma preceding precision prepare prepared preserve
primary prior privileges procedural procedure program publication qualify quarter quarters quote range read
real reassign recheck recursive ref references referencing refresh regexp register reindex relative release
rename repeatable replace replica reset resource resources respect restart restrict returning returns revoke
right rlike role rollback rollup row rows rule sample savepoint schema schemas scope scroll search second
seconds secret secure security select semi sequence sequences serializable server session session_user set
setof sets settings share short show signed similar similarity simple skip smallint snapshot some sorted
source sql stable standalone start statement statistics stdin stdout storage stored str straight_join strict
string strip struct subscription substring summarize symmetric sysid system table tables tablesample
tablespace target temp template temporary text then ties time time_ns timestamp timestamp_ltz timestamp_ms
timestamp_ns timestamp_ntz timestamp_s timestamp_us timestampltz timestampntz timestamptz timetz tinyblob
tinyint tinytext to trailing transaction transform treat trigger trim true truncate trusted try_cast
tsmultirange tsrange tstzmultirange tstzrange tuple type types ubigint uhugeint uint uint128 uint256 uinteger
unbounded uncache uncommitted unencrypted union unique unknown unlisten unlogged unnest unpack unpivot until
update use user using usmallint utinyint uuid vacuum valid validate validator value values varbinary varchar
varchar2 variable variadic variant varying vector verbose version view views virtual volatile week weeks when
where whitespace window with within without work wrapper write xml xmlattributes xmlconcat xmlelement
xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable xor year years yes zone
""")

#: the words the grammar itself reads
_WORDS = frozenset({"and", "or", "not", "is", "in", "null", "true", "false"})
_TOKEN = re.compile(r"[ \t\r\n]+|(?P<num>[0-9]+(?:\.[0-9]+)?)(?![A-Za-z0-9_.])|(?P<str>'[^'\\]*')"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>>=|<=|<>|!=|\|\||[=<>+*/(),-])")
_COMPARE = frozenset({"=", "<>", "!=", "<", ">", "<=", ">="})


def _tokens(sql: str) -> list[tuple[str, str]] | None:
    if "--" in sql or "/*" in sql:  # comments: never on the quick path
        return None
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:
            return None
        pos = m.end()
        if m.lastgroup is None:
            continue  # whitespace
        text = m.group()
        if m.lastgroup == "name" and text.lower() in _WORDS:
            out.append(("word", text.lower()))
        else:
            out.append((m.lastgroup, text))
    return out


class _Refused(Exception):
    """Not provably plain: sqlglot decides."""


class _Grammar:
    """expr := and (OR and)*; and := not (AND not)*; not := NOT not | cmp;
    cmp := sum [op sum | IS [NOT] NULL | [NOT] IN ( expr (, expr)* )];
    sum := term ((+|-|'||') term)*; term := unary ((*|/) unary)*;
    unary := - unary | NUMBER | STRING | NULL | TRUE | FALSE | ( expr ) | NAME ( [expr (, expr)*] ) | NAME"""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.columns: list[str] = []

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, kind: str, text: str | None = None) -> bool:
        k, t = self.peek()
        if k == kind and (text is None or t == text):
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, text: str) -> None:
        if not self.take(kind, text):
            raise _Refused

    def expr(self) -> None:
        self.conjunction()
        while self.take("word", "or"):
            self.conjunction()

    def conjunction(self) -> None:
        self.negation()
        while self.take("word", "and"):
            self.negation()

    def negation(self) -> None:
        if self.take("word", "not"):
            self.negation()
            return
        self.sum()
        kind, text = self.peek()
        if kind == "op" and text in _COMPARE:
            self.pos += 1
            self.sum()
        elif self.take("word", "is"):
            self.take("word", "not")
            self.expect("word", "null")
        elif self.take("word", "not"):
            self.expect("word", "in")
            self.values()
        elif self.take("word", "in"):
            self.values()

    def values(self) -> None:
        self.expect("op", "(")
        self.expr()
        while self.take("op", ","):
            self.expr()
        self.expect("op", ")")

    def sum(self) -> None:
        self.term()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-", "||"):
            self.pos += 1
            self.term()

    def term(self) -> None:
        self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            self.pos += 1
            self.unary()

    def unary(self) -> None:
        kind, text = self.peek()
        self.pos += 1
        if kind == "op" and text == "-":
            self.unary()
        elif kind in ("num", "str") or (kind == "word" and text in ("null", "true", "false")):
            return
        elif kind == "op" and text == "(":
            self.expr()
            self.expect("op", ")")
        elif kind == "name" and self.take("op", "("):
            self.call(text.lower())
        elif kind == "name" and text.lower() not in KEYWORDS and text.lower() not in FUNCTIONS:
            self.columns.append(text)
        else:
            raise _Refused

    def call(self, name: str) -> None:
        if name not in FUNCTIONS:
            raise _Refused
        args = 0
        if not self.take("op", ")"):
            self.expr()
            args = 1
            while self.take("op", ","):
                self.expr()
                args += 1
            self.expect("op", ")")
        fewest, most = FUNCTIONS[name]
        if not fewest <= args <= most:
            raise _Refused


def quick_vetted(sql: str, columns: Iterable[str] | None) -> str | None:
    """``sql`` (stripped) when it is a plain expression over ``columns`` (any names when None), else
    None: then sqlglot decides (and words every problem)."""
    tokens = _tokens(sql)
    if not tokens:
        return None
    grammar = _Grammar(tokens)
    try:
        grammar.expr()
    except _Refused:
        return None
    if grammar.pos != len(tokens):
        return None
    if columns is not None:
        known = {c.lower() for c in columns}
        if any(c.lower() not in known for c in grammar.columns):
            return None
    return sql.strip()
