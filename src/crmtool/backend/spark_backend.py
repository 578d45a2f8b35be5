"""Apache Spark behind the :class:`Backend` door (``pip install 'crmtool[spark]'``, Java 17).

Tables are Spark temporary views; a step that is read several times is materialised with a
local checkpoint, which also cuts its lineage (Splink's ``SparkAPI`` breaks lineage the same
way). SQL arrives in DuckDB's dialect and is transpiled by
:func:`crmtool.backend.dialect.to_spark`. Per-value Python runs in ``mapInArrow`` on the
executors, which therefore need crmtool installed (local mode uses this interpreter).

The session: ``--spark-master`` (``local[2]``, ``spark://host:7077``, ``yarn``, ...), else the
``SPARK_REMOTE`` environment variable (Spark Connect, ``sc://host:15002``), else, in a process
spark-submit started, spark-submit's ``--master``, else ``local[2]``.

Spark's own scratch (``spark.local.dir``: shuffle files, spilled and checkpointed blocks, which
hold customer rows) goes into a private, locked folder of crmtool's
(:func:`crmtool.io.stage.private_scratch`) when crmtool starts a local session, unless the user
set it (``SPARK_LOCAL_DIRS``, ``--conf`` in ``PYSPARK_SUBMIT_ARGS`` or ``spark-defaults.conf``);
the folder goes with the session, or with the next run's sweep when this one is killed. On a
cluster the executors' local dirs are the cluster manager's own (YARN's ``LOCAL_DIRS``, a
worker's ``SPARK_LOCAL_DIRS``), and a session spark-submit started keeps its settings.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.backend.base import Columns, ValueFunc
from crmtool.backend.dialect import to_spark
from crmtool.errors import EngineError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER = "local[2]"
#: Spark type names -> DuckDB's, for :meth:`SparkBackend.columns` (the planners compare with these)
_DUCK_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
               "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "float": "FLOAT",
               "smallint": "SMALLINT", "tinyint": "TINYINT"}
_SPARK_TYPES = {"VARCHAR": "string", "BOOLEAN": "boolean", "BIGINT": "bigint", "DOUBLE": "double"}
#: settings that make Spark read values the way DuckDB does (dates without the legacy parser's
#: leniency, NULL on a failed cast, one time zone)
SESSION_CONF = {
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: on a local master only: small shuffles for one machine, no web UI
LOCAL_CONF = {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false",
              "spark.ui.showConsoleProgress": "false"}
_UPDATE = re.compile(r"\s*UPDATE\s+(\S+)\s+SET\s+(\w+)\s*=\s*(.+?)\s+WHERE\s+(.+)", re.IGNORECASE | re.DOTALL)


def launched_by_spark_submit() -> bool:
    """Whether spark-submit (or the pyspark shell) started this interpreter: its JVM is already
    up and pyspark joins it through the gateway port it was given."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _active_connect_session() -> Any:
    """The Spark Connect session this process already has, if any (pyspark 3.5 and 4)."""
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError:  # the connect client's packages (grpcio, ...) are missing: builder.remote says so
        return None
    return ConnectSession.getActiveSession()


@contextmanager
def _spark_errors(doing: str) -> Iterator[None]:
    """Spark's exceptions (analysis errors, a failed Python worker, a lost connection) as one
    EngineError line: the head of Spark's message, never its stack or the rows it held."""
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:  # pyspark's AnalysisException, PythonException, SparkConnectGrpcException, ...
        text = str(exc).strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        head = lines[0] if lines else type(exc).__name__
        missing = next((line for line in lines if "No module named 'crmtool'" in line), None)
        if missing:
            raise EngineError(f"Spark {doing}: its Python workers cannot import crmtool",
                              "install crmtool on every executor (local mode: set PYSPARK_PYTHON to the "
                              "interpreter that has it)") from None
        raise EngineError(f"Spark {doing} ({type(exc).__name__}: {head[:300]})") from None


def local_dir_set_by_user() -> str | None:
    """Where the user set Spark's scratch folder (an environment variable or a configuration file
    that names ``spark.local.dir``), or None: crmtool then puts it in its private scratch."""
    for var in ("SPARK_LOCAL_DIRS", "SPARK_EXECUTOR_DIRS"):
        if os.environ.get(var):
            return var
    if "spark.local.dir" in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        return "PYSPARK_SUBMIT_ARGS"
    homes = [os.environ.get("SPARK_CONF_DIR")]
    if os.environ.get("SPARK_HOME"):
        homes.append(os.path.join(os.environ["SPARK_HOME"], "conf"))
    for folder in filter(None, homes):
        defaults = Path(folder) / "spark-defaults.conf"
        try:
            text = defaults.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if any(line.split()[:1] == ["spark.local.dir"] for line in text.splitlines()):
            return str(defaults)
    return None


