"""Retention that cannot misfire: unparseable dates are never old; deletions reach outputs and survive clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import cli

RULES = """version: 1
dataset: {{key: customer_id}}
rules:
  - {{name: trim_id, kind: trim, columns: [customer_id]}}
retention:
  - name: old
    inactive_for: 3y
    activity_columns: [last_seen]
    date_formats: ['%Y-%m-%d']
    action: {action}
"""


def _setup(tmp_path: Path, action: str, rows: list[str]) -> tuple[Path, Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(action=action), encoding="utf-8")
    data = tmp_path / "people.csv"
    data.write_text("customer_id,email,last_seen\n" + "\n".join(rows) + "\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    code, out = cli("clean", data, "-r", rules, "--out", tmp_path / "out", "-w", db)
    assert code == 0, out
    return rules, data, db


def test_an_unparseable_date_stops_the_run_and_is_never_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rules, _data, db = _setup(tmp_path, "delete", [
        "C1,old@x.es,2015-01-01", "C2,odd@x.es,31/12/2099", "C3,new@x.es,2026-10-01"])
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 2, out
    assert "1 date values cannot be parsed" in out and "odd@x.es" not in out
    clean = (tmp_path / "out" / "people.clean.csv").read_text(encoding="utf-8")
    assert "C1" in clean  # nothing was changed
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01",
                    "--allow-unparseable-dates")
    assert code == 0, out
    clean = (tmp_path / "out" / "people.clean.csv").read_text(encoding="utf-8")
    assert "C1" not in clean and "C2" in clean and "C3" in clean  # the unreadable date was kept


def test_a_deletion_survives_the_next_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rules, data, db = _setup(tmp_path, "delete", ["C1,old@x.es,2015-01-01", "C3,new@x.es,2026-10-01"])
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 0, out
    code, out = cli("clean", data, "-r", rules, "--out", tmp_path / "out2", "-w", db)
    assert code == 0, out
    again = (tmp_path / "out2" / "people.clean.csv").read_text(encoding="utf-8")
    assert "C1" not in again and "old@x.es" not in again and "C3" in again
