"""The embedded default: the workspace's DuckDB connection behind the :class:`Backend` door."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.backend.base import Columns, ValueFunc
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

#: rows per Arrow batch handed to a per-value function
BATCH_ROWS = 65_536


def apply_to_batch(batch: pa.RecordBatch, func: ValueFunc, out: Columns) -> pa.RecordBatch:
    """``func`` on each value of a one-column batch: the batch of ``(value, <out>)`` it gives.

    Shared by both backends (Spark calls it inside ``mapInArrow``), so a value maps the same way
    on each. A ``func`` with a ``map_batch(values) -> results`` method gets the batch's non-null
    values in one call (set-based work per batch, e.g. SQL on an executor's own DuckDB).
    """
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "BOOLEAN": pa.bool_(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    values = batch.column(0).to_pylist()
    many = getattr(func, "map_batch", None)
    if many is not None:
        present = [v for v in values if v is not None]
        mapped = iter(many(present) if present else [])
        results = [tuple(next(mapped)) if v is not None else (None,) * len(out) for v in values]
    else:
        results = [tuple(func(v)) if v is not None else (None,) * len(out) for v in values]
    arrays = [pa.array(values, pa.string())]
    arrays += [pa.array([r[i] for r in results], types[t]) for i, (_n, t) in enumerate(out)]
    return pa.RecordBatch.from_arrays(arrays, names=["value", *[n for n, _t in out]])


class DuckDBBackend:
    """DuckDB over an open connection (the workspace's); it never closes that connection."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create_table(self, name: str, select_sql: str, *, keep: bool = False) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS {select_sql}")

    def drop_table(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {ident(name)}")

    def fetch(self, select_sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(select_sql).fetchall()

    def columns(self, name: str) -> list[tuple[str, str]]:
        return [(str(r[0]), str(r[1])) for r in self.con.execute(f"DESCRIBE {ident(name)}").fetchall()]

    def read_parquet(self, path: Path, name: str) -> None:
        """A view over the file, copied into a table (a walled workspace session reads files only
        through :mod:`crmtool.io.gate`, and only while the file is handed to it)."""
        from crmtool.io.gate import readable, release

        source = readable(self.con, path)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS "
                             f"SELECT * FROM read_parquet({sql_str(source)})")
        finally:
            release(self.con, source)

    def write_parquet(self, select_sql: str, path: Path) -> None:
        """Atomically, through the io door (:func:`crmtool.io.writers.write_query`)."""
        from crmtool.io.writers import write_query

        write_query(self.con, select_sql, path, "parquet")

    def map_values(self, name: str, values_sql: str, func: ValueFunc, out: Columns) -> None:
        import pyarrow as pa

        self.con.complete()  # DuckDB 2: a pending execute() result must end before relation work
        reader = self.con.sql(values_sql).to_arrow_reader(BATCH_ROWS)
        empty = pa.record_batch([pa.array([], pa.string())], names=["v"])
        schema = apply_to_batch(empty, func, out).schema
        mapped = pa.Table.from_batches([apply_to_batch(b, func, out) for b in reader], schema=schema)
        self.con.register("__mapped_values", mapped)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS SELECT * FROM __mapped_values")
        finally:
            self.con.unregister("__mapped_values")

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def close(self) -> None:
        """Nothing to release: the connection belongs to the workspace."""
