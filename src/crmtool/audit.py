"""Append-only, hash-chained audit log (JSON Lines).

Each line is one JSON object with sorted keys. Its ``prev`` field is the SHA-256 (hex) of the
previous line's exact bytes (64 zeros for the first line), so editing, removing, inserting or
reordering any line breaks the chain at that point; its ``hash`` field is the SHA-256 of the entry
without ``hash``, so an edited line (the last one too) is named itself, not the line after it.
Every run ends with a ``seal`` entry that counts the run's entries; the head hash (SHA-256 of
the last line) is returned to the caller and recorded in the run's manifest, so a log truncated
after a seal is also caught when checked against a manifest.

Personal data never appears in clear: record keys and personal-data values are keyed hashes
(see :mod:`crmtool.keys`) written as ``"k:<hex>"``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmtool.errors import InputError

GENESIS = "0" * 64
TOKEN_PREFIX = "k:"


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of an entry's canonical form without its own ``hash`` field: an edited line shows itself."""
    return line_hash(_dump({k: v for k, v in entry.items() if k != "hash"}))


def _dump(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _last_line(path: Path) -> str | None:
    """The last non-empty line of a file, read from the end."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        block = b""
        pos = end
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            block = fh.read(step) + block
            stripped = block.rstrip(b"\n")
            if b"\n" in stripped:
                return stripped.rsplit(b"\n", 1)[1].decode("utf-8")
        return block.rstrip(b"\n").decode("utf-8") or None


class AuditWriter:
    """Appends one run's entries to a log, continuing its chain, and seals the run.

    Entries are buffered and written with one append per :meth:`flush`; the file is opened in
    append mode only, so earlier lines are never rewritten.
    """

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.count = 0
        last = _last_line(path)
        if last is None:
            self.prev, self.seq = GENESIS, 0
        else:
            try:
                self.seq = int(json.loads(last)["seq"])
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path}: last line is not a crmtool audit entry",
                                 "run 'crmtool audit verify' on it, or write to a new log") from None
            self.prev = line_hash(last)
        self._buffer: list[str] = []
        self.ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def add(self, entry: dict[str, Any]) -> None:
        """Append one entry (``run``, ``seq``, ``ts`` and ``prev`` are filled in)."""
        self.seq += 1
        self.count += 1
        full = {**entry, "run": self.run_id, "seq": self.seq, "ts": self.ts, "prev": self.prev}
        full["hash"] = entry_hash(full)
        line = _dump(full)
        self.prev = line_hash(line)
        self._buffer.append(line)
        if len(self._buffer) >= 100_000:
            self.flush()

    def add_many(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            self.add(entry)

    def flush(self) -> None:
        if not self._buffer:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(self._buffer) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._buffer.clear()

    def seal(self, summary: dict[str, Any] | None = None) -> str:
        """Close the run with a seal entry; returns the head hash of the log."""
        self.add({"type": "seal", "entries": self.count + 1, **(summary or {})})  # the seal counts itself
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
    """Check the chain, the sequence numbers and the seals; name the first bad line."""
    if not path.is_file():
        raise InputError(f"{path}: no such audit log")
    prev, seq = GENESIS, 0
    run_counts: dict[str, int] = {}
    sealed: set[str] = set()
    runs_in_order: list[str] = []
    n = 0

    def bad(line_no: int, why: str) -> VerifyResult:
        return VerifyResult(False, n, len(runs_in_order), prev, why, line_no)

    with path.open("r", encoding="utf-8", newline="\n") as fh:
        for n, raw in enumerate(fh, start=1):  # noqa: B007 - n is read by bad()
            line = raw.rstrip("\n")
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return bad(n, "not a JSON object")
            if not isinstance(entry, dict):
                return bad(n, "not a JSON object")
            if entry.get("hash") != entry_hash(entry):
                return bad(n, "line was edited: its content does not match its hash")
            if entry.get("prev") != prev:
                return bad(n, "chain broken: 'prev' is not the hash of the line before "
                              "(a line was edited, removed, inserted or moved here)")
            if _dump(entry) != line:
                return bad(n, "line is not in canonical form (edited by hand?)")
            if entry.get("seq") != seq + 1:
                return bad(n, f"sequence jumps from {seq} to {entry.get('seq')}")
            seq += 1
            run = str(entry.get("run"))
            if run in sealed:
                return bad(n, f"entry after the seal of run {run}")
            if run not in run_counts:
                runs_in_order.append(run)
                run_counts[run] = 0
            run_counts[run] += 1
            if entry.get("type") == "seal":
                if entry.get("entries") != run_counts[run]:
                    return bad(n, f"seal of run {run} counts {entry.get('entries')} entries, found {run_counts[run]}")
                sealed.add(run)
            prev = line_hash(line)
    unsealed = [r for r in runs_in_order if r not in sealed]
    result = VerifyResult(True, n, len(runs_in_order), prev, unsealed_runs=unsealed)
    if unsealed:
        result.ok, result.problem, result.bad_line = False, f"run {unsealed[-1]} has no seal (log cut short?)", n
    elif expected_head is not None and expected_head != prev:
        result.ok, result.problem, result.bad_line = False, "head hash differs from the one expected (log cut short?)", n
    return result


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: no such audit log")
    with path.open("r", encoding="utf-8") as fh:
        for raw in fh:
            if raw.strip():
                yield json.loads(raw)


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
