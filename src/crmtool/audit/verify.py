"""``audit verify``: every record, link, run, seal, change set and ``HEAD`` of a log checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.audit.format import (
    CHAIN,
    GENESIS,
    HEAD,
    LOCK,
    PENDING,
    SETS,
    FormatProblem,
    decode,
    head_mac,
    read_head,
    seal_mac,
)
from crmtool.errors import InputError

if TYPE_CHECKING:
    from crmtool.keys import KeyedHasher
    from crmtool.status import Status


@dataclass
class VerifyResult:
    ok: bool
    records: int
    runs: int
    head: str
    rows: int = 0  # rows in the sealed change sets
    problem: str = ""
    where: str = ""  # "chain.jsonl:LINE", a change set file, or "HEAD"
    keyed: bool = True  # seals and HEAD checked with the key
    prefix: bool = False  # the expected head is an earlier seal of this log
    pending: list[str] = field(default_factory=list)  # runs still being written (or killed)
    #: per pending run: status ``warn`` (a live run holds the lock: being written) or ``aborted``
    #: (killed; the next run records it), its command, start, unsealed records after HEAD, sets
    pending_runs: list[dict[str, Any]] = field(default_factory=list)
    #: 1 for a format-1 log (``audit.jsonl``), checked read-only as far as format 1 can prove;
    #: ``unproven`` then says in one line what it cannot
    format: int = 2
    unproven: str = ""

    @property
    def status(self) -> Status:
        """fail (exit 1) when the log does not verify; warn when a run is still pending; else pass."""
        from crmtool.status import Status

        if not self.ok:
            return Status.FAIL
        return Status.WARN if self.pending_runs else Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": str(self.status), "records": self.records, "runs": self.runs,
                "rows": self.rows, "head": self.head, "problem": self.problem or None, "where": self.where or None,
                "keyed": self.keyed, "prefix": self.prefix, "pending": self.pending,
                "pending_runs": self.pending_runs, "format": self.format, "unproven": self.unproven or None}


class _Bad(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(problem)
        self.where, self.problem = where, problem


def _check_set(log: Path, entry: Any, run: str, where: str) -> int:
    from crmtool.io.readers import file_sha256

    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise _Bad(where, f"seal of run {run} lists a change set it does not describe")
    path = log / entry["file"]
    if not entry["file"].startswith(f"{SETS}/{run}.") or "/" in entry["file"][len(SETS) + 1:]:
        raise _Bad(where, f"seal of run {run} lists a change set of another run: {entry['file']}")
    if not path.is_file():
        raise _Bad(entry["file"], f"change set of run {run} is missing (deleted)")
    if file_sha256(path) != entry.get("sha256"):
        raise _Bad(entry["file"], f"change set of run {run} was changed: rows edited, added, removed "
                                  "or reordered, or the file replaced")
    return int(entry.get("rows") or 0)


def verify_log(log: Path, hasher: KeyedHasher | None, expected_head: str | None = None) -> VerifyResult:
    """Check the whole log; name the first problem and where it is. ``hasher=None``: no keyed checks."""
    chain = log / CHAIN
    old = format1_file(log)
    if old is not None:
        return _verify_format1(old, expected_head)
    if log.is_file():
        raise InputError(f"{log} is a file: an audit log is a folder (<workspace>.audit/)",
                         "give the log folder (<workspace>.audit/, or OUT/crmtool.audit/ for :memory:)")
    if not chain.is_file():
        raise InputError(f"{log}: no audit log here ({CHAIN} missing)",
                         "an audit log is the folder <workspace>.audit/ (OUT/crmtool.audit/ for :memory:)")
    key = hasher.key if hasher is not None else None
    prev, seq, run, runs, rows, n = GENESIS, 0, "", 0, 0, 0
    seen: set[str] = set()
    in_run = 0
    seals: list[str] = []
    listed: set[str] = set()
    result = VerifyResult(True, 0, 0, GENESIS, keyed=key is not None)
    limit = _sealed_size(log, chain)
    try:
        with chain.open("rb") as fh:
            for n, raw in enumerate(_lines(fh, limit), start=1):
                where = f"{CHAIN}:{n}"
                if not raw.endswith(b"\n"):
                    raise _Bad(where, "last record is cut off (log cut short during a write?)")
                try:
                    body, digest, mac = decode(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise _Bad(where, "not UTF-8 text") from None
                except FormatProblem as exc:
                    raise _Bad(where, str(exc)) from None
                if body.get("prev") != prev:
                    raise _Bad(where, "chain broken: 'prev' is not the hash of the record before "
                                      "(a record was removed, inserted or moved here)")
                if body.get("seq") != seq + 1:
                    raise _Bad(where, f"sequence jumps from {seq} to {body.get('seq')}")
                this = str(body.get("run"))
                if in_run == 0:
                    if body.get("type") != "run":
                        raise _Bad(where, f"run {this} does not start with its header")
                    if this in seen:
                        raise _Bad(where, f"run {this} appears twice")
                    seen.add(this)
                    run, runs = this, runs + 1
                elif this != run:
                    raise _Bad(where, f"record of run {this} inside run {run}, which has no seal yet")
                in_run += 1
                if body.get("type") == "seal":
                    if body.get("records") != in_run:
                        raise _Bad(where, f"seal of run {run} counts {body.get('records')} records, found {in_run}")
                    if key is not None and mac != seal_mac(key, digest):
                        raise _Bad(where, f"seal of run {run} does not match the key: the run was forged "
                                          "or rewritten (or the log belongs to another key)")
                    for entry in body.get("sets") or []:
                        rows += _check_set(log, entry, run, where)
                        listed.add(str(entry.get("file")))
                    seals.append(digest)
                    in_run = 0
                prev, seq = digest, seq + 1
        result.records, result.runs, result.head, result.rows = n, runs, prev, rows
        if in_run:
            raise _Bad(f"{CHAIN}:{n}", f"run {run} has no seal (log cut short?)")
        _check_head(log, key, runs, seq, prev, limit)
        _check_strays(log, listed, result)
        _check_pending(log, chain, key, limit, seq, prev, seen, result)
        if expected_head is not None and expected_head != prev:
            if expected_head not in seals:
                raise _Bad(f"{CHAIN}:{n}", "the expected head (manifest) is no seal of this log: "
                                           "the log was cut back or rewritten")
            result.prefix = True
    except _Bad as bad:
        result.ok, result.where, result.problem = False, bad.where, bad.problem
        result.records, result.runs = max(n, result.records), runs
    return result


def _sealed_size(log: Path, chain: Path) -> int:
    """Bytes of the chain to check: all of it, or up to HEAD while a run is writing (or was killed
    writing) its records after it; the next run keeps them if sealed, else cuts them back."""
    size = chain.stat().st_size
    head = read_head(log)
    pending = (log / PENDING).is_dir() and any((log / PENDING).glob("*.json"))
    if pending and head is not None and isinstance(head.get("size"), int) and head["size"] < size:
        return int(head["size"])
    if pending and head is None:
        return 0
    return size


def _lines(fh: Any, limit: int) -> Any:
    read = 0
    for raw in fh:
        if read >= limit:
            return
        read += len(raw)
        yield raw


def _check_head(log: Path, key: bytes | None, runs: int, seq: int, prev: str, size: int) -> None:
    head = read_head(log)
    if runs == 0:
        if head is not None:
            raise _Bad(HEAD, "HEAD names a seal but the chain holds no run: the chain was cut back or emptied")
        return
    if head is None:
        raise _Bad(HEAD, "HEAD is missing: the log cannot show it was not cut back")
    if "broken" in head:
        raise _Bad(HEAD, "HEAD is not readable")
    if key is not None and head.get("mac") != head_mac(key, head):
        raise _Bad(HEAD, "HEAD does not match the key (forged or rewritten)")
    if head.get("hash") != prev or head.get("seq") != seq or head.get("size") != size:
        raise _Bad(HEAD, f"HEAD names seal {str(head.get('hash'))[:16]} at record {head.get('seq')}, "
                         f"the chain ends at record {seq}: records were cut off or appended")


def _check_strays(log: Path, listed: set[str], result: VerifyResult) -> None:
    pending = {p.stem for p in (log / PENDING).glob("*.json")} if (log / PENDING).is_dir() else set()
    result.pending = sorted(pending)
    for path in sorted((log / SETS).glob("*")) if (log / SETS).is_dir() else []:
        name = f"{SETS}/{path.name}"
        if name in listed or any(path.name.startswith(f"{run}.") for run in pending):
            continue
        raise _Bad(name, "change set that no seal lists (inserted, or left by a deleted run)")


def _pending_note(path: Path) -> dict[str, Any]:
    import json

    try:
        note = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _Bad(f"{PENDING}/{path.name}", "pending note is not readable (damaged?)") from None
    if not isinstance(note, dict) or note.get("run") != path.stem:
        raise _Bad(f"{PENDING}/{path.name}", "pending note names another run than its file")
    return note


def _lock_held(log: Path) -> bool:
    """True when a live run holds the log's lock (tried without waiting, released at once)."""
    import fcntl
    import os

    try:
        fd = os.open(log / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _tail(chain: Path, start: int, key: bytes | None, seq: int, prev: str) -> list[tuple[str, bool]]:
    """Records after ``HEAD`` (a pending run's append): ``(run, is a seal that checks)`` each; they
    must continue the chain, the last one may be cut off by the crash."""
    with chain.open("rb") as fh:
        fh.seek(start)
        data = fh.read()
    out: list[tuple[str, bool]] = []
    # the piece after the last line end is a write the crash cut off; the next run cuts it back
    for n_line, line in enumerate(data.split(b"\n")[:-1], start=1):
        where = f"{CHAIN}:+{n_line} after HEAD"
        try:
            body, digest, mac = decode((line + b"\n").decode("utf-8"))
        except (FormatProblem, UnicodeDecodeError) as exc:
            raise _Bad(where, f"a pending run's record is damaged ({exc})") from None
        if body.get("prev") != prev or body.get("seq") != seq + 1:
            raise _Bad(where, "the records after HEAD do not continue the chain (written by someone else?)")
        sealed = body.get("type") == "seal" and (key is None or mac == seal_mac(key, digest))
        if body.get("type") == "seal" and not sealed:
            raise _Bad(where, "a seal after HEAD does not match the key")
        out.append((str(body.get("run")), sealed))
        prev, seq = digest, seq + 1
    return out


def _check_pending(log: Path, chain: Path, key: bytes | None, limit: int, seq: int, prev: str,
                   sealed_runs: set[str], result: VerifyResult) -> None:
    """Report each run with a pending note (being written, or killed) and check it is consistent:
    a readable note for a run the chain has not sealed (or the HEAD run, whose note outlived its
    seal), records after HEAD that continue the chain and belong to pending runs, change sets of
    its own. Nothing here is changed: the next run repairs the log."""
    notes = sorted((log / PENDING).glob("*.json")) if (log / PENDING).is_dir() else []
    if not notes:
        if chain.stat().st_size != limit:
            raise _Bad(CHAIN, "records after HEAD and no pending run")
        return
    live = _lock_held(log)
    tail = _tail(chain, limit, key, seq, prev) if chain.stat().st_size > limit else []
    pending = {p.stem for p in notes}
    for run, _sealed in tail:
        if run not in pending:
            raise _Bad(CHAIN, f"records of run {run} after HEAD, but no pending note for it")
    head = read_head(log) or {}
    for path in notes:
        note = _pending_note(path)
        run = path.stem
        if run in sealed_runs and run != head.get("run"):
            raise _Bad(f"{PENDING}/{path.name}", f"pending note for run {run}, sealed before the last seal")
        records = [sealed for r, sealed in tail if r == run]
        sets = sorted(f"{SETS}/{p.name}" for p in (log / SETS).glob(f"{run}.*")) if (log / SETS).is_dir() else []
        result.pending_runs.append({
            "run": run, "status": "warn" if live else "aborted", "command": note.get("command"),
            "started_at": note.get("started_at"), "sealed_in_chain": run in sealed_runs or any(records),
            "records_after_head": len(records), "sets": sets})


def format1_file(path: Path) -> Path | None:
    """The format-1 log (``audit.jsonl``, JSON Lines from before 0.2) at ``path`` (the file, or the
    folder holding it), else None."""
    candidate = path if path.is_file() else path / "audit.jsonl"
    return candidate if candidate.is_file() and _is_format1(candidate) else None


def _verify_format1(path: Path, expected_head: str | None) -> VerifyResult:
    from crmtool.audit.legacy import UNPROVEN, verify_format1

    found = verify_format1(path, expected_head)
    return VerifyResult(bool(found["ok"]), int(found["records"]), int(found["runs"]), str(found["head"]),
                        problem=str(found["problem"]), where=f"{path}:{found['line']}" if found["line"] else "",
                        keyed=False, prefix=bool(found["prefix"]), format=1, unproven=UNPROVEN)


def refuse_format1(path: Path) -> None:
    """``audit show`` on a format-1 log gets a message, not a traceback (``audit verify`` checks it)."""
    candidate = format1_file(path)
    if candidate is not None:
        raise InputError(
            f"{candidate} is an audit log of format 1 (JSON Lines, written before crmtool 0.2); this "
            "version shows format 2 only (<workspace>.audit/)",
            f"keep it as it is, with the manifests of its runs (e.g. rename it to {candidate.name}.format1); "
            "'crmtool audit verify' checks it read-only, crmtool 0.1's 'audit show' reads it; new runs "
            "write a new log in <workspace>.audit/")


def _is_format1(path: Path) -> bool:
    import re

    try:
        with path.open("rb") as fh:
            first = fh.readline(1 << 20)
    except OSError:
        return False
    return re.search(rb',"hash":"[0-9a-f]{64}","prev":"[0-9a-f]{64}"}\r?\n?$', first) is not None
