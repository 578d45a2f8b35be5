"""Regression tests for bugs found in api.py, workspace.py, cli/core_cmd.py and engine.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clientes.csv"
RULES = [ROOT / "rules" / "10-normalise.yaml", ROOT / "rules" / "20-checks.yaml"]


def _clean(source: Path, out: Path, *rules: Path) -> int:
    args = ["clean", str(source), "--out", str(out), "--workspace", ":memory:", "-q"]
    for r in rules or RULES:
        args += ["--rules", str(r)]
    return CliRunner().invoke(app, args).exit_code


def test_clean_never_overwrites_its_input_even_when_named_like_an_output(tmp_path: Path) -> None:
    # api.clean names outputs <stem>.clean.<fmt> with stem = name up to the first dot, so an input
    # called data.clean.csv cleaned with --out its own folder is replaced by its cleaned version
    source = tmp_path / "data.clean.csv"
    shutil.copyfile(EXAMPLE, source)
    before = source.read_bytes()
    code = _clean(source, tmp_path)
    assert source.read_bytes() == before
    # outputs keep the whole input name before the suffix, so they cannot collide with it
    assert code == 0
    assert (tmp_path / "data.clean.clean.csv").exists() and (tmp_path / "data.clean.rejects.csv").exists()


def test_audit_record_key_is_the_trimmed_id(tmp_path: Path) -> None:
    # the contract: customer id -> trimmed text before hashing; the audit hashes the raw loaded value
    source = tmp_path / "c.csv"
    source.write_text("id,name\n C1 ,ana\nC2,bo\n", encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("dataset: {key: id}\nrules:\n  - {name: t, kind: trim, column: id}\n"
                     "  - {name: c, kind: case, column: name, to: title}\n", encoding="utf-8")
    assert _clean(source, tmp_path / "out", rules) == 0
    res = CliRunner().invoke(app, ["audit", "show", str(tmp_path / "out" / "crmtool.audit"), "--record", "C1"])
    entries = [json.loads(line) for line in res.stdout.splitlines()]
    assert {e["field"] for e in entries} == {"id", "name"}  # fails: no entry found for C1


def test_failed_clean_leaves_no_partial_output(tmp_path: Path) -> None:
    # api.clean writes the clean file, then the rejects file: when the second write fails (here a
    # rejected row cp1252 cannot hold) exit is 2 but <name>.clean.csv stays behind without manifest
    source = tmp_path / "enc.csv"
    source.write_text("id,name\n1,Ana\n1,日本\n", encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: u, kind: unique, column: id, action: reject}\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["clean", str(source), "--rules", str(rules), "--out", str(out),
                                      "--workspace", ":memory:", "-q", "--encoding", "cp1252"])
    assert result.exit_code == 2
    assert not out.exists() or list(out.iterdir()) == []


def test_failed_clean_takes_back_its_audit_entries(tmp_path: Path) -> None:
    # the audit entries are built before the outputs are written: when writing fails, the log must
    # be left exactly as it was (and still verify), not hold half a run
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: u, kind: unique, column: id, action: reject, severity: warning}\n"
                     "  - {name: t, kind: trim, column: name}\n", encoding="utf-8")
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("id,name\n1, Ana\n1,Bo\n", encoding="utf-8")
    bad.write_text("id,name\n1, Ana\n1,日本\n", encoding="utf-8")
    out, log = tmp_path / "out", tmp_path / "audit"
    args = ["--rules", str(rules), "--out", str(out), "--workspace", ":memory:", "-q", "--encoding", "cp1252",
            "--audit-log", str(log)]
    assert CliRunner().invoke(app, ["clean", str(good), *args]).exit_code == 0
    def state() -> dict[str, bytes]:
        files = sorted(p for p in log.rglob("*") if p.is_file() and p.name != "lock")
        return {str(p.relative_to(log)): p.read_bytes() for p in files}

    before = state()
    assert CliRunner().invoke(app, ["clean", str(bad), *args]).exit_code == 2
    assert state() == before
    assert CliRunner().invoke(app, ["audit", "verify", str(log)]).exit_code == 0


def test_workspace_below_a_file_is_exit_2(tmp_path: Path) -> None:
    # workspace.py: Workspace.open() calls db.parent.mkdir() unguarded: FileExistsError traceback, exit 1
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(EXAMPLE), "--rules", str(RULES[0]),
                                      "--workspace", str(tmp_path / "afile" / "ws.duckdb")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_validate_fail_on_warning_junit_and_json_agree_with_the_exit_code(tmp_path: Path) -> None:
    # cli/core_cmd.py validate: with --fail-on warning the exit is 1, but the JUnit shows every case
    # passing and the JSON says "status": "pass"; fix: report.to_junit(payload, fail_on_warning=...)
    # and set payload["status"] = "fail" when `failed`
    from xml.etree import ElementTree as ET

    rules = tmp_path / "r.yaml"
    rules.write_text("dataset: {max_unparseable: 2}\n"
                     "rules:\n  - {name: p, kind: phone, column: phone, severity: warning}\n", encoding="utf-8")
    base = ["validate", str(EXAMPLE), "--rules", str(rules), "--workspace", ":memory:", "--fail-on", "warning"]
    junit = CliRunner().invoke(app, [*base, "--format", "junit"])
    assert junit.exit_code == 1
    assert ET.fromstring(junit.stdout.split("\n", 1)[1]).get("failures") == "1"
    as_json = CliRunner().invoke(app, [*base, "--format", "json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "fail"


def test_bad_memory_limit_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    # workspace.py: CRMTOOL_MEMORY_LIMIT=lots -> DuckDB ParserException traceback (exit 1) from
    # `SET memory_limit`; expected a one-line usage error naming the variable
    monkeypatch.setenv("CRMTOOL_MEMORY_LIMIT", "lots")
    result = CliRunner().invoke(app, ["validate", str(EXAMPLE), "--rules", str(RULES[0]), "--workspace", ":memory:"])
    assert result.exit_code == 2
    assert "CRMTOOL_MEMORY_LIMIT" in result.stderr


def test_a_run_that_fails_is_recorded_as_finished(tmp_path: Path) -> None:
    # api.py _load and _check: start_run() comes before loading and checking; an error after it (here
    # a rule naming a missing column) leaves crm_runs with status/exit_code/finished_at NULL forever
    import duckdb

    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: p, kind: phone, column: telefono}\n", encoding="utf-8")
    ws = tmp_path / "ws.duckdb"
    result = CliRunner().invoke(app, ["validate", str(EXAMPLE), "--rules", str(rules), "--workspace", str(ws)])
    assert result.exit_code == 2
    with duckdb.connect(str(ws), read_only=True) as con:
        rows = con.execute("SELECT status, exit_code, finished_at IS NOT NULL FROM crm_runs").fetchall()
    assert rows == [("error", 2, True)]



def test_where_naming_a_column_called_like_a_mapping_column_is_not_ambiguous(tmp_path: Path) -> None:
    # fixes of mapped kinds (case title, mojibake, decimal, phone, ...) join a temp table m(value, new|e164|...)
    # and the engine pastes the rule's `where` unqualified into that query: a data column named `value`
    # (or new, e164, compact, ok, normalized, detail) makes DuckDB raise "Ambiguous reference": a
    # traceback and exit 1 instead of a run (or a one-line error and exit 2)
    source = tmp_path / "d.csv"
    source.write_text("id,value,name\n1,a,ANA\n2,,BO\n", encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: c, kind: case, column: name, to: title, where: \"value <> ''\"}\n",
                     encoding="utf-8")
    result = CliRunner().invoke(app, ["clean", str(source), "--rules", str(rules), "--out", str(tmp_path / "o"),
                                      "--workspace", ":memory:", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "d.clean.csv").read_text(encoding="utf-8").splitlines()[1:] == ["1,a,Ana", "2,,BO"]


def test_decimal_rule_leaves_typed_numbers_alone(tmp_path: Path) -> None:
    # the engine casts every column a fix rule touches to VARCHAR before planning, so the decimal kind
    # sees the Parquet DOUBLE 1.234 as the text '1.234' and, with decimal_comma (the default), reads
    # the point as a thousands separator: 1.234 becomes 1234
    import duckdb

    source = tmp_path / "d.parquet"
    duckdb.sql(f"COPY (SELECT * FROM (VALUES (1, 1.234::DOUBLE), (2, 1234.5::DOUBLE)) v(id, amt)) "
               f"TO '{source}' (FORMAT parquet)")
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: d, kind: decimal, column: amt}\n", encoding="utf-8")
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["clean", str(source), "--rules", str(rules), "--out", str(out),
                                      "--workspace", ":memory:", "-q", "--output-format", "csv"])
    assert result.exit_code == 0
    assert (out / "d.clean.csv").read_text(encoding="utf-8").splitlines() == ["id,amt", "1,1.234", "2,1234.5"]


def test_a_sql_rule_failing_at_run_time_is_a_one_line_error_without_values(tmp_path: Path) -> None:
    # the expression binds (so the LIMIT 0 check passes) but fails on the data: DuckDB's
    # ConversionException escapes run_rules as a traceback, exit 1, quoting a customer's name
    rules = tmp_path / "r.yaml"
    rules.write_text('rules:\n  - {name: s, kind: sql, expr: "CAST(first_name AS INTEGER) > 0"}\n', encoding="utf-8")
    example = Path(__file__).resolve().parents[2] / "examples" / "clientes.csv"
    result = CliRunner().invoke(app, ["validate", str(example), "--rules", str(rules), "--workspace", ":memory:"])
    assert result.exit_code == 2
    assert "rule 's'" in result.stderr and str(rules) in result.stderr
    assert "Íñigo" not in result.output and "Traceback" not in result.output
