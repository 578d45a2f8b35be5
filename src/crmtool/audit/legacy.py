"""Read-only verification of a format-1 log (``audit.jsonl``, JSON Lines from before 0.2).

Format 1 (decision 0003, 0005): every line is ``{<members>,"hash":"H","prev":"P"}``; ``H`` is the
SHA-256 of the line without its two last members (``}`` closing it), ``P`` the ``hash`` of the
line before (64 zeros first); each run ends with a ``seal`` counting the run's lines
(``entries``) and carrying ``digest``: SHA-256 over the run's line hashes in blocks of 65,536
(SHA-256 of the block digests joined). This module checks all of that, and that a manifest's head
is a seal of the log. What format 1 cannot prove is said by :data:`UNPROVEN`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from crmtool.audit.format import GENESIS

#: the one line ``audit verify`` prints after a format-1 check that passed
UNPROVEN = ("format 1 cannot prove more: its line hashes do not cover 'prev' and its seals are not keyed, "
            "so a rewrite with every hash, link and seal recomputed (an edit, a dropped or reordered run) "
            "also passes; a manifest's head vouches for its own run's seal only")
_TAIL = re.compile(r',"hash":"([0-9a-f]{64})","prev":"([0-9a-f]{64})"\}$')
_BLOCK = 65536


class _Digest:
    """A format-1 seal's ``digest``: SHA-256 over the run's line hashes in blocks of 65,536."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.current, self.n = hashlib.sha256(), 0

    def add(self, line_hash: str) -> None:
        self.current.update(line_hash.encode("ascii"))
        self.n += 1
        if self.n == _BLOCK:
            self.blocks.append(self.current.hexdigest())
            self.current, self.n = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        blocks = self.blocks + ([self.current.hexdigest()] if self.n else [])
        return hashlib.sha256("".join(blocks).encode("ascii")).hexdigest()


class _Bad(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line, self.problem = line, problem


def _split(line: str, n: int) -> tuple[dict[str, Any], str, str]:
    """``(entry, hash, prev)`` of a line, its hash checked against its body."""
    try:
        entry = json.loads(line)
    except ValueError:
        raise _Bad(n, "not a JSON object") from None
    match = _TAIL.search(line)
    if not isinstance(entry, dict) or match is None:
        raise _Bad(n, "line is not in the form crmtool 0.1 writes (edited by hand?)")
    body = line[:match.start()] + "}"
    if hashlib.sha256(body.encode("utf-8")).hexdigest() != match.group(1):
        raise _Bad(n, "line was edited: its content does not match its hash")
    return entry, match.group(1), match.group(2)


def verify_format1(path: Path, expected_head: str | None = None) -> dict[str, Any]:
    """Check a format-1 log as far as its format allows; read only.

    Returns ``ok``, ``records`` (lines), ``runs``, ``head`` (last line's hash), ``prefix`` (the
    expected head is an earlier seal), ``problem`` and ``line`` (1-based, 0 when none).
    """
    prev, seq, n = GENESIS, 0, 0
    counts: dict[str, int] = {}
    digests: dict[str, _Digest] = {}
    sealed: list[str] = []  # seal hashes, in order
    sealed_runs: set[str] = set()
    result: dict[str, Any] = {"ok": True, "records": 0, "runs": 0, "head": GENESIS, "prefix": False,
                              "problem": "", "line": 0}
    try:
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                try:
                    line = raw.rstrip(b"\n").decode("utf-8")
                except UnicodeDecodeError:
                    raise _Bad(n, "not UTF-8 text") from None
                entry, digest, link = _split(line, n)
                if link != prev:
                    raise _Bad(n, "chain broken: 'prev' is not the hash of the line before "
                                  "(a line was removed, inserted or moved here)")
                if entry.get("seq") != seq + 1:
                    raise _Bad(n, f"sequence jumps from {seq} to {entry.get('seq')}")
                run = str(entry.get("run"))
                if run in sealed_runs:
                    raise _Bad(n, f"line of run {run} after its seal")
                counts[run] = counts.get(run, 0) + 1
                run_digest = digests.setdefault(run, _Digest())
                if entry.get("type") == "seal":
                    if entry.get("entries") != counts[run]:
                        raise _Bad(n, f"seal of run {run} counts {entry.get('entries')} lines, found {counts[run]}")
                    if entry.get("digest") != run_digest.hexdigest():
                        raise _Bad(n, f"seal of run {run} does not match the run's lines (a line was re-hashed)")
                    sealed_runs.add(run)
                    sealed.append(digest)
                else:
                    run_digest.add(digest)
                prev, seq = digest, seq + 1
        open_runs = [r for r in counts if r not in sealed_runs]
        if open_runs:
            raise _Bad(n, f"run {open_runs[-1]} has no seal (log cut short?)")
        if expected_head is not None and expected_head != prev:
            if expected_head not in sealed:
                raise _Bad(n, "the expected head (manifest) is no seal of this log: the log was cut back "
                              "or rewritten")
            result["prefix"] = True
    except _Bad as bad:
        result.update(ok=False, problem=bad.problem, line=bad.line)
    result.update(records=n, runs=len(counts), head=prev)
    return result
