"""No traceback, no half-written run: odd encodings, spreadsheet formulas, a full disk, Ctrl-C and
configuration errors in sections each end in one clear line and the documented exit code, with the
previous outputs untouched. Through the command line (CliRunner or a real subprocess)."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
RULES = "rules:\n  - {name: e, kind: email, column: email}\n"


def _rules(tmp_path: Path, text: str = RULES) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _clean(tmp_path: Path, data: Path, rules: Path, out: Path) -> object:
    return CliRunner().invoke(app, ["clean", str(data), "--rules", str(rules), "--out", str(out),
                                    "--workspace", ":memory:"])


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- encodings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "payload", "words"), [
    ("bom_cp1252", b"\xef\xbb\xbfid;name;email\n1;Mu\xf1oz;a@b.es\n", "byte-order mark but is not UTF-8"),
    ("utf16_no_bom", "id,name,email\n1,Muñoz,a@b.es\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    ("utf16be_no_bom", "id,name,email\n1,Muñoz,a@b.es\n".encode("utf-16-be"), "UTF-16 text without a byte-order mark"),
])
def test_unreadable_encodings_are_one_line_and_exit_2(tmp_path: Path, name: str, payload: bytes, words: str) -> None:
    data = tmp_path / f"{name}.csv"
    data.write_bytes(payload)
    result = _clean(tmp_path, data, _rules(tmp_path), tmp_path / "out")
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    errors = _error_lines(result.stderr)  # type: ignore[attr-defined]
    assert len(errors) == 1 and words in errors[0], result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output and "Muñoz" not in result.output  # type: ignore[attr-defined]
    assert not (tmp_path / "out").exists()


def test_a_file_mixing_utf8_and_cp1252_is_read_and_said_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    data.write_bytes("id;name;email\n1;Muñoz;a@b.es\n".encode() + "2;Peña;c@d.es\n".encode("cp1252"))
    result = _clean(tmp_path, data, _rules(tmp_path), tmp_path / "out")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    said = [line for line in result.stderr.splitlines() if "mixed encodings" in line]  # type: ignore[attr-defined]
    assert len(said) == 1 and "1 lines hold UTF-8 text read as cp1252" in said[0]


# -- formulas --------------------------------------------------------------------------------------


def test_formulas_behind_trimmed_characters_and_full_width_signs_are_neutralised(tmp_path: Path) -> None:
    cells = [" =1+1", "\n=HYPERLINK(\"x\")", "＝1+1", "\u3000＋A1", " @SUM(A1)", "\u00a0-2+3", "=1", "plain", "-5",
             " 12.5", "a=b"]
    data = tmp_path / "f.csv"
    with data.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "note"])
        writer.writerows([str(i), c] for i, c in enumerate(cells, 1))
    result = _clean(tmp_path, data, _rules(tmp_path, "rules: []\n"), tmp_path / "out")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with (tmp_path / "out" / "f.clean.csv").open(encoding="utf-8", newline="") as fh:
        got = [row[1] for row in csv.reader(fh)][1:]
    assert got == [*("'" + c for c in cells[:7]), "plain", "-5", " 12.5", "a=b"]


# -- a full disk -----------------------------------------------------------------------------------


def _limit_file_size() -> None:  # in the child: every write past 64 KiB fails (EFBIG), as on a full disk
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_full_disk_is_exit_2_and_leaves_the_previous_outputs(tmp_path: Path) -> None:
    rows = "".join(f"{i},user{i}@example.es,{'x' * 40}\n" for i in range(4000))  # ~250 KB of output
    data = tmp_path / "big.csv"
    data.write_text("id,email,note\n" + rows, encoding="utf-8")
    rules, out = _rules(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "big.clean.csv").write_text("previous\n", encoding="utf-8")
    env = dict(os.environ, CRMTOOL_KEY="test-key-0123456789abcdef")
    cmd = [sys.executable, "-m", "crmtool", "clean", str(data), "--rules", str(rules), "--out", str(out),
           "--workspace", ":memory:", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=_limit_file_size, timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1 and "cannot write" in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    assert (out / "big.clean.csv").read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in out.iterdir()) == ["big.clean.csv"]  # no temp file, no stage folder


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_is_exit_130_one_line_and_no_temp_files(tmp_path: Path) -> None:
    data = tmp_path / "c.csv"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_customers.py"), "150000", str(data)], check=True,
                   timeout=300)
    out, work = tmp_path / "out", tmp_path / "ws"
    work.mkdir()
    env = dict(os.environ, CRMTOOL_KEY="test-key-0123456789abcdef")
    proc = subprocess.Popen([sys.executable, "-m", "crmtool", "clean", str(data), "--rules", str(ROOT / "rules"),
                             "--out", str(out), "--workspace", str(work / "crm.duckdb"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # interrupt once the run is under way: its sandbox folder exists beside the workspace
    deadline = time.monotonic() + 120
    while not list(work.glob(".crm.duckdb.io-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    # one line for people; with --quiet a failed run also puts its end line on stderr (for cron mail)
    lines = stderr.strip().splitlines()
    assert lines[0] == "interrupted" and "Traceback" not in stderr, stderr
    # the end line names the run once it started (a Ctrl-C before that names none)
    assert len(lines) <= 2, stderr
    if lines[1:]:
        end = r"python -m crmtool clean: run (-|\d{8}T\d{6}Z-[0-9a-f]{6}) aborted exit=130 \(interrupted\)"
        assert re.fullmatch(end, lines[1]), stderr
    assert not list(work.glob(".crm.duckdb.io-*"))  # the sandbox went with the run
    leftovers = [p.name for p in out.rglob("*")] if out.exists() else []
    assert not [n for n in leftovers if n.endswith(".tmp") or n.startswith(".crmtool-stage-")], leftovers
    assert not (out / "c.clean.csv").exists()


# -- configuration errors in sections are found before any output is replaced ----------------------

DEDUPE = """rules:
  - {{name: e, kind: email, column: email}}
dedupe:
  id: id
  blocking:
    - {{name: k, on: [email]}}
  comparisons:
    - {{column: {column}, method: exact}}
  survivorship:
    fields:
      email: {{rule: sql, sql: {sql}}}
"""


@pytest.mark.parametrize(("column", "sql", "words"), [
    ("email", "'max(read_text(''k''))'", "function read_text() is not allowed"),
    ("email", "'max(nosuch)'", "unknown column 'nosuch'"),
    ("no_such_column", "'max(email)'", "dedupe: column 'no_such_column' is not in the data"),
])
def test_a_bad_dedupe_section_stops_clean_before_outputs_are_replaced(tmp_path: Path, column: str, sql: str,
                                                                      words: str) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,email\n1,a@b.es\n2,a@b.es\n", encoding="utf-8")
    out = tmp_path / "out"
    good = _clean(tmp_path, data, _rules(tmp_path, DEDUPE.format(column="email", sql="'max(email)'")), out)
    assert good.exit_code == 0, good.output  # type: ignore[attr-defined]
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert "d.clean.csv" in before and "golden.csv" in before
    bad = _clean(tmp_path, data, _rules(tmp_path, DEDUPE.format(column=column, sql=sql)), out)
    assert bad.exit_code == 2, bad.output  # type: ignore[attr-defined]
    assert words in bad.stderr and "Traceback" not in bad.output  # type: ignore[attr-defined]
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
