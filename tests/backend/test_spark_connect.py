"""Spark Connect (``--spark-master sc://...`` or ``SPARK_REMOTE``): a real Connect server on
loopback, started from the pyspark install (pyspark 4 ships the server's jar), and validate run
through it gives DuckDB's outcomes; Spark's failures reach the user as one line.

The Connect run is a subprocess: once a process has made a Connect session, pyspark makes every
later session in it a Connect one, and the parity suite shares one local session."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmtool.backend.spark_backend import _spark_errors, spark_available
from crmtool.errors import EngineError

from .test_spark_parity import EXAMPLE, validate_json

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
RULES = """version: 1
rules:
  - {name: id_required, kind: required, column: customer_id}
  - {name: id_unique, kind: unique, column: customer_id}
  - {name: email_lower, kind: email_normalise, column: email}
  - {name: email_valid, kind: email, column: email}
  - {name: phone_e164, kind: phone, column: phone, region: ES, action: fix}
  - {name: nif_valid, kind: national_id, column: national_id, action: fix, severity: warning}
  - {name: spent_range, kind: range, column: total_spent, min: 0, max: 100000}
"""


def _why_no_connect_server() -> str | None:
    why = spark_available()
    if why:
        return why
    import pyspark

    home = Path(pyspark.__file__).parent
    if not list((home / "jars").glob("spark-connect_*.jar")):
        return f"pyspark {pyspark.__version__} ships no Spark Connect server (pyspark 4 does)"
    try:
        import grpc  # noqa: F401  (the Connect client's transport)
    except ImportError:
        return "the Spark Connect client needs pyspark[connect] (grpcio)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    why = _why_no_connect_server()
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the Spark Connect test must run under CI (.ci/run installs crmtool[spark]): {why}")
        pytest.skip(f"Spark Connect test: {why}")
    import pyspark

    port = _free_port()
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_HOME": str(submit.parent.parent)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(submit), "--class", SERVER_CLASS, "--master", "local[2]",
             "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
             "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=8",
             "spark-internal"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"the Spark Connect server stopped: {log.read_text(errors='replace')[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"no Spark Connect server on port {port} after 180 s")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_validate_over_spark_connect_gives_the_duckdb_outcomes(connect_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    code_duck, duck = validate_json(EXAMPLE, "--rules", rules)
    run = subprocess.run([sys.executable, "-m", "crmtool", "validate", str(EXAMPLE), "--rules", str(rules),
                          "--engine", "spark", "--spark-master", connect_url, "-f", "json"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    code_spark, on_spark = run.returncode, json.loads(run.stdout or "{}")
    for rule in on_spark.get("rules", []):
        rule.pop("seconds")
    assert on_spark.get("rules"), run.stderr[-2000:]
    assert on_spark["rules"] == duck["rules"]
    assert code_spark == code_duck
    outcome = {r["rule"]: (r["failed"], r["fixed"]) for r in duck["rules"]}
    # per-value Python (email syntax, phone numbers, national ids) ran on the server's workers
    assert outcome["email_valid"][0] > 0 and outcome["phone_e164"][1] > 0 and outcome["nif_valid"][1] > 0


def test_a_python_worker_without_crmtool_is_one_line_with_a_hint() -> None:
    worker = ("An exception was thrown from the Python worker. Please see the stack trace below.\n"
              "Traceback (most recent call last):\n  File \"worker.py\", line 1\n"
              "ModuleNotFoundError: No module named 'crmtool'\n\tat org.apache.spark.api.python...")
    with pytest.raises(EngineError) as caught, _spark_errors("failed a step"):
        raise RuntimeError(worker)
    assert str(caught.value) == "Spark failed a step: its Python workers cannot import crmtool"
    assert "PYSPARK_PYTHON" in caught.value.hint


def test_other_spark_failures_keep_only_the_head_of_the_message() -> None:
    with pytest.raises(EngineError) as caught, _spark_errors("refused a statement"):
        raise ValueError("[UNRESOLVED_COLUMN] column `x` cannot be resolved\n  stack line with a value 'ana@x.es'")
    assert str(caught.value) == ("Spark refused a statement (ValueError: [UNRESOLVED_COLUMN] column `x` "
                                 "cannot be resolved)")
