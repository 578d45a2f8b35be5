"""Under spark-submit, crmtool runs on spark-submit's master unless ``--spark-master`` names one.

A real ``spark-submit --master local[1]`` of a two-line driver: before, the session builder's
``local[2]`` silently overrode it (a cluster job would have run on the driver alone).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmtool.backend.spark_backend import spark_available

DRIVER = """\
import sys
from crmtool.backend.spark_backend import SparkBackend
backend = SparkBackend.start(sys.argv[1] if len(sys.argv) > 1 else None)
print("MASTER=" + backend.spark.sparkContext.master)
backend.close()
"""


def _submit(tmp_path: Path, *args: str) -> str:
    if why := spark_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"spark-submit must run under CI: {why}")
        pytest.skip(f"spark-submit needs pyspark and Java: {why}")
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run([str(submit), "--master", "local[1]", "--conf", "spark.ui.enabled=false",
                           str(driver), *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return next(line for line in done.stdout.splitlines() if line.startswith("MASTER="))


@pytest.mark.slow
def test_spark_submit_master_is_kept(tmp_path: Path) -> None:
    assert _submit(tmp_path) == "MASTER=local[1]"
