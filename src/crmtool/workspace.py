"""The workspace: one DuckDB database that holds loaded exports, run history and caches.

It is a file in the working folder by default (``crmtool.duckdb``) so that later runs can use
history (KPIs over time, segment membership, MX answers with their TTL, suppression lists);
``:memory:`` gives a one-shot run. A file lock beside the database makes sure two runs never
interleave: the second waits up to ``lock_timeout`` seconds, then stops with
:class:`~crmtool.errors.WorkspaceBusy`.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool import __version__
from crmtool.errors import InputError, UsageError, WorkspaceBusy
from crmtool.sqltext import sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.keys import KeyedHasher
    from crmtool.status import Status
    from crmtool.steps import Step

DEFAULT_WORKSPACE = "crmtool.duckdb"
MEMORY = ":memory:"
#: DuckDB's memory cap unless CRMTOOL_MEMORY_LIMIT says otherwise (docs/decisions/0014-speed-validate-path.md)
DEFAULT_MEMORY_LIMIT = "1.5GB"
#: with a cap, DuckDB's allocator hands freed memory back to the system sooner (its defaults keep up
#: to 128 MiB after a task and 512 MiB after a bulk free, memory the cap does not count)
ALLOCATOR_SETTINGS = {"allocator_flush_threshold": "32MB", "allocator_bulk_deallocation_flush_threshold": "64MB",
                      "allocator_background_threads": "true"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crm_runs (
    run_id VARCHAR PRIMARY KEY,
    command VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    tool_version VARCHAR NOT NULL,
    status VARCHAR,
    exit_code INTEGER,
    summary JSON
);
CREATE TABLE IF NOT EXISTS crm_rule_results (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    checked BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    fixed BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    status VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS crm_outputs (
    run_id VARCHAR NOT NULL,
    command VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    rows BIGINT,
    written_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS crm_metrics (
    run_id VARCHAR NOT NULL,
    step VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL DEFAULT '',
    value DOUBLE,
    recorded_at TIMESTAMP NOT NULL
);
"""

# Schema versions. The tables above are the baseline (version 1, as the first releases made
# them); they are created when missing on every open, so a table added there appears in any
# workspace. A change to an existing table is a migration: appended here, never edited or
# reordered once released. A workspace records the version it reached in crm_schema; a tool
# opens any older workspace (migrating it) and refuses a newer one.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "baseline: runs, rule results, outputs, metrics", ""),
    (2, "runs know the pipeline run that started them",
     "ALTER TABLE crm_runs ADD COLUMN IF NOT EXISTS parent_run_id VARCHAR"),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS crm_schema (
    version INTEGER NOT NULL,
    description VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);
