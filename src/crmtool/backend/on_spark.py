"""Validate's and clean's rules on Spark, over a table the local reader loaded.

The input is read by crmtool's reader into the workspace as on DuckDB (encoding and delimiter
detection, parse rejects, erased people dropped before anything else sees them), staged once as
Parquet, and read by Spark; the fixes and checks then run there as SELECT steps
(:mod:`crmtool.backend.checks`). For ``clean`` the working table, the changes and the violations
come back into the workspace (as Parquet parts Spark writes), in the engine's tables and types,
and clean writes its outputs, audit change set and manifest from them exactly as after the DuckDB
engine. Reading big Parquet inputs directly on the cluster, and writing the outputs from there,
is the next slice (docs/decisions/0016-spark-backend.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.io.stage import private_scratch
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.backend.spark_backend import SparkBackend
    from crmtool.engine import EngineResult, RecordedAs
    from crmtool.rulefile import RuleSet

#: the name the staged input has on Spark
SPARK_INPUT = "crm_input"


@contextmanager
def staged_on_spark(con: duckdb.DuckDBPyConnection, tables: dict[str, str],
                    spark_master: str | None) -> Iterator[tuple[SparkBackend, Path]]:
    """A Spark session with each ``name: SELECT`` of ``tables`` (run on the workspace) staged as
    Parquet in a private scratch folder and registered under ``name``, and that folder for what
    comes back (:func:`pull`); the tables, the folder and the session are gone when the block ends."""
    from crmtool.backend.duckdb_backend import DuckDBBackend
    from crmtool.backend.spark_backend import SparkBackend

    spark = SparkBackend.start(spark_master)
    try:
        with private_scratch() as tmp:
            for name, select in tables.items():
                staged = tmp / f"{name}.parquet"
                DuckDBBackend(con).write_parquet(select, staged)
                spark.read_parquet(staged, name)
            try:
                yield spark, tmp
            finally:
                for name in tables:
                    spark.drop_table(name)
    finally:
        spark.close()


@contextmanager
def _input_on_spark(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet,
                    spark_master: str | None) -> Iterator[tuple[SparkBackend, Path]]:
    """:func:`staged_on_spark` with the loaded ``table`` as :data:`SPARK_INPUT`, once the rules are
    known to run there."""
    from crmtool.backend.checks import unported_problems
    from crmtool.errors import ConfigError
    from crmtool.kinds.email_risk_steps import history_problems

    # before a JVM is started for nothing
    problems = unported_problems(ruleset) + history_problems(con, list(ruleset.rules))
    if problems:
        raise ConfigError(problems, "run these rules on --engine duckdb (the default)")
    with staged_on_spark(con, {SPARK_INPUT: f"SELECT * FROM {ident(table)}"}, spark_master) as staged:
        yield staged


def check_loaded_on_spark(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet,
                          spark_master: str | None = None, *, sample_size: int = 5) -> EngineResult:
    """Run ``ruleset``'s fixes and checks over the loaded ``table`` on Spark; the result names
    ``table`` as its working table (Spark's copy is gone when this returns)."""
    from crmtool.backend.checks import run_checks

    with _input_on_spark(con, table, ruleset, spark_master) as (spark, _tmp):
        result = run_checks(spark, SPARK_INPUT, ruleset, sample_size=sample_size, home=con)
        spark.drop_table(result.work_table)
    result.work_table = table
    return result


def clean_loaded_on_spark(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet,
                          spark_master: str | None = None, *, work_table: str, recorded_as: RecordedAs,
                          sample_size: int = 5) -> EngineResult:
    """Run ``ruleset`` over the loaded ``table`` on Spark and leave in the workspace what
    :func:`crmtool.engine.run_rules` leaves: ``work_table`` (the fixed rows, in ``table``'s column
    types), the changes (old and new as ``recorded_as`` gives them) and the violations."""
    from crmtool.backend.checks import CHANGES, VIOLATIONS, run_checks
    from crmtool.engine import CHANGES as ENGINE_CHANGES
    from crmtool.engine import VIOLATIONS as ENGINE_VIOLATIONS
    from crmtool.engine import create_result_tables

    types = [(str(n), str(t)) for n, t, *_ in con.execute(f"DESCRIBE {ident(table)}").fetchall()]
    with _input_on_spark(con, table, ruleset, spark_master) as (spark, tmp):
        result = run_checks(spark, SPARK_INPUT, ruleset, sample_size=sample_size, keep_results=True,
                            home=con)
        try:
            cast = ", ".join(f"CAST({ident(n)} AS {t}) AS {ident(n)}" for n, t in types)
            pull(spark, con, f"SELECT * FROM {result.work_table}", tmp / "work", work_table, cast, temp=False)
            pull(spark, con, f"SELECT * FROM {CHANGES}", tmp / "changes", "__spark_changes")
            pull(spark, con, f"SELECT * FROM {VIOLATIONS}", tmp / "violations", "__spark_violations")
        finally:
            for name in (result.work_table, CHANGES, VIOLATIONS):
                spark.drop_table(name)
    try:
        create_result_tables(con)
        columns = [r[0] for r in con.execute('SELECT DISTINCT "column" FROM __spark_changes ORDER BY 1').fetchall()]
        for column in columns:  # personal values become keyed hashes here, as the engine records them
            con.execute(f"INSERT INTO {ENGINE_CHANGES} SELECT rule, _row, \"column\", {recorded_as(column, 'old')}, "
                        f"{recorded_as(column, 'new')} FROM __spark_changes WHERE \"column\" = {sql_str(column)}")
        con.execute(f"INSERT INTO {ENGINE_VIOLATIONS} SELECT rule, _row, \"column\", reason, reject "
                    f"FROM __spark_violations")
    finally:
        con.execute("DROP TABLE IF EXISTS __spark_changes; DROP TABLE IF EXISTS __spark_violations")
    result.work_table = work_table
    return result


def pull(spark: SparkBackend, con: duckdb.DuckDBPyConnection, select_sql: str, folder: Path, name: str,
         columns: str = "*", *, temp: bool = True, empty: str | None = None, order: str | None = None) -> None:
    """``select_sql`` on Spark, written as Parquet parts under ``folder``, into the workspace table
    ``name`` (``columns``: the SELECT list over them, ``order``: an ORDER BY); the parts are read
    through the io gate. ``empty``: the relation to read when Spark wrote no part (no rows)."""
    from crmtool.io.gate import readable, release

    spark.write_parquet(select_sql, folder)
    parts = [readable(con, p) for p in sorted(folder.glob("*.parquet"))]
    try:
        source = f"read_parquet([{', '.join(sql_str(p) for p in parts)}])" if parts or empty is None else empty
        con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {ident(name)} AS SELECT {columns} "
                    f"FROM {source}" + (f" ORDER BY {order}" if order else ""))
    finally:
        for part in parts:
            release(con, part)
