"""Writing one run into the workspace's audit log, under its lock, all or nothing.

A run's chain records are kept in memory (they are few: a header, events, a seal) and its bulk
entries go straight from DuckDB into Parquet change sets. :meth:`AuditWriter.seal` appends the
run's records to ``chain.jsonl`` with one write, syncs it, then replaces ``HEAD``. A run killed
before that leaves change sets and a ``pending`` note but no record; a run killed during the
append leaves a chain longer than ``HEAD`` says. The next writer, under the lock, keeps what is
complete and sealed, cuts back the rest, removes the unsealed change sets and records an
``aborted`` event for each such run (:func:`recover`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.audit.format import (
    CHAIN,
    FORMAT,
    GENESIS,
    HEAD,
    LOCK,
    PENDING,
    RESERVED,
    SETS,
    TOKEN_PREFIX,
    FormatProblem,
    decode,
    encode,
    head_mac,
    read_head,
    seal_mac,
    set_path,
)
from crmtool.errors import InputError, UsageError, WorkspaceBusy
from crmtool.sqltext import sql_list, sql_str

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    import duckdb
    import pyarrow as pa

    from crmtool.keys import KeyedHasher
    from crmtool.workspace import Workspace

#: test-only: pause (sleep) at a named point of the write so a test can kill the process there
PAUSE_ENV = "CRMTOOL_TEST_AUDIT_PAUSE"
#: rows per Parquet row group of a change set: a record look-up reads one group per part it opens
#: (8,192: 1.2 CPU-s for a look-up over 365 parts of 375k rows, against 2.9 s with 65,536)
ROW_GROUP = 8192
#: a rule with fewer rows than this in a run has them in the run's ``<kind>.rare`` part
RARE_ROWS = 8192
#: the rare part lists its record prefixes in the seal up to this many rows
RARE_PREFIXES = 4096


def _sql_list(values: list[str]) -> str:
    return sql_list(values)


def _where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _unparted(query: str) -> str:
    """A ``{part}``/``{last}`` query over all record hashes (the rare part takes every digit)."""
    return query.replace("{part}", "BETWEEN '0' AND 'f'").replace("{last}", "true") if "{part}" in query else query


def log_dir(ws: Workspace, out_dir: Path | None = None, override: Path | None = None) -> Path:
    """Where a run on ``ws`` writes its audit log.

    ``--audit-log`` (``override``) names the log folder; otherwise a file workspace has one log
    beside it (``<stem>.audit/``) and a ``:memory:`` workspace, which outlives no run, writes to
    ``<out>/crmtool.audit/`` (the current folder without ``out_dir``).
    """
    if override is not None:
        return override.parent if override.name == CHAIN else override
    if ws.in_memory:
        return (out_dir if out_dir is not None else Path.cwd()) / "crmtool.audit"
    db = Path(ws.path)
    return db.with_name(f"{db.stem}.audit")


def _pause(point: str, log: Path) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        (log / f"paused-{point}").write_text(str(os.getpid()), encoding="utf-8")
        while True:  # the test kills us here
            time.sleep(0.05)


@contextlib.contextmanager
def _log_errors(path: Path) -> Iterator[None]:
    """A log that cannot be read, created or written stops the run with a message, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise UsageError(f"cannot write the audit log {path} ({exc.strerror or exc})",
                         "give --audit-log a writable folder on a disk with room") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _sync_and_hash(path: Path) -> str:
    """fsync a written change set file and return its SHA-256 (read back from the page cache)."""
    from crmtool.io.readers import file_sha256

    with path.open("rb") as fh:
        os.fsync(fh.fileno())
    return file_sha256(path)


def write_head(log: Path, key: bytes, run: str, seq: int, digest: str, size: int) -> None:
    head: dict[str, Any] = {"format": FORMAT, "run": run, "seq": seq, "hash": digest, "size": size}
    head["mac"] = head_mac(key, head)
    _write_atomic(log / HEAD, json.dumps(head, sort_keys=True) + "\n")


