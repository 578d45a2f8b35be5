"""SQL text: quoting identifiers and literals, the one place crmtool writes them.

Every module that builds SQL from a name or a value quotes it here; nothing else escapes quotes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def ident(name: str) -> str:
    """Quote an identifier (a column or table name) for SQL: ``a"b`` -> ``"a""b"``."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """Quote a string literal for SQL: ``it's`` -> ``'it''s'``."""
    return "'" + value.replace("'", "''") + "'"


def sql_path(path: Path | str) -> str:
    """A file path as a SQL string literal."""
    return sql_str(str(path))


def sql_list(values: Iterable[str]) -> str:
    """String literals for ``IN (...)``, in the order given: ``['a', "b'c"]`` -> ``'a', 'b''c'``."""
    return ", ".join(sql_str(v) for v in values)
