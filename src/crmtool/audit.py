"""Append-only, hash-chained audit log (JSON Lines), written in bulk from SQL.

Every line is a JSON object that ends with two members the writer adds::

    {<entry members>,"hash":"<H>","prev":"<P>"}

``H`` is the SHA-256 of the entry's own text without those two members (the *body*, i.e. the
line up to ``,"hash"`` followed by ``}``); ``P`` is the ``hash`` of the line before (64 zeros
for the first line of a log). So an edited line is named by its own hash, and a removed,
inserted or moved line breaks the ``prev`` link where it happened. Each run ends with a
``seal`` entry that counts the run's entries and carries ``digest``, the SHA-256 over the
hashes of all the run's lines (in blocks of 65,536: SHA-256 of the concatenated block digests),
so a forger who re-hashes an edited line and patches the next ``prev`` still breaks the seal.
The log's *head* is the seal's ``hash``; the manifest records it, so a log cut after a seal is
caught when checked against the manifest (``crmtool audit verify --manifest``).

Bulk entries are built in DuckDB from narrow sorted rows and hashed, chained and appended by
background threads (:class:`_LineSink`; docs/decisions/0005), which keeps millions of change
entries within seconds.

Personal data never appears in clear: record keys and personal-data values are keyed hashes
(see :mod:`crmtool.keys`) written as ``"k:<hex>"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import InputError, UsageError
from crmtool.io.appender import DirectAppender

if TYPE_CHECKING:
    import duckdb

GENESIS = "0" * 64
TOKEN_PREFIX = "k:"
BLOCK = 65536
#: rows per Arrow batch of bulk entries, and bytes written between two syncs of the log
BATCH_ROWS = 1 << 13
#: body batches waiting to be hashed: lets DuckDB run the next query while the log is written
HASH_QUEUE = 64
SYNC_BYTES = 256 << 20
#: seconds a thread may hold the GIL while another waits, while bulk entries are written
SWITCH_INTERVAL = 0.0005
_TAIL = re.compile(r',"hash":"([0-9a-f]{64})","prev":"([0-9a-f]{64})"\}$')
_TAIL_LEN = len(',"hash":"","prev":""}') + 128

def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def split_line(line: str) -> tuple[str, str, str] | None:
    """``(body, hash, prev)`` of a line in the form crmtool writes, else None."""
    match = _TAIL.search(line)
    if match is None or len(line) < _TAIL_LEN + 2:
        return None
    return line[: -_TAIL_LEN] + "}", match.group(1), match.group(2)


def _members(entry: dict[str, Any]) -> str:
    """JSON members of an entry without braces, keys sorted."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)[1:-1]