def _sealed_tail(data: bytes, prev: str, seq: int, key: bytes) -> tuple[int, str, int, str, str | None]:
    """Walk chain bytes written after ``HEAD``: ``(bytes kept, prev, seq, last sealed run, partial run)``.

    Keeps every complete run whose seal checks with the key; what follows must be one unfinished
    run (lines that link, the last one maybe cut off), else the log was changed by someone else.
    """
    kept, pos, run_open, last_run = 0, 0, None, ""
    kept_prev, kept_seq = prev, seq
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:  # a line cut off by the crash
            break
        try:
            body, digest, mac = decode(data[pos:end + 1].decode("utf-8"))
        except (FormatProblem, UnicodeDecodeError) as exc:
            raise InputError(f"audit log: a record after the last seal is damaged ({exc})",
                             "run 'crmtool audit verify' on the log") from None
        if body.get("prev") != prev or body.get("seq") != seq + 1:
            raise InputError("audit log: the records after the last seal do not continue its chain",
                             "run 'crmtool audit verify' on the log")
        prev, seq, pos = digest, seq + 1, end + 1
        run_open = str(body.get("run"))
        if body.get("type") == "seal":
            if mac != seal_mac(key, digest):
                raise InputError(f"audit log: the seal of run {run_open} after HEAD does not match the key",
                                 "run 'crmtool audit verify' on the log")
            kept, kept_prev, kept_seq, last_run, run_open = pos, prev, seq, run_open, None
    if pos < len(data) and run_open is None:
        run_open = "(unknown)"
    return kept, kept_prev, kept_seq, last_run, run_open


def recover(log: Path, hasher: KeyedHasher, own_run: str) -> tuple[str, int, list[dict[str, Any]]]:
    """Bring the log back to its last complete seal; ``(prev, seq, aborted events)``. Under the lock."""
    chain = log / CHAIN
    head = read_head(log)
    size = chain.stat().st_size if chain.exists() else 0
    if head is not None and ("broken" in head or head.get("mac") != head_mac(hasher.key, head)):
        raise InputError(f"audit log {log}: HEAD is damaged or was written with another key",
                         "run 'crmtool audit verify' on the log; use the workspace's key")
    base = int(head["size"]) if head else 0
    prev, seq = (str(head["hash"]), int(head["seq"])) if head else (GENESIS, 0)
    if size < base:
        raise InputError(f"audit log {log}: chain.jsonl is shorter than HEAD says (cut back?)",
                         "run 'crmtool audit verify' on the log")
    events: list[dict[str, Any]] = []
    last_run = str(head["run"]) if head else ""
    if size > base:
        with chain.open("rb") as fh:
            fh.seek(base)
            data = fh.read()
        kept, prev, seq, sealed_run, partial = _sealed_tail(data, prev, seq, hasher.key)
        if kept:
            last_run = sealed_run
        if kept < len(data):
            os.truncate(chain, base + kept)
            events.append({"type": "aborted", "aborted_run": partial,
                           "left": "unsealed records cut from the chain"})
        if kept:
            write_head(log, hasher.key, last_run, seq, prev, base + kept)
    for marker in sorted((log / PENDING).glob("*.json")):
        run = marker.stem
        if run == own_run:
            continue
        if run == last_run:  # sealed; only the note was left behind
            marker.unlink(missing_ok=True)
            continue
        try:
            note = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            note = {}
        removed = sorted(p.name for p in (log / SETS).glob(f"{run}.*"))
        for name in removed:
            (log / SETS / name).unlink(missing_ok=True)
        known = next((e for e in events if e["aborted_run"] == run), None)
        event = known or {"type": "aborted", "aborted_run": run, "left": "nothing in the chain"}
        event.update({"command": note.get("command"), "started_at": note.get("started_at"),
                      "removed_sets": removed})
        if known is None:
            events.append(event)
    return prev, seq, events


