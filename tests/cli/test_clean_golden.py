"""The CLI end to end on examples/clientes.csv: exit codes, formats, golden outputs, reruns, keys, lock.

Golden files live in tests/golden/cli/; refresh them with ``CRMTOOL_UPDATE_GOLDEN=1 pytest
tests/cli/test_clean_golden.py`` after a deliberate change, and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner, Result

from crmtool.cli import app
from goldens import check_golden

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clientes.csv"
RULES = ROOT / "rules"
# the foundation's own rule files (other features add files with their own sections to rules/)
FOUNDATION_RULES = [RULES / "10-normalise.yaml", RULES / "20-checks.yaml"]
MASK = "<masked>"


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _rules_args(files: list[Path] = FOUNDATION_RULES) -> list[str | Path]:
    return [x for f in files for x in ("--rules", f)]


def _clean(out: Path, *extra: str | Path, input: Path = EXAMPLE) -> Result:
    return cli("clean", input, *_rules_args(), "--out", out, "--workspace", ":memory:", *extra)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Result, Path]]:
    out = tmp_path_factory.mktemp("cli") / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef")
    try:
        yield _clean(out, "--format", "json"), out
    finally:
        mp.undo()


# --- exit codes -------------------------------------------------------------------------------

def test_clean_exits_0_and_writes_every_output(first_run: tuple[Result, Path]) -> None:
    result, out = first_run
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clientes.clean.csv", "clientes.rejects.csv",
                                                     "crmtool.audit", "manifest.json"]
    assert "Traceback" not in result.stderr


def test_clean_with_the_whole_rules_folder_exits_0(tmp_path: Path) -> None:
    result = cli("clean", EXAMPLE, "--rules", RULES, "--out", tmp_path / "o", "--workspace", ":memory:", "-q")
    assert result.exit_code == 0, result.stderr


def test_validate_exit_1_when_an_error_rule_fails(tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("rules:\n  - {name: p, kind: phone, column: phone}\n", encoding="utf-8")
    result = cli("validate", EXAMPLE, "--rules", strict, "--workspace", ":memory:", "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["status"] == "fail"
    # the example's two broken lines fail too: without dataset.max_unparseable none is tolerated
    assert [(r["rule"], r["status"], r["failed"]) for r in payload["rules"]] == [
        ("unparseable_rows", "fail", 2), ("p", "fail", 15)]


def test_validate_fail_on_warning(tmp_path: Path) -> None:
    lax = tmp_path / "lax.yaml"
    lax.write_text("dataset: {max_unparseable: 2}\n"
                   "rules:\n  - {name: p, kind: phone, column: phone, severity: warning}\n", encoding="utf-8")
    base = ("validate", EXAMPLE, "--rules", lax, "--workspace", ":memory:", "-q")
    assert cli(*base).exit_code == 0
    assert cli(*base, "--fail-on", "warning").exit_code == 1
    assert cli(*base, "--fail-on", "sometimes").exit_code == 2


@pytest.mark.parametrize("case", ["missing_input", "config_error", "missing_column", "binary_input", "out_is_file"])
def test_exit_2_with_one_message_and_no_output(tmp_path: Path, case: str) -> None:
    out = tmp_path / "out"
    rules: list[Path] = FOUNDATION_RULES
    source = EXAMPLE
    if case == "missing_input":
        source = tmp_path / "nope.csv"
    elif case == "config_error":
        rules = [tmp_path / "bad.yaml"]
        rules[0].write_text("rules:\n  - {name: a, kind: regex, column: email, pattern: '('}\n", encoding="utf-8")
    elif case == "missing_column":
        rules = [tmp_path / "bad.yaml"]
        rules[0].write_text("rules:\n  - {name: a, kind: phone, column: telefono}\n", encoding="utf-8")
    elif case == "binary_input":
        source = tmp_path / "x.csv"
        source.write_bytes(bytes(range(256)) * 8)
    elif case == "out_is_file":
        out.write_text("x", encoding="utf-8")
    result = cli("clean", source, *_rules_args(rules), "--out", out, "--workspace", ":memory:")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("error:")]) == 1
    if case == "out_is_file":
        assert out.read_text(encoding="utf-8") == "x"
    else:
        assert not out.exists()
    if case in ("config_error", "missing_column"):
        assert f"{rules[0]}:2: rule 'a'" in result.stderr


def test_exit_3_when_the_workspace_lock_is_held(tmp_path: Path) -> None:
    from filelock import FileLock

    ws = tmp_path / "ws.duckdb"
    env = {**os.environ, "CRMTOOL_KEY": "test-key-0123456789abcdef"}
    with FileLock(str(ws) + ".lock"):
        proc = subprocess.run(
            [sys.executable, "-m", "crmtool", "validate", str(EXAMPLE), "--rules", str(FOUNDATION_RULES[1]),
             "--workspace", str(ws), "--lock-timeout", "0.2"],
            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "in use by another crmtool run" in proc.stderr
    assert "Traceback" not in proc.stderr
    # once released, the same command runs
    assert cli("validate", EXAMPLE, *_rules_args(), "--workspace", ws, "-q").exit_code == 0


# --- formats ----------------------------------------------------------------------------------

def test_clean_json_is_the_manifest(first_run: tuple[Result, Path]) -> None:
    result, out = first_run
    payload = json.loads(result.stdout)
    assert payload == json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_validate_json_and_junit(tmp_path: Path) -> None:
    base = ("validate", EXAMPLE, *_rules_args(), "--workspace", ":memory:")
    as_json = cli(*base, "--format", "json")
    assert as_json.exit_code == 0
    payload = json.loads(as_json.stdout)
    names = [r["rule"] for r in payload["rules"]]
    assert payload["status"] == "warn" and payload["rows"] == 301 and payload["parse_rejects"] == 2
    assert payload["schema_version"] == 1 and names[0] == "unparseable_rows"
    assert payload["detected"] == {"format": "csv", "encoding": "cp1252", "delimiter": ";"}
    as_junit = cli(*base, "--format", "junit")
    assert as_junit.exit_code == 0
    root = ET.fromstring(as_junit.stdout.split("\n", 1)[1])
    assert root.tag == "testsuites" and root.get("failures") == "0"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == names
    warned = {c.get("name") for c in cases if c.find("system-out") is not None}
    assert warned == {r["rule"] for r in payload["rules"] if r["status"] == "warn"}


def test_junit_failure_case(tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("dataset:\n  max_unparseable: 1%\nrules:\n  - {name: p, kind: phone, column: phone}\n",
                      encoding="utf-8")
    result = cli("validate", EXAMPLE, "--rules", strict, "--workspace", ":memory:", "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "phone"
    assert (failure.text or "").strip() == "15 x not a valid phone number"
    assert f"source {strict}:4" in (failure.get("message") or "")


# --- golden files -----------------------------------------------------------------------------

def _mask_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    m = json.loads(json.dumps(manifest))
    for key in ("run_id", "started_at", "finished_at", "timings_seconds"):
        m[key] = MASK
    m["audit"]["head_sha256"] = MASK
    m["audit"]["path"] = Path(m["audit"]["path"]).name
    step = m.get("step", {})
    for entry in (*m["inputs"], *m["outputs"], *m["rule_files"], *step.get("inputs", ()), *step.get("outputs", ())):
        entry["path"] = Path(entry["path"]).name
    for rule in m["rules"]:
        rule["source"] = Path(rule["source"]).name
        if "seconds" in rule:
            rule["seconds"] = MASK
    return m



@pytest.mark.parametrize("name", ["clientes.clean.csv", "clientes.rejects.csv"])
def test_golden_outputs(first_run: tuple[Result, Path], name: str) -> None:
    check_golden(f"cli/{name}", (first_run[1] / name).read_bytes())


def test_golden_manifest(first_run: tuple[Result, Path]) -> None:
    manifest = json.loads((first_run[1] / "manifest.json").read_text(encoding="utf-8"))
    text = json.dumps(_mask_manifest(manifest), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    check_golden("cli/manifest.json", text.encode("utf-8"))


def test_rejects_carry_parse_rejects_with_line_numbers_and_rule_reasons(first_run: tuple[Result, Path]) -> None:
    import csv

    with (first_run[1] / "clientes.rejects.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    parse = [r for r in rows if r["_rejected_by"] == "parse"]
    assert len(parse) == 2 and all(r["_line"] and r["_raw"] for r in parse)
    assert all(r["_row"] == "" for r in parse)
    by_rule = [r for r in rows if r["_rejected_by"] != "parse"]
    assert {r["_rejected_by"] for r in by_rule} == {"id_unique"}
    assert all(r["_reasons"] == "id_unique: repeats the key of an earlier row" for r in by_rule)


# --- reruns, input untouched, formats of output ----------------------------------------------

def test_reruns_are_byte_identical_and_the_audit_chain_continues(first_run: tuple[Result, Path],
                                                                tmp_path: Path) -> None:
    _, first = first_run
    again = tmp_path / "again"
    assert _clean(again, "-q").exit_code == 0
    for name in ("clientes.clean.csv", "clientes.rejects.csv"):
        assert (again / name).read_bytes() == (first / name).read_bytes()
    before = (again / "crmtool.audit" / "chain.jsonl").read_bytes()
    assert _clean(again, "-q").exit_code == 0  # into the same folder: the log grows by one run
    assert (again / "crmtool.audit" / "chain.jsonl").read_bytes().startswith(before)
    verify = cli("audit", "verify", again / "crmtool.audit", "--manifest", again / "manifest.json")
    assert verify.exit_code == 0
    assert " in 2 runs" in verify.stdout


def test_input_bytes_and_mtime_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "clientes.csv"
    shutil.copyfile(EXAMPLE, source)
    os.utime(source, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    data = source.read_bytes()
    assert _clean(tmp_path / "out", "-q", input=source).exit_code == 0
    assert source.read_bytes() == data
    assert source.stat().st_mtime_ns == 1_600_000_000_123_456_789
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clientes.csv", "out"]


def test_cp1252_output_encoding(first_run: tuple[Result, Path], tmp_path: Path) -> None:
    assert _clean(tmp_path / "o", "-q", "--encoding", "cp1252").exit_code == 0
    utf8 = (first_run[1] / "clientes.clean.csv").read_text(encoding="utf-8")
    assert (tmp_path / "o" / "clientes.clean.csv").read_bytes() == utf8.encode("cp1252")


def test_parquet_in_parquet_out(first_run: tuple[Result, Path], tmp_path: Path) -> None:
    import duckdb

    source = tmp_path / "clientes.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv('{first_run[1] / 'clientes.clean.csv'}', all_varchar=true)) "
                    f"TO '{source}' (FORMAT parquet)")
        assert _clean(tmp_path / "o", "-q", input=source).exit_code == 0
        out = tmp_path / "o" / "clientes.clean.parquet"
        assert out.read_bytes()[:4] == b"PAR1"
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()
    assert rows == [(297,)]  # already clean, only the repeated ids are rejected again (minus parse rejects)


# --- keys ---------------------------------------------------------------------------------------

def test_key_file_is_created_owner_only_when_no_key_is_configured(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMTOOL_KEY", raising=False)
    monkeypatch.delenv("CRMTOOL_KEY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    ws = tmp_path / "ws" / "crm.duckdb"
    args = ("clean", EXAMPLE, *_rules_args(), "--out", tmp_path / "out", "--workspace", ws)
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    key = tmp_path / "ws" / "crm.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text(encoding="utf-8").strip()) == 64
    assert f"created a new key for keyed hashes at {key}" in first.stderr
    fingerprint = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["key_fingerprint"]
    second = cli(*args)
    assert second.exit_code == 0
    assert "created a new key" not in second.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["key_fingerprint"] == fingerprint
    secret = key.read_text(encoding="utf-8").strip().encode()
    assert all(secret not in f.read_bytes() for f in (tmp_path / "out").rglob("*") if f.is_file())


@pytest.mark.parametrize("which", ["missing", "folder", "too_short"])
def test_unreadable_key_file_stops_with_exit_2_before_any_output(tmp_path: Path, which: str) -> None:
    key = tmp_path / "key"
    if which == "folder":
        key.mkdir()
    elif which == "too_short":
        key.write_text("short\n", encoding="utf-8")
    out = tmp_path / "out"
    result = _clean(out, "--key-file", key)
    assert result.exit_code == 2
    assert f"key file {key}" in result.stderr
    assert not out.exists()



def test_an_audit_log_that_is_a_file_stops_with_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef")
    log = tmp_path / "audit.jsonl"  # a log of format 1 (JSON Lines); a log is now a folder
    log.write_text("{}\n", encoding="utf-8")
    out = tmp_path / "out"
    result = _clean(out, "--audit-log", log)
    assert result.exit_code == 2
    assert f"the audit log {log} is a file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_a_full_disk_while_the_log_is_written_stops_with_exit_2_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from crmtool.audit import writer

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef")
    monkeypatch.setattr(writer.os, "fsync", full)  # where a full disk shows itself on a write-back cache
    out = tmp_path / "out"
    result = _clean(out)
    assert result.exit_code == 2
    assert "cannot write the audit log" in result.stderr and "(No space left on device)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()  # no outputs, and the log folder the run created is taken back

# --- help ---------------------------------------------------------------------------------------

def _command_paths() -> list[tuple[str, ...]]:
    import typer.main

    paths: list[tuple[str, ...]] = [()]

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, command in sorted(getattr(group, "commands", {}).items()):
            paths.append((*prefix, name))
            walk(command, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return paths


def test_every_command_has_help() -> None:
    paths = _command_paths()
    assert {("clean",), ("validate",), ("profile",), ("rules", "lint"), ("rules", "schema"), ("audit", "verify"),
            ("audit", "show")} <= set(paths)
    for path in paths:
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.stderr)
        assert "Usage" in result.stdout, path


def test_version() -> None:
    from crmtool import __version__

    assert cli("--version").stdout.strip() == f"crmtool {__version__}"


def test_log_file_gets_only_its_own_run(tmp_path: Path) -> None:
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    for log in logs:
        result = cli("validate", EXAMPLE, *_rules_args(), "--workspace", ":memory:", "-q", "--log-file", log)
        assert result.exit_code == 0
        assert result.stderr == ""  # --quiet
    first, second = (log.read_text(encoding="utf-8") for log in logs)
    assert first.count("INFO clientes.csv: csv, encoding cp1252") == 1
    assert second.count("INFO clientes.csv: csv, encoding cp1252") == 1


def test_clean_text_output_says_what_was_detected_and_done(tmp_path: Path) -> None:
    result = _clean(tmp_path / "out")
    assert result.exit_code == 0
    assert ("clientes.csv: csv, encoding cp1252, delimiter semicolon, 301 rows, 14 columns, "
            "2 unparseable rows") in result.stderr
    assert "rows in 303, kept 297, rejected 6 (2 unparseable), values fixed" in result.stdout
    assert "\x1b[" not in result.stdout + result.stderr  # not a TTY: no colour, no progress bar
    # the example's warning rules fail, no error rule does: the status word is WARN (exit 0)
    assert "run " in result.stdout.splitlines()[-1] and result.stdout.rstrip().endswith("WARN")


def test_validate_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "clientes.csv"
    shutil.copyfile(EXAMPLE, source)
    monkeypatch.chdir(tmp_path)
    result = cli("validate", source, *_rules_args(), "--workspace", ":memory:", "-q")
    assert result.exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["clientes.csv"]
    assert source.read_bytes() == EXAMPLE.read_bytes()


def test_help_does_not_import_heavy_libraries() -> None:
    # STYLE: heavy libraries are imported where used, so `crmtool --help` answers fast
    heavy = ["duckdb", "polars", "pyarrow", "rapidfuzz", "dns", "phonenumbers", "email_validator", "ftfy",
             "jsonschema", "stdnum"]
    code = ("import sys; from crmtool.cli import app; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == ""


def test_log_file_in_a_new_folder_is_created_and_an_unwritable_one_is_exit_2(tmp_path: Path) -> None:
    base = ("validate", EXAMPLE, *_rules_args(), "--workspace", ":memory:", "-q")
    nested = tmp_path / "logs" / "crm" / "run.log"
    assert cli(*base, "--log-file", nested).exit_code == 0
    assert "INFO" in nested.read_text(encoding="utf-8")
    result = cli(*base, "--log-file", tmp_path)  # a folder
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --log-file {tmp_path} cannot be written")
    assert "Traceback" not in result.stderr


def test_junit_can_count_warnings_as_failures() -> None:
    from crmtool.report import to_junit

    rule = {"rule": "w", "kind": "phone", "failed": 2, "checked": 10, "failed_share": 0.2, "threshold": "0",
            "source": "r.yaml:3", "reasons": {"not a valid phone number": 2}, "status": "warn"}
    plain = ET.fromstring(to_junit({"input": "x.csv", "rules": [rule]}).split("\n", 1)[1])
    strict = ET.fromstring(to_junit({"input": "x.csv", "rules": [rule]}, fail_on_warning=True).split("\n", 1)[1])
    assert plain.get("failures") == "0" and plain.find("./testsuite/testcase/system-out") is not None
    assert strict.get("failures") == "1"
    failure = strict.find("./testsuite/testcase/failure")
    assert failure is not None and failure.text == "2 x not a valid phone number"


def test_paths_with_an_apostrophe(tmp_path: Path) -> None:
    folder = tmp_path / "d'Angelo"
    folder.mkdir()
    source = folder / "clientes.csv"
    shutil.copyfile(EXAMPLE, source)
    out = folder / "o'out"
    assert _clean(out, "-q", input=source).exit_code == 0
    assert _clean(out, "-q", "--output-format", "parquet", input=source).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["clientes.clean.csv", "clientes.clean.parquet",
                                                     "clientes.rejects.csv", "clientes.rejects.parquet",
                                                     "crmtool.audit", "manifest.json"]
    assert cli("audit", "verify", out / "crmtool.audit").exit_code == 0


def test_progress_on_a_terminal_is_a_bar_with_counts() -> None:
    import io

    from rich.console import Console

    from crmtool.cli.common import Ui

    ui = Ui()
    ui.interactive, ui.quiet = True, False
    buffer = io.StringIO()
    ui.err = Console(file=buffer, force_terminal=True, width=100)
    with ui.progress("cleaning") as progress:
        progress("loading")
        progress("checking email", 2, 5)
    shown = buffer.getvalue()
    assert "cleaning: checking email" in shown
    assert "2/5" in shown
    assert "━" in shown  # the bar itself


def test_progress_off_a_terminal_goes_to_the_log_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crmtool.cli.common import Ui

    log_file = tmp_path / "run.log"
    ui = Ui(log_file=log_file)
    ui.interactive = False
    with ui.progress("cleaning") as progress:
        progress("checking email", 2, 5)
    assert "cleaning: checking email (2/5)" in log_file.read_text(encoding="utf-8")
    assert "checking email" not in capsys.readouterr().err
