"""The manifest of a run: what it read (with hashes), what it wrote, counts and timings.

Every command's manifest starts from :func:`common_keys`, so the keys below mean the same thing
whichever command wrote it (a command adds its own keys beside them):

- ``tool``, ``version``: ``crmtool`` and its version;
- ``run_id``, ``command``: the run's row in ``crm_runs``;
- ``started_at``, ``finished_at``: UTC, ``YYYY-MM-DDTHH:MM:SSZ`` (finished: when the manifest was built);
- ``inputs``: what the run read, one entry per file (``path`` and, when the file may be named, its
  ``sha256``); ``outputs``: what it wrote, one entry per file (``path``, ``sha256``);
- ``status``: a :class:`crmtool.status.Status` word; ``timings_seconds``: wall seconds per step.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool import __version__
from crmtool.io.readers import file_sha256
from crmtool.io.writers import write_text_atomic
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.workspace import Run

COMMON_KEYS = ("tool", "version", "run_id", "command", "started_at", "finished_at", "inputs", "outputs",
               "status", "timings_seconds")
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def file_entry(path: Path, sha256: str | None = None, **extra: Any) -> dict[str, Any]:
    """A manifest entry for one file: its path, SHA-256 (read here unless given, e.g. by a digest
    taken while other work ran) and the ``extra`` keys given."""
    return {"path": str(path), "sha256": sha256 if sha256 is not None else file_sha256(path), **extra}


def common_keys(run: Run, command: str, *, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
                status: Status) -> dict[str, Any]:
    """The keys every command's manifest shares (see the module docstring for their meaning)."""
    return {
        "tool": "crmtool",
        "version": __version__,
        "run_id": run.run_id,
        "command": command,
        "started_at": run.started_at.strftime(_UTC_FORMAT),
        "finished_at": datetime.now(UTC).strftime(_UTC_FORMAT),
        "inputs": inputs,
        "outputs": outputs,
        "status": Status(status).value,
        "timings_seconds": dict(run.timings),
    }


def write_manifest(target: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Write ``body`` (with ``tool`` and ``version``) as sorted JSON to ``target``, atomically."""
    manifest = {"tool": "crmtool", "version": __version__, **body}
    write_text_atomic(target, json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    return manifest
