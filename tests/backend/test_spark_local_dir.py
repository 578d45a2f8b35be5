"""Spark's own scratch (``spark.local.dir``: shuffle files, spilled and checkpointed blocks) lives in
crmtool's private scratch folder when crmtool starts a local session, unless the user set it."""

from __future__ import annotations

import stat
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

from crmtool.backend.spark_backend import SparkBackend, local_dir_set_by_user
from crmtool.io.stage import SCRATCH_PREFIX, private_scratch

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def test_the_shared_session_keeps_its_blocks_in_a_private_scratch_folder(spark: SparkBackend) -> None:
    if local_dir_set_by_user():
        pytest.skip(f"spark.local.dir is the user's here ({local_dir_set_by_user()})")
    local_dir = Path(spark.spark.sparkContext.getConf().get("spark.local.dir"))
    assert local_dir.parent == Path(tempfile.gettempdir())
    assert local_dir.name.startswith(SCRATCH_PREFIX)
    assert stat.S_IMODE(local_dir.stat().st_mode) == 0o700
    spark.create_table("__local_dir_probe", "SELECT k, count(*) AS n FROM (VALUES (1), (2), (1)) t(k) GROUP BY k",
                       keep=True)  # a shuffle and a checkpoint: Spark's block manager writes under local_dir
    try:
        assert spark.fetch("SELECT sum(n) FROM __local_dir_probe") == [(3,)]
        assert any(p.name.startswith("blockmgr-") for p in local_dir.iterdir())
    finally:
        spark.drop_table("__local_dir_probe")


def test_the_users_setting_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("SPARK_LOCAL_DIRS", "SPARK_EXECUTOR_DIRS", "PYSPARK_SUBMIT_ARGS", "SPARK_CONF_DIR", "SPARK_HOME"):
        monkeypatch.delenv(var, raising=False)
    assert local_dir_set_by_user() is None
    monkeypatch.setenv("SPARK_LOCAL_DIRS", "/fast/disk")
    assert local_dir_set_by_user() == "SPARK_LOCAL_DIRS"
    monkeypatch.delenv("SPARK_LOCAL_DIRS")
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--conf spark.local.dir=/fast/disk pyspark-shell")
    assert local_dir_set_by_user() == "PYSPARK_SUBMIT_ARGS"
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS")
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text("spark.driver.memory 4g\n# spark.local.dir /commented/out\n", encoding="utf-8")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert local_dir_set_by_user() is None
    defaults.write_text("spark.local.dir   /fast/disk\n", encoding="utf-8")
    assert local_dir_set_by_user() == str(defaults)


def test_closing_the_backend_removes_the_folder() -> None:
    class Session:  # a session someone else owns: close() does not stop it
        stopped = False

    stack = ExitStack()
    folder = stack.enter_context(private_scratch())
    (folder / "blockmgr-1").mkdir()
    backend = SparkBackend(Session(), owned=False, scratch=stack)  # type: ignore[arg-type]
    backend.close()
    assert not folder.exists()
