"""The manifest of a run: what it read (with hashes), what it wrote, counts and timings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmtool import __version__
from crmtool.io.readers import file_sha256
from crmtool.io.writers import write_text_atomic


def file_entry(path: Path, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "sha256": file_sha256(path), **extra}


def write_manifest(target: Path, body: dict[str, Any]) -> dict[str, Any]:
    manifest = {"tool": "crmtool", "version": __version__, **body}
    write_text_atomic(target, json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    return manifest
