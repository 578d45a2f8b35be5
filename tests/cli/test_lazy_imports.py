"""Heavy libraries are imported where they are used: `--help` and a small validate stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("duckdb", "polars", "pyarrow", "rapidfuzz", "dns", "phonenumbers", "stdnum", "email_validator", "ftfy",
         "jsonschema", "numpy", "polars_hash", "confusable_homoglyphs", "plotly", "pandas")

#: runs the real CLI in a fresh interpreter and prints which heavy modules it imported
PROGRAM = """
import json, sys
from crmtool.cli import main
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["crmtool", *args]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
sys.__stdout__.write("\\n@@" + json.dumps([code, sorted(m for m in heavy if m in sys.modules)]))
"""


def _imported(*args: str) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(args), json.dumps(HEAVY)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert "@@" in proc.stdout, proc.stderr
    code, imported = json.loads(proc.stdout.rsplit("@@", 1)[1])
    return code, imported


@pytest.mark.parametrize("args", [("--help",), ("validate", "--help"), ("clean", "--help"), ("segment", "--help"),
                                  ("report", "--help")])
def test_help_imports_no_heavy_library(args: tuple[str, ...]) -> None:
    assert _imported(*args) == (0, [])


def test_a_small_validate_imports_only_what_its_rules_need(tmp_path: Path) -> None:
    data = tmp_path / "small.csv"
    data.write_text("id,name,age\nC1,Ana,30\nC2,,7\n", encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: n, kind: required, column: name}\n"
                     "  - {name: u, kind: unique, column: id}\n"
                     "  - {name: a, kind: range, column: age, min: 18}\n", encoding="utf-8")
    imported = _imported("validate", str(data), "--rules", str(rules), "--workspace", ":memory:", "-q")
    # DuckDB runs the checks; a right rule file passes the quick schema check (crmtool.schema_check),
    # so jsonschema is not loaded; nothing else heavy
    assert imported == (1, ["duckdb"])  # exit 1: row 2 has no name and is 7


def test_a_wrong_rule_file_still_gets_jsonschema_messages(tmp_path: Path) -> None:
    data = tmp_path / "small.csv"
    data.write_text("id,name\nC1,Ana\n", encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: n, kind: required, column: name, colour: red}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "crmtool", "validate", str(data), "--rules", str(rules),
                           "--workspace", ":memory:", "-q"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "'colour' was unexpected" in proc.stderr


def test_a_small_validate_of_the_example_rules_imports_no_arrow_numpy_or_pandas(tmp_path: Path) -> None:
    # the example rules send values to Python (mojibake, title case, email syntax and risk, phones,
    # NIF) and back: below crmtool.db.ARROW_FROM values that goes through plain rows and list
    # parameters, and the mixed-encoding scan of a small file uses the byte pattern, so neither
    # pyarrow nor (through it) numpy and pandas are imported (issue 19: a third of the run)
    examples = Path(__file__).resolve().parents[2] / "examples" / "clientes.csv"
    lines = examples.read_bytes().splitlines(keepends=True)
    data = tmp_path / "small.csv"
    data.write_bytes(b"".join(lines[:11]))  # cp1252 with a line of UTF-8 (the mojibake rule repairs it)
    rules = Path(__file__).resolve().parents[2] / "rules"
    code, imported = _imported("validate", str(data), "--rules", str(rules), "-q")
    assert code in (0, 1)
    assert not {"pyarrow", "numpy", "pandas", "polars"} & set(imported), imported
