"""One Spark session (local[2]) for the whole parity suite, started on first use.

The Spark tests skip, saying why, only where pyspark or Java is missing; ``.ci/run`` installs
``crmtool[spark]`` so they run in CI (where, under CI=true, their absence is a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from crmtool.backend.spark_backend import SparkBackend, spark_available


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
