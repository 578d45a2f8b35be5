"""Helpers for the privacy tests: run the CLI in-process, search files and workspaces for clear values."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RULES = ROOT / "rules"


@pytest.fixture(autouse=True)
def _in_tmp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands default to files in the working folder (out/, the workspace's audit log): run each
    test in its own folder so nothing lands in the repository."""
    monkeypatch.chdir(tmp_path)


def cli(*args: object) -> tuple[int, str]:
    """Run ``crmtool`` in-process; returns exit code and stdout+stderr."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def read_csv(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def files_containing(root: Path, needles: Iterable[str], skip: Iterable[Path] = ()) -> dict[str, list[str]]:
    """Every file under ``root`` (except ``skip``) holding one of ``needles`` (case-insensitive)."""
    skipped = {p.resolve() for p in skip}
    lowered = [n.lower() for n in needles]
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.resolve() in skipped or path.suffix in (".duckdb", ".wal", ".lock"):
            continue
        data = path.read_bytes()
        text = (data.decode("utf-8", errors="replace") + "\n" + data.decode("cp1252", errors="replace")).lower()
        hits = [n for n in lowered if n in text]
        if hits:
            found[str(path)] = hits
    return found


def workspace_containing(db: Path, needles: Iterable[str]) -> dict[str, list[str]]:
    """Every ``table.column`` of a workspace file holding one of ``needles`` (any column, cast to text)."""
    con = duckdb.connect(str(db), read_only=True)
    found: dict[str, list[str]] = {}
    try:
        cols = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
        by_table: dict[str, list[str]] = {}
        for table, column in cols:
            by_table.setdefault(table, []).append(column)
        needles = [n.lower() for n in needles]
        for table, columns in by_table.items():
            pairs = [(c, n) for c in columns for n in needles]
            exprs = ", ".join(f'bool_or(contains(lower(CAST("{c}" AS VARCHAR)), ?))' for c, _n in pairs)
            row = con.execute(f'SELECT {exprs} FROM "{table}"', [n for _c, n in pairs]).fetchall()[0]
            for (column, needle), hit in zip(pairs, row, strict=True):
                if hit:
                    found.setdefault(f"{table}.{column}", []).append(needle)
    finally:
        con.close()
    return found
