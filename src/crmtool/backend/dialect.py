"""DuckDB SQL -> Spark SQL: sqlglot's transpiler plus a small table of DuckDB-only functions.

Statements are written once, in DuckDB's dialect. :func:`to_spark` parses one with sqlglot,
rewrites the DuckDB-only functions listed in :data:`COVERED` into Spark equivalents, refuses
those in :data:`DUCKDB_ONLY` with a :class:`UnsupportedOnSpark` naming the function, and writes
Spark SQL. Each distinct statement is transpiled once (an LRU cache).

Covered: ``regexp_full_match`` (``RLIKE`` anchored with ``\\A(?:...)\\z``: Java regex instead of
RE2, the same for the character classes, repeats and groups rule files use),
``try_strptime`` with one format or a list (``coalesce`` of ``try_to_timestamp`` per format,
strftime codes turned into Spark patterns: see :data:`STRFTIME_TO_SPARK`), ``strip_accents``
(``translate`` over the Latin-1 accented letters; DuckDB strips every combining mark),
``strlen`` (``octet_length``: bytes of the UTF-8 text).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from crmtool.errors import EngineError

#: strftime codes DuckDB's try_strptime reads -> Spark datetime pattern letters (1-or-2 digit
#: day and month, as DuckDB's parser accepts ``1/2/1990`` for ``%d/%m/%Y``)
STRFTIME_TO_SPARK = {"%Y": "yyyy", "%m": "M", "%d": "d", "%H": "H", "%M": "m", "%S": "s", "%y": "yy",
                     "%b": "MMM", "%B": "MMMM", "%%": "%"}
_ACCENTED = "ÀÁÂÃÄÅàáâãäåÈÉÊËèéêëÌÍÎÏìíîïÒÓÔÕÖòóôõöÙÚÛÜùúûüÑñÇçÝýÿ"
_PLAIN = "AAAAAAaaaaaaEEEEeeeeIIIIiiiiOOOOOoooooUUUUuuuuNnCcYyy"
#: DuckDB-only functions rewritten for Spark
COVERED = ("regexp_full_match", "try_strptime", "strip_accents", "strlen")
#: DuckDB-only functions (and crmtool macros) with no Spark rewrite yet; ``hash`` is refused
#: because Spark's (Murmur3) differs from DuckDB's: stored hashes use SHA-256/HMAC instead
DUCKDB_ONLY = ("nfc_normalize", "list_sum", "arg_min_null", "to_json", "crm_token", "crm_email_canon",
               "crm_nif_canon", "seg_num", "seg_date", "hash", "list", "string_agg")


class UnsupportedOnSpark(EngineError):
    """A statement uses something with no Spark rewrite yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} has no Spark equivalent in crmtool yet",
                         "run this on --engine duckdb (the default)")
        self.what = what


def spark_datetime_pattern(fmt: str) -> str:
    """A strftime format (as DuckDB reads it) as a Spark datetime pattern; letters outside the
    codes are quoted literals."""
    out, i = [], 0
    while i < len(fmt):
        code = fmt[i:i + 2]
        if code in STRFTIME_TO_SPARK:
            out.append(STRFTIME_TO_SPARK[code])
            i += 2
        elif fmt[i] == "%":
            raise UnsupportedOnSpark(f"the date format code {code!r}")
        else:
            out.append(f"'{fmt[i]}'" if fmt[i].isalpha() else ("''" if fmt[i] == "'" else fmt[i]))
            i += 1
    return "".join(out)


def _rewrite(node: Any) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            raise UnsupportedOnSpark("regexp_full_match with a pattern that is not a literal")
        anchored = exp.Literal.string("\\A(?:" + pattern.this + ")\\z")
        return exp.RegexpLike(this=node.this, expression=anchored)
    if not isinstance(node, exp.Anonymous):
        return node
    name = str(node.this).lower()
    args = list(node.expressions)
    if name == "try_strptime" and len(args) == 2:
        formats = args[1].expressions if isinstance(args[1], exp.Array) else [args[1]]
        if not all(isinstance(f, exp.Literal) and f.is_string for f in formats):
            raise UnsupportedOnSpark("try_strptime with a format that is not a literal")
        tries = [exp.Anonymous(this="try_to_timestamp",
                               expressions=[args[0].copy(), exp.Literal.string(spark_datetime_pattern(f.this))])
                 for f in formats]
        return tries[0] if len(tries) == 1 else exp.Coalesce(this=tries[0], expressions=tries[1:])
    if name == "strlen" and len(args) == 1:  # bytes, not characters
        return exp.Anonymous(this="octet_length", expressions=[args[0]])
    if name == "strip_accents" and len(args) == 1:
        return exp.Anonymous(this="translate", expressions=[args[0], exp.Literal.string(_ACCENTED),
                                                             exp.Literal.string(_PLAIN)])
    if name in DUCKDB_ONLY:
        raise UnsupportedOnSpark(f"the DuckDB function {name}()")
    return node


@lru_cache(maxsize=4096)
def to_spark(sql: str) -> str:
    """One DuckDB statement as Spark SQL (cached per statement text)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise EngineError(f"cannot read a statement for Spark ({str(exc).splitlines()[0]})") from None
    for func in tree.find_all(exp.Func):  # refused names are found before any rewrite hides them
        if isinstance(func, exp.Anonymous) and str(func.this).lower() in DUCKDB_ONLY:
            raise UnsupportedOnSpark(f"the DuckDB function {str(func.this).lower()}()")
    return str(tree.transform(_rewrite).sql(dialect="spark"))
