"""Regression tests for issue #13's bugs: --quiet, --log-file on failure, segment diff --list-runs,
and retention rewriting an older day's folder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RULES = ROOT / "rules"


def cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_quiet_prints_nothing_on_success(tmp_path: Path) -> None:
    code, out, err = cli("clean", EXAMPLES / "clientes.csv", "-r", RULES, "--out", tmp_path / "out",
                         "-w", tmp_path / "w.duckdb", "--quiet")
    assert code == 0
    assert out == "" and err == ""
    assert (tmp_path / "out" / "clientes.clean.csv").is_file()
    # without --quiet the table is there (the test above is not vacuous)
    code, out, _err = cli("validate", EXAMPLES / "clientes.csv", "-r", RULES, "-w", tmp_path / "w.duckdb")
    assert "email_syntax" in out


def test_quiet_still_emits_data_asked_for(tmp_path: Path) -> None:
    code, out, _err = cli("validate", EXAMPLES / "clientes.csv", "-r", RULES, "-w", tmp_path / "w.duckdb",
                          "--quiet", "--format", "json")
    assert code == 0 and out.lstrip().startswith("{")


def test_log_file_ends_with_a_line_on_success_and_on_failure(tmp_path: Path) -> None:
    log = tmp_path / "crm.log"
    code, _o, _e = cli("clean", EXAMPLES / "clientes.csv", "-r", RULES, "--out", tmp_path / "out",
                       "-w", tmp_path / "w.duckdb", "-q", "--log-file", log)
    assert code == 0
    last = log.read_text(encoding="utf-8").splitlines()[-1]
    # the example's warning rules fail, no error rule does: warn, exit 0 (the Status contract)
    assert "crmtool clean: run 2" in last and " warn exit=0 rows_in=303 rows_out=297 rejected=6" in last
    code, _o, err = cli("clean", tmp_path / "missing.csv", "-r", RULES, "--out", tmp_path / "out",
                        "-w", tmp_path / "w.duckdb", "-q", "--log-file", log)
    assert code == 2
    last = log.read_text(encoding="utf-8").splitlines()[-1]
    # clean had started its run before it found the input missing: the line names it (issue 16)
    assert "ERROR crmtool clean: run 2" in last and " error exit=2" in last
    assert "error exit=2" in err  # cron mails it even with --quiet


def test_log_file_says_checks_failed(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\nrules:\n  - kind: required\n    column: phone\n    severity: error\n"
                     "    action: flag\n", encoding="utf-8")
    log = tmp_path / "crm.log"
    code, out, err = cli("validate", EXAMPLES / "clientes.csv", "-r", rules, "-w", tmp_path / "w.duckdb",
                         "-q", "--log-file", log)
    assert code == 1
    assert out == ""
    last = log.read_text(encoding="utf-8").splitlines()[-1]
    assert "crmtool validate: run 2" in last and "fail exit=1 rows=301" in last
    assert "fail exit=1" in err


def test_segment_diff_list_runs(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    for day in ("2026-11-01", "2026-11-02"):
        code, _o, err = cli("segment", EXAMPLES / "clientes.csv", "--segments", ROOT / "segments.yaml",
                            "--out", tmp_path / day, "-w", db, "--as-of", day, "-q")
        assert code == 0, err
    code, out, err = cli("segment", "diff", "--list-runs", "-w", db)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "as of 2026-11-01" in lines[0] and "as of 2026-11-02" in lines[1]


def test_retention_rewrites_the_latest_days_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nightly cleans into dated folders: retention must rewrite the newest (whose rows are the
    workspace's cleaned table), not only the older one that sorts first; since issue 11 it reaches
    every kept version, so yesterday's file is anonymised too."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "w.duckdb"
    for day in ("2026-11-01", "2026-11-02"):
        code, _o, err = cli("clean", EXAMPLES / "clientes.csv", "-r", RULES, "--out", tmp_path / day, "-w", db, "-q")
        assert code in (0, 1), err
    old_day = tmp_path / "2026-11-01" / "clientes.clean.csv"
    before_old = old_day.read_bytes()
    code, out, err = cli("retention", "apply", "-r", RULES, "--out", tmp_path / "2026-11-02", "-w", db,
                         "--as-of", "2026-11-02")
    assert code == 0, err
    new_day = tmp_path / "2026-11-02" / "clientes.clean.csv"
    assert f"new version of {new_day}" in out.replace("\n", "") or str(new_day) in out
    assert old_day.read_bytes() != before_old  # every kept version is anonymised too
    for day in (old_day, new_day):
        with day.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert any(not r["email"] and not r["first_name"] for r in rows), day