"""


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version a workspace reached (0 for one made before versions were recorded)."""
    row = con.execute("SELECT max(version) FROM crm_schema").fetchall()[0]
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection, path: str) -> list[int]:
    """Bring a workspace to :data:`SCHEMA_VERSION`; return the versions applied.

    Each migration runs in its own transaction with its crm_schema row, so an interrupted
    upgrade resumes where it stopped. A workspace from a newer crmtool is refused (exit 2):
    this tool cannot know what its tables mean.
    """
    con.execute(_SCHEMA_TABLE)
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise InputError(
            f"workspace {path} has schema version {current}, newer than this crmtool {__version__} knows "
            f"({SCHEMA_VERSION})",
            "upgrade crmtool, or use another --workspace",
        )
    applied = []
    for version, description, sql in MIGRATIONS:
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            if sql:
                con.execute(sql)
            con.execute("INSERT INTO crm_schema VALUES (?, ?, ?, ?)",
                        [version, description, __version__, datetime.now(UTC).replace(tzinfo=None)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


@dataclass(frozen=True)
class OutputRecord:
    """One file a run wrote, as registered in ``crm_outputs`` (absolute path, SHA-256 when written)."""

    run_id: str
    command: str
    kind: str
    path: Path
    sha256: str
    rows: int | None


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC timestamp plus 6 random hex digits."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class Run:
    """One command execution recorded in ``crm_runs``."""

    run_id: str
    command: str
    started_at: datetime
    timings: dict[str, float] = field(default_factory=dict)
    step: Step = field(init=False)

    def __post_init__(self) -> None:
        from crmtool.steps import Step

        self.step = Step(self.command)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Add the wall time of a block to :attr:`timings` under ``step``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = round(self.timings.get(step, 0.0) + time.perf_counter() - start, 4)



def temp_sandbox() -> Path:
    """A sandbox in the system's temp folder, named ``crmtool.io-<pid>-…`` by the process that owns
    it. Sandboxes there whose process is gone (a run killed with ``kill -9`` or out of memory leaves
    its spill files: gigabytes at 1M rows) are removed first; only the user's own, and never one
    whose process still runs."""
    import shutil

    from crmtool.io.gate import SANDBOX_MARK

    for stale in Path(tempfile.gettempdir()).glob(f"crmtool{SANDBOX_MARK}*-*"):
        pid = stale.name[len(f"crmtool{SANDBOX_MARK}"):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if stale.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)  # the owner still runs (or the pid was reused): keep it
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except OSError:  # PermissionError: another user's process holds that pid
            continue
    return Path(tempfile.mkdtemp(prefix=f"crmtool{SANDBOX_MARK}{os.getpid()}-"))

class Workspace:
    """An open workspace: ``con`` is the DuckDB connection; use as a context manager."""

    def __init__(self, path: str | Path = DEFAULT_WORKSPACE, *, lock_timeout: float = 60.0,
                 key_file: Path | None = None, threads: int | None = None,
                 memory_limit: str | None = None, create_key: bool = True) -> None:
        self.path = str(path)
        #: False: never write a key file; without a configured key, use one that lives in memory
        self.create_key = create_key
        self.lock_timeout = lock_timeout
        self.key_file = key_file
        self.threads = threads
        # DuckDB takes 80% of RAM by default and grows with the data; crmtool caps it (so a run
        # stays within about 2 GiB at any size, spilling to the sandbox's temporary folder), and
        # CRMTOOL_MEMORY_LIMIT (e.g. "4GB", or "off" for DuckDB's own default) replaces the cap
        chosen = memory_limit or os.environ.get("CRMTOOL_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
        self.memory_limit = None if chosen.strip().lower() in ("off", "none", "default") else chosen
        self._sandbox: Path | None = None
        self._lock: Any = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._hasher: KeyedHasher | None = None
        # set by the pipeline while it runs its steps: each step's run points to the pipeline run
        self.parent_run_id: str | None = None
        #: the runs this session started, oldest first (the CLI names the last in its end line)
        self.started_runs: list[str] = []
        self._umask: int | None = None

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    @property
    def folder(self) -> Path:
        """Where files that belong to the workspace live (key file, lock)."""
        return Path.cwd() if self.in_memory else Path(self.path).resolve().parent

    @property
    def default_key_file(self) -> Path:
        stem = "crmtool" if self.in_memory else Path(self.path).stem
        return self.folder / f"{stem}.key"

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("workspace is not open")
        return self._con

    def open(self) -> Workspace:
        import duckdb

        if not self.in_memory:
            from filelock import FileLock, Timeout  # a one-shot :memory: run has nothing to lock

            db = Path(self.path)
            if db.exists() and db.is_dir():
                raise InputError(f"workspace {db} is a folder", "give --workspace a file path such as crm.duckdb")
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"workspace {db}: cannot create its folder ({exc.strerror})",
                                 "give --workspace a path in a writable folder") from None
            self._lock = FileLock(str(db) + ".lock")
            try:
                self._lock.acquire(timeout=self.lock_timeout)
            except Timeout:
                raise WorkspaceBusy(
                    f"workspace {db} is in use by another crmtool run (waited {self.lock_timeout:g} s)",
                    "raise --lock-timeout, or schedule the runs apart",
                ) from None
        if not self.in_memory:
            # personal data at rest: the database, its write-ahead log and every file made while it is
            # open (spill files, outputs) are owner-only, like the key
            from crmtool.io.writers import remember_user_umask

            self._umask = os.umask(0o077)
            remember_user_umask(self._umask)
            for f in (Path(self.path), Path(self.path + ".wal")):
                if f.exists():
                    f.chmod(0o600)
        try:
            self._con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            self.close()
            raise InputError(f"cannot open workspace {self.path}: {str(exc).splitlines()[0]}",
                             "is it a DuckDB database file of a compatible version?") from None
        if self.threads:
            self._con.execute(f"SET threads = {int(self.threads)}")
        self._sandbox = self._make_sandbox()
        spill = self._sandbox / "spill"
        self._con.execute(f"SET temp_directory = {sql_str(str(spill))}")
        if self.memory_limit:
            try:
                self._con.execute(f"SET memory_limit = {sql_str(self.memory_limit)}")
            except duckdb.Error:
                self.close()
                raise UsageError(f"CRMTOOL_MEMORY_LIMIT={self.memory_limit!r} is not a memory size",
                                 "use a value such as 1.5GB or 800MB") from None
            self._con.execute("SET preserve_insertion_order = true")
            for name, value in ALLOCATOR_SETTINGS.items():
                self._con.execute(f"SET {name} = {sql_str(value)}")
        try:
            self._con.execute(_SCHEMA)
            migrate(self._con, self.path)
        except BaseException:
            self.close()
            raise
        self._wall()
        return self

    def _make_sandbox(self) -> Path:
        """The session's only readable and writable folder (see :mod:`crmtool.io.gate`): beside a
        workspace file (same file system as its data, so inputs are hard-linked, not copied), in
        the system's temp folder for ``:memory:``. Leftovers of a killed run are removed first:
        the workspace lock is held, so no other run uses them."""
        import shutil

        from crmtool.io.gate import SANDBOX_MARK

        if self.in_memory:
            return temp_sandbox()
        folder, stem = self.folder, Path(self.path).name
        for stale in folder.glob(f".{stem}{SANDBOX_MARK}*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            return Path(tempfile.mkdtemp(prefix=f".{stem}{SANDBOX_MARK}", dir=folder))
        except OSError:  # a read-only folder beside the workspace: the temp folder will do
            return temp_sandbox()

    def _wall(self) -> None:
        """Second wall behind :mod:`crmtool.usersql`: from here on the session reaches no file
        but those crmtool puts in its sandbox (not the key file, not the inputs' folders), loads no
        extension, and its settings cannot change (``docs/decisions/0007-user-sql-sandbox.md``)."""
        assert self._con is not None and self._sandbox is not None
        self._con.execute(f"SET allowed_directories = [{sql_str(str(self._sandbox) + os.sep)}]")
        self._con.execute("SET autoinstall_known_extensions = false")
        self._con.execute("SET autoload_known_extensions = false")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._umask is not None:
            from crmtool.io.writers import remember_user_umask

            os.umask(self._umask)
            remember_user_umask(None)
            self._umask = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._sandbox is not None:
            import shutil

            shutil.rmtree(self._sandbox, ignore_errors=True)
            self._sandbox = None

    def __enter__(self) -> Workspace:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def hasher(self) -> KeyedHasher:
        """The keyed-hash key, loaded (or created beside the workspace) on first use."""
        if self._hasher is None:
            from crmtool.keys import load_key

            self._hasher = load_key(self.key_file, self.default_key_file, create=self.create_key)
            self._hasher.register_sql(self.con)
        return self._hasher

    def start_run(self, command: str) -> Run:
        from crmtool.io.stage import sweep_scratch

        # personal data in transit that a killed run could not remove (Spark's staged input)
        sweep_scratch()
        run = Run(new_run_id(), command, datetime.now(UTC))
        self.started_runs.append(run.run_id)
        self.con.execute(
            "INSERT INTO crm_runs (run_id, command, started_at, tool_version, parent_run_id) VALUES (?, ?, ?, ?, ?)",
            [run.run_id, command, run.started_at.replace(tzinfo=None), __version__, self.parent_run_id],
        )
        return run

    def finish_run(self, run: Run, status: Status | str, exit_code: int, summary: dict[str, Any]) -> None:
        """Record the end of a run: its row, the metrics and outputs its step gathered (see crmtool.steps)."""
        from crmtool.steps import record

        record(self, run, status, exit_code, summary)

    def register_output(self, run: Run, kind: str, path: Path, rows: int | None = None, *,
                        sha256: str | None = None) -> None:
        """Record that ``run`` wrote ``path`` (a file of ``kind``: clean, rejects, golden, ...).

        Later commands (erasure, retention, diff, the pipeline) find the files a run wrote here,
        never by guessing from file names; the hash tells whether the file is still crmtool's.
        ``sha256`` skips hashing the file again when the caller has just hashed it.
        """
        from crmtool.io.readers import file_sha256

        target = path.resolve()
        self.con.execute(
            "INSERT INTO crm_outputs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, run.command, kind, str(target), sha256 or file_sha256(target), rows,
             datetime.now(UTC).replace(tzinfo=None)],
        )

    def outputs(self, *, kinds: tuple[str, ...] | None = None) -> list[OutputRecord]:
        """Every registered output, newest registration of each path last (in run order)."""
        sql = "SELECT run_id, command, kind, path, sha256, rows FROM crm_outputs"
        params: list[Any] = []
        if kinds:
            sql += f" WHERE kind IN ({', '.join('?' for _ in kinds)})"
            params = list(kinds)
        rows = self.con.execute(sql + " ORDER BY written_at, run_id, path", params).fetchall()
        return [OutputRecord(r[0], r[1], r[2], Path(r[3]), r[4], r[5]) for r in rows]

    def table_exists(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0]
        return bool(row and row[0])



@contextmanager
def open_workspace(path: str | Path = DEFAULT_WORKSPACE, **kwargs: Any) -> Iterator[Workspace]:
    """``with open_workspace(path) as ws:`` — locked, schema ensured, closed on exit."""
    ws = Workspace(path, **kwargs)
    ws.open()
    try:
        yield ws
    finally:
        ws.close()


def dataset_name(path: Path) -> str:
    """A safe table-name stem from a file name: ``Clientes 2024.csv`` -> ``clientes_2024``."""
    import re

    stem = path.name.split(".")[0]
    name = re.sub(r"[^0-9a-zA-Z]+", "_", stem).strip("_").lower()
    return name or "data"
