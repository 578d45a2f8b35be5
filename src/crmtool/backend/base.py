"""The one door SQL goes through: a :class:`Backend` with a dialect.

Features write named SELECT steps in DuckDB SQL; a backend creates tables from them, reads and
writes Parquet, runs a Python function once per distinct value of a column, and executes the
few other statements it allows. :class:`~crmtool.backend.duckdb_backend.DuckDBBackend` wraps
the workspace connection; :class:`~crmtool.backend.spark_backend.SparkBackend` runs the same
steps on Apache Spark after :mod:`crmtool.backend.dialect` has transpiled them (Splink's
``DatabaseAPI`` is the model: docs/decisions/0016-spark-backend.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

#: a per-value function: one input value -> one tuple matching the output columns
ValueFunc = Callable[[str], Sequence[Any]]
#: output columns of a per-value function: (name, DuckDB type) with the types below
Columns = Sequence[tuple[str, str]]
#: the types a per-value function may return, as DuckDB names them
VALUE_TYPES = ("VARCHAR", "BOOLEAN", "BIGINT", "DOUBLE")
ENGINES = ("duckdb", "spark")


class Backend(Protocol):
    """What every engine offers. SQL handed in is DuckDB dialect; results come back as tuples."""

    @property
    def dialect(self) -> str:
        """``duckdb`` or ``spark``."""
        ...

    def create_table(self, name: str, select_sql: str, *, keep: bool = False) -> None:
        """Create (or replace) table ``name`` from a named SELECT step. ``keep``: materialise it
        now (it is read several times); otherwise the engine may compute it lazily."""
        ...

    def drop_table(self, name: str) -> None:
        """Drop ``name`` if it exists."""
        ...

    def fetch(self, select_sql: str) -> list[tuple[Any, ...]]:
        """Rows of a small SELECT (counts, samples): never a whole customer table."""
        ...

    def columns(self, name: str) -> list[tuple[str, str]]:
        """(name, DuckDB type name) of each column of table ``name``."""
        ...

    def read_parquet(self, path: Path, name: str) -> None:
        """Register the Parquet file or folder at ``path`` as table ``name``."""
        ...

    def write_parquet(self, select_sql: str, path: Path) -> None:
        """Write the rows of a SELECT to Parquet at ``path``."""
        ...

    def map_values(self, name: str, values_sql: str, func: ValueFunc, out: Columns) -> None:
        """Create table ``name`` ``(value VARCHAR, <out>)``: ``func`` applied once to each row of
        ``values_sql`` (one VARCHAR column of distinct values), in batches, never one query per value."""
        ...

    def execute(self, sql: str) -> None:
        """Run one statement that is not a SELECT step (``UPDATE`` of a small map table, ``SET``)."""
        ...

    def close(self) -> None:
        """Release what the backend started (a Spark session it created; never the workspace)."""
        ...
