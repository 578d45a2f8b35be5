"""Issue 16, CI: unparseable rows count, results a machine can trust, validate changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from jsonschema import Draft202012Validator

from crmtool.report import results_schema

from .conftest import EXAMPLE, FOUNDATION_RULES, RULES, broken_export, cli, listing

RULE = "rules:\n  - {name: email_ok, kind: email, column: email}\n"


def _rules(folder: Path, dataset: str = "") -> Path:
    path = folder / "r.yaml"
    path.write_text((f"dataset:\n{dataset}" if dataset else "") + RULE, encoding="utf-8")
    return path


def _junit_cases(stdout: str) -> dict[str, ET.Element]:
    root = ET.fromstring(stdout.split("\n", 1)[1])
    return {c.get("name") or "": c for c in root.iter("testcase")}


# --- 1. unparseable rows ----------------------------------------------------------------------

def test_a_broken_export_fails_the_junit_gate(tmp_path: Path) -> None:
    data = broken_export(tmp_path / "broken.csv")
    result = cli("validate", data, "--rules", _rules(tmp_path), "--format", "junit")
    assert result.exit_code == 1, result.output
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    assert root.get("failures") == "1"
    case = _junit_cases(result.stdout)["unparseable_rows"]
    failure = case.find("failure")
    assert failure is not None
    assert "10 of 20 rows failed (50.00%); threshold 0" in (failure.get("message") or "")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["threshold"] == "0" and props["failed"] == "10" and props["status"] == "fail"
    assert props["example_lines"] == "3, 5, 7, 9, 11"


@pytest.mark.parametrize(("threshold", "code", "status"), [("10", 0, "pass"), ("9", 1, "fail"),
                                                           ("'50%'", 0, "pass"), ("'49.9%'", 1, "fail")])
def test_max_unparseable_count_or_share(tmp_path: Path, threshold: str, code: int, status: str) -> None:
    data = broken_export(tmp_path / "broken.csv")
    rules = _rules(tmp_path, f"  max_unparseable: {threshold}\n")
    result = cli("validate", data, "--rules", rules, "--format", "json")
    assert result.exit_code == code, result.output
    check = json.loads(result.stdout)["rules"][0]
    assert (check["rule"], check["kind"], check["failed"], check["status"]) == ("unparseable_rows", "parse", 10,
                                                                                 status)


def test_unparseable_rows_in_text_and_clean(tmp_path: Path) -> None:
    data = broken_export(tmp_path / "broken.csv")
    rules = _rules(tmp_path)
    text = cli("validate", data, "--rules", rules)
    assert text.exit_code == 1
    assert "FAIL unparseable_rows: 10 of 20 rows (50.0%), threshold 0" in text.stdout
    assert "e.g. lines 3, 5, 7, 9, 11" in text.stdout
    cleaned = cli("clean", data, "--rules", rules, "--out", tmp_path / "out", "-w", ":memory:", "-q",
                  env={"CRMTOOL_KEY": "test-key-0123456789abcdef"})
    assert cleaned.exit_code == 1  # the outputs are written, the run says it failed
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "fail" and manifest["rules"][0]["rule"] == "unparseable_rows"


def test_max_unparseable_must_be_a_threshold(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "  max_unparseable: lots\n")
    result = cli("rules", "lint", rules)
    assert result.exit_code == 2
    assert f"{rules}:2: dataset/max_unparseable" in result.stderr


# --- 2. results a machine can trust -----------------------------------------------------------

def test_rules_schema_results_is_published() -> None:
    result = cli("rules", "schema", "results")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    assert schema == results_schema()
    assert schema["properties"]["schema_version"] == {"const": 1}


def test_json_results_validate_against_the_schema(tmp_path: Path) -> None:
    validator = Draft202012Validator(results_schema())
    env = {"CRMTOOL_KEY": "test-key-0123456789abcdef"}
    payloads = {
        "validate": cli("validate", EXAMPLE, "--rules", RULES, "--format", "json"),
        "validate_fail": cli("validate", broken_export(tmp_path / "b.csv"), "--rules", _rules(tmp_path),
                             "--format", "json"),
        "clean": cli("clean", EXAMPLE, *[x for f in FOUNDATION_RULES for x in ("--rules", f)], "--out",
                     tmp_path / "o", "-w", ":memory:", "--format", "json", env=env),
        "profile": cli("profile", EXAMPLE, "--format", "json"),
    }
    for name, result in payloads.items():
        assert result.exit_code in (0, 1), (name, result.output)
        payload = json.loads(result.stdout)
        errors = [e.message for e in validator.iter_errors(payload)]
        assert errors == [], (name, errors)
        assert payload["schema_version"] == 1
    # the schema is not a rubber stamp: a wrong status word or a missing field is refused
    bad = json.loads(payloads["validate"].stdout)
    bad["rules"][0]["status"] = "FAILED"
    del bad["rules"][1]["threshold"]
    assert len(list(validator.iter_errors(bad))) == 2


def test_status_words_are_the_status_enum(tmp_path: Path) -> None:
    from crmtool.status import Status

    payload = json.loads(cli("validate", EXAMPLE, "--rules", RULES, "--format", "json").stdout)
    words = {payload["status"], *(r["status"] for r in payload["rules"])}
    assert words <= {s.value for s in Status}
    assert payload["status"] == "warn"  # warnings, no failure: exit 0


def test_junit_shows_warnings_thresholds_and_timings() -> None:
    result = cli("validate", EXAMPLE, "--rules", RULES, "--format", "junit")
    assert result.exit_code == 0
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and float(suite.get("time") or "-1") >= 0
    suite_props = {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}
    cases = _junit_cases(result.stdout)
    warned = [n for n, c in cases.items() if c.find("system-out") is not None]
    assert warned and suite_props["warnings"] == str(len(warned))
    for name, case in cases.items():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert "threshold" in props and "severity" in props, name
        assert float(case.get("time") or "-1") >= 0
        if name in warned:
            assert props["status"] == "warn"
            assert "threshold" in (case.findtext("system-out") or "")


# --- 3. validate changes nothing --------------------------------------------------------------

def test_validate_leaves_no_file_lock_or_key(in_tmp: Path) -> None:
    data = in_tmp / "data"
    data.mkdir()
    export = broken_export(data / "x.csv")
    rules = _rules(data, "  max_unparseable: '50%'\n")
    before = listing(in_tmp)
    for fmt in ("text", "json", "junit"):
        assert cli("validate", export, "--rules", rules, "--format", fmt).exit_code == 0
    assert listing(in_tmp) == before
    # the environment's workspace is not validate's: CI jobs set it for the other commands
    assert cli("validate", export, "--rules", rules, env={"CRMTOOL_WORKSPACE": "ws.duckdb"}).exit_code == 0
    assert listing(in_tmp) == before


def test_validate_against_a_workspace_creates_no_key(in_tmp: Path) -> None:
    export = broken_export(in_tmp / "x.csv")
    rules = _rules(in_tmp, "  max_unparseable: '50%'\n")
    assert cli("validate", export, "--rules", rules, "--workspace", "ws.duckdb").exit_code == 0
    # the workspace named (and its lock file), but no key file: validate hashes with a key in memory
    assert sorted(p.name for p in in_tmp.iterdir()) == ["r.yaml", "ws.duckdb", "ws.duckdb.lock", "x.csv"]


@pytest.mark.parametrize("workspace", [None, "ws.duckdb"])
def test_a_configuration_error_creates_no_files(in_tmp: Path, workspace: str | None) -> None:
    export = broken_export(in_tmp / "x.csv")
    bad = in_tmp / "bad.yaml"
    bad.write_text("dataset:\n  kye: id\nrules:\n  - {name: a, kind: regex, column: email, pattern: '('}\n",
                   encoding="utf-8")
    before = listing(in_tmp)
    args = ["validate", export, "--rules", bad] + (["--workspace", workspace] if workspace else [])
    result = cli(*args)
    assert result.exit_code == 2
    assert "(did you mean 'key'?)" in result.stderr and f"{bad}:2:" in result.stderr
    assert listing(in_tmp) == before
