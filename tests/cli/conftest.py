"""Helpers for the tests of issue 16 (CI gate, spreadsheet output, first hour, one vocabulary)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clientes.csv"
RULES = ROOT / "rules"
FOUNDATION_RULES = [RULES / "10-normalise.yaml", RULES / "20-checks.yaml"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def listing(folder: Path) -> list[str]:
    """Every file and folder below ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working folder with no key configured anywhere."""
    monkeypatch.chdir(tmp_path)
    for var in ("CRMTOOL_KEY", "CRMTOOL_KEY_FILE", "CRMTOOL_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    assert not os.listdir(tmp_path)
    return tmp_path


def broken_export(path: Path, rows: int = 20) -> Path:
    """An export where every other line has an extra field (half the lines unparseable)."""
    lines = ["id,name,email"]
    for i in range(1, rows + 1):
        extra = ",oops" if i % 2 == 0 else ""
        lines.append(f"{i},Name {i},user{i}@example.com{extra}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
