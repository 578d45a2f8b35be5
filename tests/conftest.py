"""Shared fixtures: an in-memory workspace, a throwaway key, paths to the examples and rules run on
a tiny table (``run``); golden files are checked by ``goldens.check_golden``."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crmtool.engine import VIOLATIONS, EngineResult, run_rules
from crmtool.rulefile import load_rules
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



@dataclass
class Ran:
    """The outcome of running rules on a tiny table."""

    result: EngineResult
    ws: Workspace

    def column(self, name: str) -> list[Any]:
        """Values of ``name`` in the working table (after fixes), in row order."""
        work = self.result.work_table
        rows = self.ws.con.execute(f'SELECT "{name}" FROM "{work}" ORDER BY _row').fetchall()
        return [r[0] for r in rows]

    def failing(self, rule: str | None = None) -> list[int]:
        """Rows (1-based) reported by ``rule`` (or any rule)."""
        index = [o.spec.name for o in self.result.outcomes]
        where = f"WHERE rule = {index.index(rule)}" if rule else ""
        rows = self.ws.con.execute(f"SELECT DISTINCT _row FROM {VIOLATIONS} {where} ORDER BY _row").fetchall()
        return [r[0] for r in rows]

    def reasons(self, rule: str | None = None) -> list[tuple[int, str]]:
        index = [o.spec.name for o in self.result.outcomes]
        where = f"WHERE rule = {index.index(rule)}" if rule else ""
        return [(r, why) for r, why in self.ws.con.execute(
            f"SELECT _row, reason FROM {VIOLATIONS} {where} ORDER BY _row, reason").fetchall()]

    def rejected(self) -> list[int]:
        query = f"SELECT DISTINCT _row FROM {VIOLATIONS} WHERE reject ORDER BY _row"
        rows = self.ws.con.execute(query).fetchall()
        return [r[0] for r in rows]

    def outcome(self, rule: str) -> Any:
        return next(o for o in self.result.outcomes if o.spec.name == rule)


RunRules = Callable[..., Ran]


def make_table(ws: Workspace, table: str, data: dict[str, list[Any]]) -> None:
    """Create ``table`` with a ``_row`` ordinal and VARCHAR columns from column -> values."""
    import pyarrow as pa

    n = len(next(iter(data.values())))
    arrays = {"_row": pa.array(range(1, n + 1), pa.int64())}
    for name, values in data.items():
        arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    ws.con.complete()  # DuckDB 2: finish any pending execute() result first
    ws.con.register("__frame", pa.table(arrays))
    ws.con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM __frame')
    ws.con.unregister("__frame")


def write_rules(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def run(ws: Workspace, tmp_path: Path) -> RunRules:
    """``run(data, rules_yaml)``: load the rule snippet, build the table, run the engine."""

    def _run(data: dict[str, list[Any]], rules: str) -> Ran:
        ruleset = load_rules(write_rules(tmp_path, rules))
        make_table(ws, "data_t", data)
        return Ran(run_rules(ws.con, "data_t", ruleset, work_table="work_t"), ws)

    return _run

