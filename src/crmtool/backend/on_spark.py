"""Validate's checks on Spark, over a table the local reader loaded.

The input is read by crmtool's reader into the workspace as on DuckDB (encoding and delimiter
detection, parse rejects, erased people dropped before anything else sees them), staged once as
Parquet, and read by Spark; the fixes and checks then run there as SELECT steps
(:mod:`crmtool.backend.checks`). Reading big Parquet inputs directly on the cluster is the next
slice (docs/decisions/0016-spark-backend.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

    from crmtool.engine import EngineResult
    from crmtool.rulefile import RuleSet

#: the name the staged input has on Spark
SPARK_INPUT = "crm_input"


def check_loaded_on_spark(con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet,
                          spark_master: str | None = None, *, sample_size: int = 5) -> EngineResult:
    """Run ``ruleset``'s fixes and checks over the loaded ``table`` on Spark; the result names
    ``table`` as its working table (Spark's copy is gone when this returns)."""
    from crmtool.backend.checks import run_checks, unported_problems
    from crmtool.backend.duckdb_backend import DuckDBBackend
    from crmtool.backend.spark_backend import SparkBackend
    from crmtool.errors import ConfigError

    problems = unported_problems(ruleset)  # before a JVM is started for nothing
    if problems:
        raise ConfigError(problems, "run these rules on --engine duckdb (the default)")
    spark = SparkBackend.start(spark_master)
    try:
        with tempfile.TemporaryDirectory(prefix="crmtool-spark-") as tmp:
            staged = Path(tmp) / "input.parquet"
            DuckDBBackend(con).write_parquet(f"SELECT * FROM {ident(table)}", staged)
            spark.read_parquet(staged, SPARK_INPUT)
            result = run_checks(spark, SPARK_INPUT, ruleset, sample_size=sample_size)
            spark.drop_table(result.work_table)
            spark.drop_table(SPARK_INPUT)
    finally:
        spark.close()
    result.work_table = table
    return result
