"""A DuckDB connection wrapper for tests that count or inspect the statements a step runs."""

from __future__ import annotations

from typing import Any


class Recording:
    """A connection that records the SQL it runs (and passes everything on)."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.sql: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        self.sql.append(sql)
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)