class AuditWriter:
    """One run's entries: :meth:`add` (an event), :meth:`add_set` (bulk, from a DuckDB query),
    then :meth:`seal` (or :meth:`abort`). Opening takes the log's lock and repairs an earlier
    crash; the lock is held until the run is sealed or aborted.
    """

    def __init__(self, log: Path, run_id: str, hasher: KeyedHasher, *, command: str = "",
                 lock_timeout: float = 60.0, defer: bool = False) -> None:
        self.log, self.run_id, self._key = log, run_id, hasher.key
        self.count = 0
        self.head = ""
        #: events, and lists of prepared record texts from :meth:`add_table`
        self._records: list[Any] = []
        self._sets: list[dict[str, Any]] = []
        #: each written part's fsync and SHA-256, run on a helper thread while the next part is
        #: written (:meth:`add_set` waits for them all before it returns)
        self._syncs: list[tuple[Future[str], dict[str, Any]]] = []
        self.ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.aborted: list[dict[str, Any]] = []
        self._hasher, self._command, self._lock_timeout = hasher, command, lock_timeout
        self._lock: Any = None
        self._opened = False
        if not defer:
            self._open()

    def _open(self) -> None:
        """Take the lock, repair an earlier crash, write the pending note. With ``defer``, done
        only when the run has something to write (its first change set, or its seal): a run that
        fails before leaves the log as it was."""
        from filelock import FileLock, Timeout

        if self._opened:
            return
        log, run_id, lock_timeout = self.log, self.run_id, self._lock_timeout
        self._created = not log.exists()
        with _log_errors(log):
            if log.exists() and not log.is_dir():
                raise UsageError(f"the audit log {log} is a file; since 0.2 a log is a folder",
                                 "give --audit-log a folder (the old JSON Lines log stays readable as is)")
            for sub in (log / SETS, log / PENDING):
                sub.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(log / LOCK))
        try:
            self._lock.acquire(timeout=lock_timeout)
        except Timeout:
            raise WorkspaceBusy(f"audit log {log} is being written by another crmtool run "
                                f"(waited {lock_timeout:g} s)", "schedule the runs apart") from None
        try:
            with _log_errors(log):
                self._prev, self._seq, self.aborted = recover(log, self._hasher, run_id)
                self._marker = log / PENDING / f"{run_id}.json"
                _write_atomic(self._marker, json.dumps({"run": run_id, "command": self._command,
                                                        "started_at": self.ts}) + "\n")
        except BaseException:
            self._lock.release()
            if self._created:
                import shutil

                shutil.rmtree(log, ignore_errors=True)
            raise
        self._opened = True
        _pause("opened", log)

    def add(self, entry: dict[str, Any]) -> None:
        """One event (``run``, ``seq``, ``ts``, ``prev`` and the hashes are filled in at the seal)."""
        self._records.append({k: v for k, v in entry.items() if k not in RESERVED})
        self.count += 1

    def add_set(self, con: duckdb.DuckDBPyConnection, kind: str, query: str, order_by: str = "record",
                parts: int = 1, rule_counts: dict[str, int] | None = None, columns: str = "*") -> int:
        """Write the rows of ``query`` (sorted by ``order_by``) as this run's ``kind`` change set.

        Parquet, dictionary-encoded and zstd-compressed, listed with its SHA-256 and row count in
        the seal. ``parts`` > 1 (1, 2, 4, 8 or 16) splits it by the first hex digit of ``record``
        (a keyed hash, so evenly): each part is sorted alone, which bounds the memory of the sort,
        and a look-up of one record opens one part per run. A query with ``{part}`` and
        ``{last}`` in it picks each part's rows itself (see
        :func:`crmtool.clean_audit.write_change_set`), else its rows are filtered on ``record``.
        Returns the number of rows.

        ``rule_counts`` (rows per value of the ``rule`` column) indexes the set by rule: the rows of
        rules with fewer than :data:`RARE_ROWS` rows go to one more part, ``<kind>.rare``, sorted by
        rule then ``order_by``, so a look-up by rule reads the row groups of that rule there (row
        group min/max) and no other file; every part's seal entry lists its ``rules``, and the rare
        part the 4-hex prefixes of its records (``record_prefixes``, when small) so a look-up by
        record opens it only when it can hold the record. The index is in the seal: covered by
        its hash and keyed mac like every other member.

        ``columns`` (default all) are the columns written: ``order_by`` may sort on others.
        """
        self._open()
        if any(s["kind"] == kind for s in self._sets):
            raise ValueError(f"change set {kind} written twice in one run")
        if parts not in (1, 2, 4, 8, 16):
            raise ValueError("parts must be 1, 2, 4, 8 or 16")
        from concurrent.futures import ThreadPoolExecutor

        # one helper thread syncs and hashes each part while the next is written (the disk's
        # writeback leaves the change set's critical path); all are done before we return, so
        # the seal still names only parts that are on disk
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmtool-audit-sync") as pool:
            total = self._write_parts(con, kind, query, order_by, parts, rule_counts, columns, pool)
        self._finish_syncs()  # (on a failure the pool is still waited for: no sync outlives the run)
        self.count += total
        _pause(f"set-{kind}", self.log)
        return total

    def _write_parts(self, con: duckdb.DuckDBPyConnection, kind: str, query: str, order_by: str, parts: int,
                     rule_counts: dict[str, int] | None, columns: str, pool: Executor) -> int:
        """The parts of :meth:`add_set` (and its rare part); each part's sync and hash go to ``pool``."""
        rare = sorted(r for r, n in (rule_counts or {}).items() if 0 < n < RARE_ROWS)
        not_rare = f"(rule IS NULL OR rule NOT IN ({_sql_list(rare)}))" if rare else ""
        total = 0
        digits = "0123456789abcdef"
        for part in range(parts):
            first, last = digits[16 * part // parts], digits[16 * (part + 1) // parts - 1]
            where, part_query = [], query
            if parts > 1 and "{part}" in query:
                # the query filters its own source (before its joins) on the first hex digit of
                # the record hash: {part} -> "BETWEEN 'x' AND 'y'", {last} -> true in the last part
                part_query = query.replace("{part}", f"BETWEEN '{first}' AND '{last}'").replace(
                    "{last}", "true" if part == parts - 1 else "false")
            elif parts > 1:
                where.append(f"(substr(record, 3, 1) BETWEEN '{first}' AND '{last}'"
                             + (" OR record IS NULL)" if part == parts - 1 else ")"))
            if not_rare:
                where.append(not_rare)
            name = kind if parts == 1 else f"{kind}.{part}"
            extra: dict[str, Any] = {"records": [first, last]} if parts > 1 else {}
            total += self._part(con, kind, name, f"SELECT {columns} FROM ({_unparted(part_query)}){_where(where)} "
                                                 f"ORDER BY {order_by}", extra, pool, index=rule_counts is not None)
        if rare:
            query_all = _unparted(query)
            sql = f"SELECT {columns} FROM ({query_all}) WHERE rule IN ({_sql_list(rare)}) ORDER BY rule, {order_by}"
            total += self._part(con, kind, f"{kind}.rare", sql, {"rare": True}, pool, index=True, records=True)
        return total

    def _part(self, con: duckdb.DuckDBPyConnection, kind: str, name: str, query: str, extra: dict[str, Any],
              pool: Executor, *, index: bool = False, records: bool = False) -> int:
        """Write one part; its sync, hash and (with ``index``/``records``) its index entries are read
        back on ``pool`` while the next part is written: the index's reads left the job's path."""
        rows = self._copy(con, name, query)
        target = set_path(self.log, self.run_id, name)
        entry: dict[str, Any] = {"kind": kind, "file": f"{SETS}/{target.name}", "rows": rows, **extra, "sha256": ""}
        self._sets.append(entry)
        self._syncs.append((pool.submit(self._finish_part, target, entry, index, records), entry))
        return rows

    def _finish_part(self, target: Path, entry: dict[str, Any], index: bool, records: bool) -> str:
        """On the sync thread: fsync and SHA-256 of a written part, then its index entries (``rules``,
        and ``record_prefixes`` for the rare part) read back from the file."""
        digest = _sync_and_hash(target)
        if index:
            self._index_rules(entry)
        if records:
            self._index_records(entry)
        return digest

    def _finish_syncs(self) -> None:
        """Wait for every part's fsync and SHA-256 (a failed sync stops the run like a failed write)."""
        syncs, self._syncs = self._syncs, []
        for future, entry in syncs:
            with _log_errors(self.log / entry["file"]):
                entry["sha256"] = future.result()

    def _index_rules(self, entry: dict[str, Any]) -> None:
        """The rules a written part holds, read back from the file itself (so the index is exact;
        read with Arrow: the workspace session may not read the log)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        with _log_errors(self.log / entry["file"]):
            # read as a dictionary column: its unique values come from the indices (~0.01 s, not 0.3)
            column = pq.read_table(self.log / entry["file"], columns=["rule"], read_dictionary=["rule"])["rule"]
        entry["rules"] = sorted(v for v in pc.unique(column).to_pylist() if v is not None)

    def _index_records(self, entry: dict[str, Any]) -> None:
        """The rare part's record prefixes (4 hex digits after ``k:``), when there are few rows."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if entry["rows"] > RARE_PREFIXES:
            return
        with _log_errors(self.log / entry["file"]):
            column = pq.read_table(self.log / entry["file"], columns=["record"])["record"]
        prefixes = pc.unique(pc.utf8_slice_codeunits(column, len(TOKEN_PREFIX), len(TOKEN_PREFIX) + 4))
        entry["record_prefixes"] = sorted(v for v in prefixes.to_pylist() if v is not None)

    def _copy(self, con: duckdb.DuckDBPyConnection, name: str, query: str) -> int:
        from crmtool.io.gate import writable

        target = set_path(self.log, self.run_id, name)
        tmp = target.with_name(target.name + ".tmp")
        import duckdb

        with _log_errors(target):
            try:
                options = f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP}"
                # a workspace session writes only in its sandbox; the set is moved to tmp after
                with writable(con, tmp) as staged:
                    rows = con.execute(f"COPY ({query}) TO {sql_str(staged)} ({options})").fetchall()[0][0]
            except duckdb.IOException as exc:  # a full or read-only disk, said by DuckDB
                tmp.unlink(missing_ok=True)
                raise UsageError(f"cannot write the audit log {target} ({str(exc).splitlines()[0]})",
                                 "give --audit-log a writable folder on a disk with room") from None
            os.replace(tmp, target)  # synced and hashed by _sync_and_hash, before add_set returns
        return int(rows)

    def _lines(self, summary: dict[str, Any]) -> tuple[list[str], str, int]:
        records = list(self._records)
        first = records[0] if records and isinstance(records[0], dict) else {}
        header = records.pop(0) if first.get("type") == "run" else {"type": "run"}
        seal = {"type": "seal", "records": 0, "sets": self._sets, **summary}
        body = [header, *self.aborted, *records, seal]
        seal["records"] = len(body) + sum(len(r) - 1 for r in body if isinstance(r, list))
        prev, seq, lines = self._prev, self._seq, []
        for record in body:
            if isinstance(record, list):  # add_table's rows: each record's text around its prev and seq
                for before_prev, before_seq, rest in record:
                    seq += 1
                    text = f"{before_prev}{prev}{before_seq}{seq}{rest}"
                    prev = hashlib.sha256(text.encode("utf-8")).hexdigest()
                    lines.append(f'{text[:-1]},"hash":"{prev}"}}\n')  # encode()'s line (no seal here)
                continue
            seq += 1
            line, prev = encode({**record, "seq": seq, "run": self.run_id, "ts": self.ts, "prev": prev}, self._key)
            lines.append(line)
        return lines, prev, seq

    def seal(self, summary: dict[str, Any] | None = None) -> str:
        """Append the run to the chain in one write, sync, move ``HEAD``; returns the seal's hash."""
        self._open()
        lines, head, seq = self._lines(summary or {})
        data = "".join(lines).encode("utf-8")
        chain = self.log / CHAIN
        with _log_errors(chain):
            _pause("before-chain", self.log)
            fd = os.open(chain, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                half = len(data) // 2 if os.environ.get(PAUSE_ENV) == "mid-chain" else len(data)
                os.write(fd, data[:half])
                _pause("mid-chain", self.log)
                view = memoryview(data)[half:]
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            _pause("before-head", self.log)
            write_head(self.log, self._key, self.run_id, seq, head, size)
            _pause("after-head", self.log)
            for event in self.aborted:
                (self.log / PENDING / f"{event['aborted_run']}.json").unlink(missing_ok=True)
            self._marker.unlink(missing_ok=True)
        self.count = len(lines) + sum(s["rows"] for s in self._sets)
        self.head = head
        self._release()
        return head

    def abort(self) -> None:
        """Take back the run: remove its change sets and its note; nothing of it stays in the log.

        The aborted events found on opening stay pending for the next run to record.
        """
        if not self._opened:  # deferred and never opened: the log was not touched
            self._records.clear()
            return
        for entry in self._sets:
            (self.log / entry["file"]).unlink(missing_ok=True)
        for tmp in (self.log / SETS).glob(f"{self.run_id}.*.tmp"):
            tmp.unlink(missing_ok=True)
        self._sets.clear()
        self._syncs.clear()
        self._records.clear()
        self._marker.unlink(missing_ok=True)
        self._release()
        if self._created and not (self.log / CHAIN).exists() and not self.aborted:
            import shutil  # the run made the log folder and leaves nothing in it

            shutil.rmtree(self.log, ignore_errors=True)

    def _release(self) -> None:
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()

    def add_table(self, entries: pa.Table) -> int:
        """Many events at once, one per row of ``entries`` in row order (its columns are the members;
        a null is JSON ``null``); returns the number of rows.

        The chain gets the same lines as :meth:`add` of each row as a dict, but each record's text
        is prepared here column by column (each distinct value JSON-encoded once) and the seal only
        puts in its ``prev`` and ``seq`` and hashes it: no dict and no JSON encoding per event
        (an erasure's ~95k ``erasure_linked`` entries at 1M rows).
        """
        from json.encoder import encode_basestring  # what canonical()'s json.dumps uses for a str

        import pyarrow as pa
        import pyarrow.compute as pc

        from crmtool.audit.format import canonical

        def texts(column: pa.ChunkedArray) -> pa.Array:
            coded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")  # null: a value too
            out = [encode_basestring(v) if isinstance(v, str) else canonical(v) for v in coded.dictionary.to_pylist()]
            return pa.array(out, pa.string()).take(coded.indices)

        fixed = {"run": encode_basestring(self.run_id), "ts": encode_basestring(self.ts)}
        names = sorted({*(n for n in entries.column_names if n not in RESERVED), "prev", "run", "seq", "ts"})
        parts: list[list[Any]] = [[]]  # the text before prev, between prev and seq, after seq
        for i, name in enumerate(names):
            head = ("{" if i == 0 else ",") + encode_basestring(name) + ":"
            if name == "prev":
                parts[-1].append(head + '"')
                parts.append(['"'])
            elif name == "seq":
                parts[-1].append(head)
                parts.append([])
            elif name in fixed:
                parts[-1].append(head + fixed[name])
            else:
                parts[-1] += [head, texts(entries.column(name))]
        parts[-1].append("}")
        n = int(entries.num_rows)
        cols = [pc.binary_join_element_wise(*[pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in ps],
                                            "").to_pylist()
                if any(not isinstance(p, str) for p in ps) else ["".join(ps)] * n for ps in parts]
        self._records.append(list(zip(*cols, strict=True)))
        self.count += n
        return n
