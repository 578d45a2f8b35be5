"""``validate`` of a small input file runs on one DuckDB thread (issue 19: a 10-row validate's
~150 statements take 10-40% less without a second thread); a larger one keeps DuckDB's default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmtool import api
from crmtool.cli import app, core_cmd


def _threads_seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str]:
    seen: list[str] = []
    validate = api.validate

    def spy(ws: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(ws.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        return validate(ws, *args, **kwargs)

    monkeypatch.setattr(api, "validate", spy)
    data = tmp_path / "d.csv"
    data.write_text("id,age\nC1,30\nC2,7\n", encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: a, kind: range, column: age, min: 18}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(data), "--rules", str(rules), "--workspace", ":memory:", "-q"])
    return result.exit_code, str(seen[0])


def test_a_small_input_is_validated_on_one_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _threads_seen(monkeypatch, tmp_path) == (1, "1")  # exit 1: age 7


def test_a_larger_input_keeps_duckdbs_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import duckdb

    default = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0]
    monkeypatch.setattr(core_cmd, "SMALL_INPUT_BYTES", 10)  # the 25-byte file is now "large"
    assert _threads_seen(monkeypatch, tmp_path) == (1, str(default))
