"""Shared fixtures: an in-memory workspace, a throwaway key, paths to the examples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RULES = ROOT / "rules"


@pytest.fixture(autouse=True)
def _test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test hashes with a fixed key unless it sets its own (no key file is created)."""
    monkeypatch.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef")
    monkeypatch.delenv("CRMTOOL_KEY_FILE", raising=False)


@pytest.fixture
def ws() -> Iterator[Workspace]:
    with Workspace(":memory:") as workspace:
        yield workspace