def _last_line(path: Path) -> str | None:
    """The last non-empty line of a file, read from the end."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        block = b""
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            block = fh.read(step) + block
            stripped = block.rstrip(b"\n")
            if b"\n" in stripped:
                return stripped.rsplit(b"\n", 1)[1].decode("utf-8")
        return block.rstrip(b"\n").decode("utf-8") or None


class _Digest:
    """SHA-256 over line hashes in blocks of :data:`BLOCK` (the seal's ``digest``)."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.current = hashlib.sha256()
        self.in_block = 0

    def add(self, line_hash_hex: str) -> None:
        self.current.update(line_hash_hex.encode("ascii"))
        self.in_block += 1
        if self.in_block == BLOCK:
            self.blocks.append(self.current.hexdigest())
            self.current, self.in_block = hashlib.sha256(), 0

    def add_bytes(self, data: bytes | memoryview, count: int) -> None:
        """``count`` 64-character hex hashes stored back to back in ``data``."""
        width = 64
        i = 0
        while i < count:
            take = min(count - i, BLOCK - self.in_block)
            self.current.update(data[i * width:(i + take) * width])
            self.in_block += take
            i += take
            if self.in_block == BLOCK:
                self.blocks.append(self.current.hexdigest())
                self.current, self.in_block = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        blocks = self.blocks + ([self.current.hexdigest()] if self.in_block else [])
        return hashlib.sha256("".join(blocks).encode("ascii")).hexdigest()


@contextlib.contextmanager
def _log_errors(path: Path) -> Iterator[None]:
    """A log that cannot be read, created or written (a folder, no permission, a full disk)
    stops the run with a message naming it, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise UsageError(f"cannot write the audit log {path} ({exc.strerror or exc})",
                         "give --audit-log a writable file, not a folder, on a disk with room") from None


class _Stage:
    """One worker thread fed through a bounded queue; its first failure is kept for the caller."""

    def __init__(self, name: str, work: Callable[[Any], None], depth: int) -> None:
        self._work = work
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # keep draining so the producer never blocks
            try:
                self._work(item)
            except BaseException as exc:  # raised again by the caller
                self.error = exc

    def put(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def offer(self, item: Any) -> None:
        """Queue ``item`` unless the queue is full (the work asked for is already pending)."""
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(item)

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join()


_SWITCH_LOCK = threading.Lock()
_open_sinks = [0, 0.0]  # sinks running; the interpreter's switch interval before the first opened


def _switch_interval(change: int) -> None:
    """Short GIL hand-overs while any sink runs; the interpreter's own setting back after the last."""
    with _SWITCH_LOCK:
        if _open_sinks[0] == 0 and change > 0:
            _open_sinks[1] = sys.getswitchinterval()
            sys.setswitchinterval(min(_open_sinks[1], SWITCH_INTERVAL))
        _open_sinks[0] += change
        if _open_sinks[0] == 0:
            sys.setswitchinterval(_open_sinks[1])


class _LineSink:
    """Hashes, chains and appends bulk entries in four threads while DuckDB builds more bodies.

    Each batch is an Arrow array of entry bodies without their closing brace. The *hasher*
    computes SHA-256 of every ``body + "}"`` (:func:`body_hashes`); the *chainer* adds
    ``"hash"`` and ``"prev"`` (the hashes shifted by one line) with Arrow and feeds the seal
    digest; the *writer* appends the lines (:class:`DirectAppender`), and every
    :data:`SYNC_BYTES` asks the *syncer* to flush them to disk, so the disk works while the next
    batches are hashed and the writer never waits for it. Queues are bounded, so only a few
    batches are held in memory.
    """

    def __init__(self, path: Path, prev: str, digest: _Digest) -> None:
        self.prev, self.rows, self._digest, self._unsynced = prev, 0, digest, 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = DirectAppender(path)
        self._stages = [_Stage("crmtool-audit-syncer", self._sync, depth=1),
                        _Stage("crmtool-audit-writer", self._write, depth=2),
                        _Stage("crmtool-audit-chainer", self._chain, depth=2),
                        _Stage("crmtool-audit-hasher", self._hash, depth=HASH_QUEUE)]
        self._syncer, self._writer, self._chainer, self._hasher = self._stages
        # the hasher holds the GIL almost all the time; the other threads need it for a moment
        # per batch, and by default wait up to 5 ms for each hand-over
        _switch_interval(+1)

    def put(self, bodies: Any) -> None:
        for stage in self._stages:
            if stage.error is not None:
                raise stage.error
        self._hasher.put(bodies)

    def _hash(self, bodies: Any) -> None:
        if not len(bodies):
            return
        self._chainer.put((bodies, body_hashes(bodies)))

    def _chain(self, item: tuple[Any, Any]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        bodies, hashes = item
        rows = len(hashes)
        prev = pa.concat_arrays([pa.array([self.prev], pa.string()), hashes.slice(0, rows - 1)])
        self.prev = hashes[rows - 1].as_py()
        self.rows += rows
        self._digest.add_bytes(_text_bytes(hashes), rows)
        lines = pc.binary_join_element_wise(bodies, ',"hash":"', hashes, '","prev":"', prev, '"}\n', "")
        self._writer.put(lines)

    def _write(self, lines: Any) -> None:
        data = _text_bytes(lines)
        self._file.write(data)
        self._unsynced += len(data)
        if self._unsynced >= SYNC_BYTES:
            # a fourth thread starts the disk on what is written so far; the writer goes on
            self._syncer.offer(True)
            self._unsynced = 0

    def _sync(self, _item: object) -> None:
        self._file.sync()

    def close(self, *, failed: bool = False) -> None:
        """Wait for every line to be written and synced; raise a failure of a thread.

        ``failed``: the caller is stopping on an error of its own; drain, close, raise nothing.
        """
        error: BaseException | None = None
        if failed:  # what is still queued is skipped, not written
            for stage in self._stages:
                stage.error = stage.error or RuntimeError("audit entries abandoned")
        for stage in reversed(self._stages):  # hasher, chainer, writer, syncer: each drains into the next
            stage.close()
            error = error or stage.error
        _switch_interval(-1)
        self._file.close(sync=error is None and not failed)
        if error is not None and not failed:
            raise error


class AuditWriter:
    """Appends one run's entries to a log, continuing its chain, and seals the run.

    :meth:`add` takes one entry (a dict); :meth:`add_query` takes a DuckDB query whose rows
    are entry *members* (JSON text without braces) and writes them all in bulk. The file is
    only ever opened for appending.
    """

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.count = 0
        try:
            with _log_errors(path):
                last = _last_line(path)
        except UnicodeDecodeError:
            last = "\ufffd"  # not UTF-8: refused below like any foreign last line
        if last is None:
            self.prev, self.seq = GENESIS, 0
        else:
            parts = split_line(last)
            try:
                self.seq = int(json.loads(last)["seq"])
            except (ValueError, KeyError, TypeError):
                parts = None
            if parts is None:
                raise InputError(f"{path}: last line is not a crmtool audit entry",
                                 "run 'crmtool audit verify' on it, or write to a new log")
            self.prev = parts[1]
        self._buffer: list[str] = []
        self._sink: _LineSink | None = None  # bulk lines still being hashed and written
        self._start_size = path.stat().st_size if path.exists() else None  # for abort()
        self._digest = _Digest()
        self.ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _stamp(self) -> str:
        return f'"run":{json.dumps(self.run_id)},"seq":{self.seq},"ts":"{self.ts}"'

    def add(self, entry: dict[str, Any]) -> None:
        """Append one entry (``run``, ``seq``, ``ts``, ``hash`` and ``prev`` are filled in)."""
        self._settle()
        self.seq += 1
        self.count += 1
        members = _members({k: v for k, v in entry.items() if k not in ("run", "seq", "ts", "hash", "prev")})
        body = "{" + (members + "," if members else "") + self._stamp() + "}"
        h = line_hash(body)
        self._buffer.append(f'{body[:-1]},"hash":"{h}","prev":"{self.prev}"}}')
        self._digest.add(h)
        self.prev = h
        if len(self._buffer) >= 100_000:
            self.flush()

    def add_many(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            self.add(entry)

    def add_query(self, con: duckdb.DuckDBPyConnection, query: str, order_by: str,
                  members: str = "members") -> int:
        """Append one entry per row of ``query``, in ``order_by`` order.

        ``members`` is SQL over the query's columns giving JSON member text without braces, e.g.
        ``'"type":"change","rule":' || to_json(rule)`` (build values with :func:`json_str_sql`); by
        default the query has a ``members`` column. The rows are sorted first and the members built
        afterwards, so a query can hand over narrow columns and the sort never moves long text.
        """
        con.execute(f"CREATE OR REPLACE TEMP TABLE __audit_src AS SELECT * FROM ({query}) ORDER BY {order_by}")
        try:
            return self.add_table(con, "__audit_src", members)
        finally:
            con.execute("DROP TABLE IF EXISTS __audit_src")

    def add_table(self, con: duckdb.DuckDBPyConnection, table: str, members: str = "members") -> int:
        """Append one entry per row of ``table``, in its stored order (see :meth:`add_query`).

        One streaming query builds the bodies in DuckDB, in parallel and in the table's order;
        :class:`_LineSink` hashes, chains and appends them in background threads, which go on
        while the caller runs its next query. :meth:`add`, :meth:`flush` and :meth:`seal` wait
        for them.
        """
        self.flush()
        if self._sink is None:
            with _log_errors(self.path):
                self._sink = _LineSink(self.path, self.prev, self._digest)
        run = json.dumps(self.run_id).replace("'", "''")
        # the body is built without its closing brace ('}' is added for hashing and after prev),
        # with one concat() call: a chain of || copies the growing text at every step
        body = (f"concat('{{', coalesce({members}, error('audit entry without members')), "
                f"',\"run\":{run},\"seq\":', {self.seq} + rowid + 1, ',\"ts\":\"{self.ts}\"')")
        rows = 0
        reader = con.sql(f"SELECT {body} AS b FROM {table}").to_arrow_reader(BATCH_ROWS)
        try:
            with _log_errors(self.path):
                for batch in reader:
                    self._sink.put(batch.column(0))
                    rows += batch.num_rows
        except BaseException:
            self._sink.close(failed=True)
            self._sink = None
            raise
        finally:
            reader.close()  # the connection takes no other query while a result is open
        self.seq += rows
        self.count += rows
        return rows

    def _settle(self) -> None:
        """Wait until the bulk lines are in the log; their last hash is the next ``prev``."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            with _log_errors(self.path):
                sink.close()
            self.prev = sink.prev

    def flush(self) -> None:
        self._settle()
        if not self._buffer:
            return
        with _log_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(self._buffer) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        self._buffer.clear()

    def abort(self) -> None:
        """Take back this run's entries: stop the writer threads and cut the log to its size
        before the run (remove it if the run created it). For a run that fails before its
        outputs land, so that nothing of it stays behind."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close(failed=True)
        self._buffer.clear()
        if self._start_size is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            os.truncate(self.path, self._start_size)

    def seal(self, summary: dict[str, Any] | None = None) -> str:
        """Close the run with a seal entry; returns the head of the log (the seal's hash)."""
        self._settle()
        digest = self._digest.hexdigest()
        self.add({"type": "seal", "entries": self.count + 1, "digest": digest, **(summary or {})})
        self.flush()
        return self.prev


@dataclass
class VerifyResult:
    ok: bool
    lines: int
    runs: int
    head: str
    problem: str = ""
    bad_line: int = 0
    unsealed_runs: list[str] = field(default_factory=list)


def verify_log(path: Path, expected_head: str | None = None) -> VerifyResult:
    """Check hashes, links, sequence numbers and seals; name the first bad line."""
    if not path.is_file():
        raise InputError(f"{path}: no such audit log")
    prev, seq = GENESIS, 0
    run_counts: dict[str, int] = {}
    digests: dict[str, _Digest] = {}
    sealed: set[str] = set()
    runs_in_order: list[str] = []
    n = 0

    def bad(line_no: int, why: str) -> VerifyResult:
        return VerifyResult(False, n, len(runs_in_order), prev, why, line_no)

    run_names: dict[bytes, str] = {}  # run id as written (a JSON string) -> the id
    sha256 = hashlib.sha256
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            # fast path for the millions of ordinary lines: the chain members sit at fixed places
            # at the end of the raw bytes and the stamp just before; anything unexpected takes
            # the full path below, which names the problem
            end = len(raw) - 1 if raw.endswith(b"\n") else len(raw)
            cut = end - 149  # where ',"hash":"' starts, on a well-formed line
            if (cut > 0 and raw[cut:cut + 9] == b',"hash":"' and raw[end - 76:end - 66] == b'","prev":"'
                    and raw[end - 2:end] == b'"}' and b'"type":"seal"' not in raw):
                i = raw.rfind(b',"run":', 0, cut)
                j = raw.find(b',"seq":', i)
                k = raw.find(b',"ts":"', j)
                run_name = run_names.get(raw[i + 7:j]) if 0 <= i < j < k < cut else None
                h = raw[cut + 9:end - 76].decode("ascii", "replace")
                if (run_name is not None and run_name not in sealed and raw[j + 7:k].isdigit()
                        and int(raw[j + 7:k]) == seq + 1 and raw[end - 66:end - 2].decode("ascii", "replace") == prev
                        and sha256(raw[:cut] + b"}").hexdigest() == h):
                    seq += 1
                    run_counts[run_name] += 1
                    digests[run_name].add(h)
                    prev = h
                    continue
            try:
                line = raw.rstrip(b"\n").decode("utf-8")
            except UnicodeDecodeError:
                return bad(n, "not UTF-8 text")
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return bad(n, "not a JSON object")
            if not isinstance(entry, dict):
                return bad(n, "not a JSON object")
            parts = split_line(line)
            if parts is None:
                return bad(n, "line was edited: it is not in the form crmtool writes")
            body, h, link = parts
            if line_hash(body) != h:
                return bad(n, "line was edited: its content does not match its hash")
            if link != prev:
                return bad(n, "chain broken: 'prev' is not the hash of the line before "
                              "(a line was removed, inserted or moved here)")
            if entry.get("seq") != seq + 1:
                return bad(n, f"sequence jumps from {seq} to {entry.get('seq')}")
            seq += 1
            run = str(entry.get("run"))
            if run in sealed:
                return bad(n, f"entry after the seal of run {run}")
            if run not in run_counts:
                runs_in_order.append(run)
                run_counts[run] = 0
                digests[run] = _Digest()
                run_names[json.dumps(run, ensure_ascii=False).encode("utf-8")] = run
            run_counts[run] += 1
            if entry.get("type") == "seal":
                if entry.get("entries") != run_counts[run]:
                    return bad(n, f"seal of run {run} counts {entry.get('entries')} entries, found {run_counts[run]}")
                if entry.get("digest") != digests[run].hexdigest():
                    return bad(n, f"seal of run {run} does not match the run's lines (a line was re-hashed)")
                sealed.add(run)
            else:
                digests[run].add(h)
            prev = h
    unsealed = [r for r in runs_in_order if r not in sealed]
    result = VerifyResult(True, n, len(runs_in_order), prev, unsealed_runs=unsealed)
    if unsealed:
        result.ok, result.problem, result.bad_line = False, f"run {unsealed[-1]} has no seal (log cut short?)", n
    elif expected_head is not None and expected_head != prev:
        result.ok, result.bad_line = False, n
        result.problem = "head hash differs from the one expected (log cut short?)"
    return result


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: no such audit log")
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError and JSONDecodeError
                raise InputError(f"{path}:{n}: not a crmtool audit entry",
                                 "run 'crmtool audit verify' on the log") from None
            if not isinstance(entry, dict):
                raise InputError(f"{path}:{n}: not a crmtool audit entry", "run 'crmtool audit verify' on the log")
            yield entry


def filter_entries(path: Path, *, record_token: str | None = None, run: str | None = None,
                   rule: str | None = None) -> Iterator[dict[str, Any]]:
    """Entries matching every filter given (``record_token`` is the keyed hash of the record key)."""
    for entry in iter_entries(path):
        if record_token is not None and entry.get("record") != TOKEN_PREFIX + record_token:
            continue
        if run is not None and entry.get("run") != run:
            continue
        if rule is not None and entry.get("rule") != rule:
            continue
        yield entry


_plugin_failed: list[BaseException] = []  # polars-hash raised once: hashlib from then on


def body_hashes(bodies: Any) -> Any:
    """Hex SHA-256 of each ``body + "}"`` of an Arrow text array, as an Arrow string array.

    polars-hash hashes a batch in Rust without holding the GIL (1.5x less CPU than one hashlib
    call per line, and the writer threads are not kept waiting); should the plugin not load or
    not work with the installed polars, the same hashes come from hashlib.
    """
    if not _plugin_failed:
        try:
            return _hashes_polars(bodies)
        except Exception as exc:  # an ImportError, or a plugin built for another polars
            _plugin_failed.append(exc)
    return _hashes_hashlib(bodies)


def _hashes_polars(bodies: Any) -> Any:
    import polars as pl
    import polars_hash as plh
    import pyarrow as pa

    lines = pl.DataFrame({"b": pl.Series("b", bodies) + "}"})
    return lines.select(plh.col("b").chash.sha2_256()).to_series().to_arrow().cast(pa.string())


def _hashes_hashlib(bodies: Any) -> Any:
    import pyarrow as pa

    data, offsets = _text_buffer(bodies)
    sha256 = hashlib.sha256
    hashes = []
    for start, end in itertools.pairwise(offsets.tolist()):
        h = sha256(data[start:end])
        h.update(b"}")
        hashes.append(h.hexdigest())
    return pa.array(hashes, pa.string())


def _text_buffer(array: Any) -> tuple[memoryview, Any]:
    """The data buffer of a null-free Arrow text array and its value offsets (a numpy array)."""
    import numpy as np
    import pyarrow as pa

    if array.null_count:
        raise ValueError("audit lines must not be NULL")
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.large_string())  # string views and the like: one contiguous buffer
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)[array.offset:array.offset + len(array) + 1]
    return memoryview(array.buffers()[2]), offsets


def _text_bytes(array: Any) -> memoryview:
    """The UTF-8 bytes of a null-free Arrow text array, concatenated, without a copy."""
    data, offsets = _text_buffer(array)
    return data[int(offsets[0]):int(offsets[-1])]


def json_str_sql(expr: str) -> str:
    """SQL for a JSON value of ``expr`` as text: a JSON string, or ``null``."""
    return f"coalesce(to_json(CAST({expr} AS VARCHAR)), 'null')"
