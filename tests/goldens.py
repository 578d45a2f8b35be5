"""The one golden-file check: every golden file lives under ``tests/golden/<area>/``.

Refresh them with ``CRMTOOL_UPDATE_GOLDEN=1 pytest ...`` and review the diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, actual: bytes | str) -> None:
    """Compare ``actual`` with ``tests/golden/<name>``; ``CRMTOOL_UPDATE_GOLDEN=1`` rewrites it instead."""
    data = actual.encode("utf-8") if isinstance(actual, str) else actual
    path = GOLDEN / name
    if os.environ.get("CRMTOOL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.exists(), f"{path} missing: run with CRMTOOL_UPDATE_GOLDEN=1 to create it"
    assert data == path.read_bytes(), f"{name} differs from its golden file (CRMTOOL_UPDATE_GOLDEN=1 to refresh)"
