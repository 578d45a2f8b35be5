"""A real log: two ``clean`` runs of the example (each followed by its dedupe run) on a workspace file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crmtool.api import clean
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clientes.csv"
RULES = ROOT / "rules"
KEY = "test-key-0123456789abcdef"  # the conftest key


@pytest.fixture(scope="session")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with ``ws.audit/`` (4 sealed runs), ``first.json`` and ``last.json`` (clean manifests),
    and ``after-first/``: the log as it was after the first clean and its dedupe run."""
    import os

    root = tmp_path_factory.mktemp("real_log")
    old = os.environ.get("CRMTOOL_KEY")
    os.environ["CRMTOOL_KEY"] = KEY
    try:
        with Workspace(root / "ws.duckdb") as ws:
            clean(ws, EXAMPLE, [RULES], root / "out")
            shutil.copy(root / "out" / "manifest.json", root / "first.json")
            shutil.copytree(root / "ws.audit", root / "after-first")
            clean(ws, EXAMPLE, [RULES], root / "out")
            shutil.copy(root / "out" / "manifest.json", root / "last.json")
    finally:
        if old is None:
            os.environ.pop("CRMTOOL_KEY", None)
        else:
            os.environ["CRMTOOL_KEY"] = old
    assert json.loads((root / "first.json").read_text())["audit"]["head_sha256"]
    return root


@pytest.fixture
def log(real_log: Path, tmp_path: Path) -> Path:
    """A copy of the real log to attack."""
    target = tmp_path / "ws.audit"
    shutil.copytree(real_log / "ws.audit", target)
    return target
