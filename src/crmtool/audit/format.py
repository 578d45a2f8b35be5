"""The audit log's on-disk format (docs/decisions/0008-audit-format.md).

One log per workspace: a folder (``<workspace stem>.audit/``) holding

- ``chain.jsonl``: one JSON record per line: run headers, events (erasure, retention, ...),
  ``aborted`` notes and seals. Every record carries ``seq`` (1, 2, ... over the whole log),
  ``run``, ``ts``, ``type`` and ``prev`` (the ``hash`` of the record before, 64 zeros for the
  first), then ``hash``: SHA-256 of the record's canonical JSON *including* ``prev``. A seal
  also carries ``mac``: HMAC-SHA-256 with the workspace key over its hash, so the seal vouches
  for every record before it, and for the change sets it lists by SHA-256.
- ``sets/<run>.<kind>.parquet``: a run's bulk entries (the changes and rejects of ``clean``,
  the merges of ``dedupe``, ...) as a columnar change set; record keys and personal values are
  keyed hashes (``k:<hex>``).
- ``HEAD``: the last seal (run, seq, hash, chain size) with its own keyed ``mac``; it tells a
  cut-back chain from a whole one.
- ``pending/<run>.json`` while a run writes; ``lock``, held while a run writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
TOKEN_PREFIX = "k:"
FORMAT = "crmtool-audit/2"
CHAIN = "chain.jsonl"
HEAD = "HEAD"
SETS = "sets"
PENDING = "pending"
LOCK = "lock"
#: members the writer fills in; an entry given to ``add`` cannot set them
RESERVED = frozenset({"seq", "run", "ts", "prev", "hash", "mac"})
_SEAL_LABEL = b"crmtool-audit-seal-v2\x00"
_HEAD_LABEL = b"crmtool-audit-head-v2\x00"


class FormatProblem(ValueError):
    """A chain line that is not in the form crmtool writes."""


def canonical(body: dict[str, Any]) -> str:
    """The one text a record body has: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def seal_mac(key: bytes, record_hash: str) -> str:
    return hmac.new(key, _SEAL_LABEL + record_hash.encode("ascii"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, head: dict[str, Any]) -> str:
    text = f"{head['run']}\x00{head['seq']}\x00{head['hash']}\x00{head['size']}".encode()
    return hmac.new(key, _HEAD_LABEL + text, hashlib.sha256).hexdigest()


def encode(body: dict[str, Any], key: bytes) -> tuple[str, str]:
    """``(line, hash)`` of a record body (which holds ``prev``); seals get their ``mac``."""
    text = canonical(body)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    tail = f',"hash":"{digest}"'
    if body.get("type") == "seal":
        tail += f',"mac":"{seal_mac(key, digest)}"'
    return text[:-1] + tail + "}\n", digest


def decode(line: str) -> tuple[dict[str, Any], str, str | None]:
    """``(body, hash, mac)`` of a chain line; the hash is recomputed, not trusted.

    Raises :class:`FormatProblem` for a line that is not exactly what :func:`encode` writes.
    """
    try:
        entry = json.loads(line)
    except ValueError:
        raise FormatProblem("not a JSON record") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
        raise FormatProblem("not a crmtool audit record")
    claimed = entry.pop("hash")
    mac = entry.pop("mac", None)
    text = canonical(entry)
    tail = f',"hash":"{claimed}"' + (f',"mac":"{mac}"' if mac is not None else "")
    if line.rstrip("\n") != text[:-1] + tail + "}":
        raise FormatProblem("line is not in the form crmtool writes (edited by hand?)")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != claimed:
        raise FormatProblem("record was edited: its content does not match its hash")
    return entry, digest, mac


def read_head(log: Path) -> dict[str, Any] | None:
    path = log / HEAD
    if not path.exists():
        return None
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"broken": True}
    return head if isinstance(head, dict) else {"broken": True}


def json_str_sql(expr: str) -> str:
    """SQL for a JSON value of ``expr`` as text: a JSON string, or ``null``."""
    return f"coalesce(to_json(CAST({expr} AS VARCHAR)), 'null')"


def set_path(log: Path, run_id: str, kind: str) -> Path:
    return log / SETS / f"{run_id}.{kind}.parquet"
