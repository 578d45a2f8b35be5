"""One Spark session (local[2]) for the whole parity suite, started on first use.

The Spark tests skip, saying why, only where pyspark or Java is missing; ``.ci/run`` installs
``crmtool[spark]`` so they run in CI (where, under CI=true, their absence is a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crmtool.backend.spark_backend import SparkBackend, spark_available
from crmtool.engine import CHANGES as ENGINE_CHANGES
from crmtool.engine import VIOLATIONS as ENGINE_VIOLATIONS
from crmtool.engine import run_rules
from crmtool.io.readers import load_file
from crmtool.rulefile import load_rules


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkBackend]:
    why = spark_available()
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # as tests/htmlreport does for Chromium
            pytest.fail(f"the Spark parity tests must run under CI (.ci/run installs crmtool[spark]): {why}")
        pytest.skip(f"Spark parity tests need pyspark and Java: {why}")
    backend = SparkBackend.start("local[2]")
    backend.spark.sparkContext.setLogLevel("ERROR")
    yield backend  # validate --engine spark joins this session and leaves it running
    backend.close()


def outcome_rows(result: Any) -> list[tuple[object, ...]]:
    """What a run says per rule, for comparing engines."""
    return [(o.spec.name, o.checked, o.failed, o.fixed, o.rejected, o.status, o.reasons, o.sample_rows)
            for o in result.outcomes]


def engine_run(data: Path, rules: Path, table: str) -> tuple[duckdb.DuckDBPyConnection, Any, list[Any], list[Any],
                                                             list[Any]]:
    """The DuckDB engine on ``data`` loaded as ``data_<table>``: its connection, result, violations,
    changes and fixed rows (``work_<table>``), in a fixed order."""
    con = duckdb.connect()
    load_file(con, data, f"data_{table}")
    engine = run_rules(con, f"data_{table}", load_rules([rules]), work_table=f"work_{table}")
    violations = con.execute(f"SELECT rule, _row, \"column\", reason, reject FROM {ENGINE_VIOLATIONS} "
                             f"ORDER BY ALL").fetchall()
    changes = con.execute(f"SELECT rule, _row, \"column\", old, new FROM {ENGINE_CHANGES} ORDER BY ALL").fetchall()
    work = con.execute(f"SELECT * FROM work_{table} ORDER BY _row").fetchall()
    return con, engine, violations, changes, work