def spark_available() -> str | None:
    """Why Spark cannot run here (no pyspark, no Java), or None when it can."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'crmtool[spark]')"
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        return "no Java runtime (Spark needs Java 17: set JAVA_HOME or put java on PATH)"
    return None


class SparkBackend:
    """A Spark session as a backend. ``owned``: whether :meth:`close` stops the session."""

    dialect = "spark"

    def __init__(self, spark: SparkSession, *, owned: bool = False, scratch: ExitStack | None = None) -> None:
        self.spark = spark
        self.owned = owned
        self._kept: dict[str, DataFrame] = {}
        #: the private folder holding ``spark.local.dir`` of a session this backend started
        self._scratch = scratch

    @classmethod
    def start(cls, master: str | None = None) -> SparkBackend:
        """Start (or join) a session: ``master``, else ``SPARK_REMOTE``, else spark-submit's master
        when spark-submit started this process, else local[2]."""
        why = spark_available()
        if why:
            raise UsageError(f"--engine spark: {why}", "or leave --engine out to run on DuckDB")
        from pyspark.sql import SparkSession

        builder: Any = SparkSession.builder.appName("crmtool")
        scratch: ExitStack | None = None
        remote = master if master and master.startswith("sc://") else (
            None if master else os.environ.get("SPARK_REMOTE"))
        if remote:
            builder = builder.remote(remote)
            active = _active_connect_session()
        elif not master and launched_by_spark_submit():
            # spark-submit started this interpreter with its --master (and --conf): a builder
            # master would override it and run the job in local[2] on the driver
            active = SparkSession.getActiveSession()
        else:
            master = master or DEFAULT_MASTER
            builder = builder.master(master)
            if master.startswith("local"):
                # local executors run this interpreter, the one that has crmtool; pyspark reads
                # the variable when the context starts (else whatever `python3` is first on PATH)
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            for key, value in (LOCAL_CONF if master.startswith("local") else {}).items():
                builder = builder.config(key, value)
            active = SparkSession.getActiveSession()
            if master.startswith("local") and active is None and local_dir_set_by_user() is None:
                from crmtool.io.stage import private_scratch

                scratch = ExitStack()  # shuffle and checkpoint blocks hold customer rows
                builder = builder.config("spark.local.dir", str(scratch.enter_context(private_scratch())))
        for key, value in SESSION_CONF.items():
            builder = builder.config(key, value)
        try:
            with _spark_errors("start a session"):
                spark = builder.getOrCreate()
                for key, value in SESSION_CONF.items():  # a session joined, not created, gets them too
                    spark.conf.set(key, value)
        except BaseException:
            if scratch is not None:
                scratch.close()
            raise
        return cls(spark, owned=active is None, scratch=scratch)  # a session someone else started stays up

    def _sql(self, sql: str) -> DataFrame:
        with _spark_errors("refused a statement"):
            return self.spark.sql(to_spark(sql))

    def create_table(self, name: str, select_sql: str, *, keep: bool = False) -> None:
        frame = self._sql(select_sql)
        self._register(name, frame, keep)

    def _register(self, name: str, frame: DataFrame, keep: bool) -> None:
        old = self._kept.pop(name, None)
        if keep:
            # materialised now and cut from its lineage (a local checkpoint): the steps that read
            # it neither recompute it nor re-optimise a plan that grows with every step
            with _spark_errors("failed a step"):
                frame = frame.localCheckpoint(eager=True)
            self._kept[name] = frame
        frame.createOrReplaceTempView(name)
        if old is not None:
            old.unpersist()

    def drop_table(self, name: str) -> None:
        frame = self._kept.pop(name, None)
        if frame is not None:
            frame.unpersist()
        self.spark.catalog.dropTempView(name)

    def fetch(self, select_sql: str) -> list[tuple[Any, ...]]:
        frame = self._sql(select_sql)
        with _spark_errors("failed a step"):
            return [tuple(row) for row in frame.collect()]

    def columns(self, name: str) -> list[tuple[str, str]]:
        return [(n, _DUCK_TYPES.get(t, t.upper())) for n, t in self.spark.table(name).dtypes]

    def read_parquet(self, path: Path, name: str) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)

    def write_parquet(self, select_sql: str, path: Path) -> None:
        """A Parquet folder (one file per partition), as Spark writes; replaced if present."""
        frame = self._sql(select_sql)
        with _spark_errors("failed to write Parquet"):
            frame.write.mode("overwrite").parquet(str(path))

    def map_values(self, name: str, values_sql: str, func: ValueFunc, out: Columns) -> None:
        from crmtool.backend.duckdb_backend import apply_to_batch

        schema = ", ".join(["value string", *[f"`{n}` {_SPARK_TYPES[t]}" for n, t in out]])
        columns = list(out)

        def per_batch(batches: Any) -> Any:
            for batch in batches:
                yield apply_to_batch(batch, func, columns)

        frame = self._sql(values_sql).mapInArrow(per_batch, schema)
        self._register(name, frame, keep=True)

    def execute(self, sql: str) -> None:
        """``UPDATE <map table> SET col = expr WHERE cond`` becomes a new version of the table (a
        SELECT with a CASE): the only UPDATE the kinds issue, on their small per-value tables."""
        match = _UPDATE.fullmatch(sql.strip().rstrip(";"))
        if not match:
            raise EngineError(f"the Spark backend runs SELECT steps only, not: {sql.split()[0].upper()} ...")
        table, column, value, cond = match.groups()
        cols = [n for n, _t in self.columns(table)]
        select = ", ".join(f"CASE WHEN {cond} THEN {value} ELSE {c} END AS {c}" if c == column else c for c in cols)
        self._register(table, self._sql(f"SELECT {select} FROM {table}"), keep=True)  # checkpointed: no self-reference

    def close(self) -> None:
        for name in list(self._kept):
            self.drop_table(name)
        if self.owned:
            self.spark.stop()
        if self._scratch is not None:  # after the stop: Spark's own shutdown removes its folders first
            scratch, self._scratch = self._scratch, None
            scratch.close()
