"""SQL backends: DuckDB (embedded, the default) and Apache Spark (optional, ``crmtool[spark]``).

:func:`open_backend` gives the backend an ``--engine`` names; :mod:`crmtool.backend.checks` runs
the checks of a rule set on any backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmtool.backend.base import ENGINES, Backend
from crmtool.errors import UsageError

if TYPE_CHECKING:
    import duckdb

__all__ = ["ENGINES", "Backend", "open_backend"]


def open_backend(engine: str, con: duckdb.DuckDBPyConnection | None = None, *,
                 spark_master: str | None = None) -> Backend:
    """The backend for ``--engine``: DuckDB over ``con``, or a Spark session (local[2] unless
    ``spark_master`` or ``SPARK_REMOTE`` says otherwise)."""
    if engine == "duckdb":
        if con is None:
            raise UsageError("the DuckDB backend needs a connection")
        from crmtool.backend.duckdb_backend import DuckDBBackend

        return DuckDBBackend(con)
    if engine == "spark":
        from crmtool.backend.spark_backend import SparkBackend

        return SparkBackend.start(spark_master)
    raise UsageError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
