"""Format 3 (change ids and a value set per run) shows what format 2 showed: the same entries for
the same clean, a log that holds runs of both formats, and look-ups by record, rule and run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from crmtool.api import clean
from crmtool.audit import iter_entries, show, verify_log
from crmtool.keys import KeyedHasher
from crmtool.workspace import Workspace

from .conftest import EXAMPLE, KEY, RULES

HASHER = KeyedHasher(KEY.encode(), "test")
FORMAT2 = Path(__file__).resolve().parent / "data" / "format2" / "ws.audit"
FIELDS = ("type", "rule", "row", "line", "record", "field", "old", "new", "reason", "action")


def _rows(log: Path, run: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(json.dumps(e.get(k), sort_keys=True) for k in FIELDS)
                  for e in show(log, run=run) if e["type"] in ("change", "reject"))


def _clean_runs(log: Path) -> list[str]:
    return [e["run"] for e in iter_entries(log) if e["type"] == "run" and e.get("command") == "clean"]


def test_format3_shows_the_entries_format2_showed_for_the_same_clean(real_log: Path) -> None:
    log3 = real_log / "ws.audit"
    header3 = next(e for e in iter_entries(log3) if e["type"] == "run")
    header2 = next(e for e in iter_entries(FORMAT2) if e["type"] == "run")
    if header3["rules_sha256"] != header2["rules_sha256"] or header3["input_sha256"] != header2["input_sha256"]:
        pytest.skip("the rules or the example changed since the format 2 fixture was written")
    assert any((log3 / "sets").glob("*.change_values.parquet")) and not any((FORMAT2 / "sets").glob("*values*"))
    got, expected = _rows(log3, _clean_runs(log3)[0]), _rows(FORMAT2, _clean_runs(FORMAT2)[0])
    assert len(got) > 1500 and got == expected
    changes = [e for e in show(log3, run=_clean_runs(log3)[0]) if e["type"] == "change"]
    assert all("old" in e and "new" in e and "change" not in e for e in changes)


def test_a_log_of_format2_runs_takes_format3_runs_and_shows_both(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTOOL_KEY", KEY)
    log = tmp_path / "ws.audit"
    shutil.copytree(FORMAT2, log)
    (log / "pending").mkdir(exist_ok=True)
    with Workspace(tmp_path / "ws.duckdb") as ws:
        clean(ws, EXAMPLE, [RULES], tmp_path / "out", audit_log=log)
    result = verify_log(log, HASHER)
    assert result.ok and result.runs == 6, result.problem  # 4 of format 2, a clean and its dedupe of format 3
    old_run, new_run = _clean_runs(log)[0], _clean_runs(log)[-1]
    assert any((log / "sets").glob(f"{new_run}.change_values.parquet"))
    assert _rows(log, new_run) == _rows(log, old_run)
    # a record's entries over both formats: each change with its values
    token = HASHER.token("C0000001")
    entries = [e for e in show(log, record_token=token) if e["type"] == "change"]
    by_run: dict[str, list[tuple[Any, ...]]] = {}
    for e in entries:
        by_run.setdefault(e["run"], []).append((e["rule"], e["field"], e["old"], e["new"]))
    assert len(by_run) == 3 and by_run[old_run] and by_run[old_run] == by_run[new_run]
    assert all(e["old"] != e["new"] for e in entries)
    # by rule, and a run's first entries (--limit resolves its ids without loading the value set)
    by_rule = [e for e in show(log, rule="country_upper") if e["run"] in (old_run, new_run)]
    assert by_rule and {e["run"] for e in by_rule} == {old_run, new_run}
    assert all(e["new"] == e["old"].upper() for e in by_rule if e["type"] == "change")
    limited = list(show(log, run=new_run, limit=50))
    assert len(limited) == 50 and all("old" in e for e in limited if e["type"] == "change")
