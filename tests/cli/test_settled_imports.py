"""A command that is the whole process takes what it has imported out of the cyclic garbage
collector's sight (``crmtool.cli.settle``, issue 19: ~40 ms of a 10-row validate); a command run
inside another program (here: the test process) leaves the collector alone."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]

#: the real entry point in a fresh interpreter; then whether sqlglot's and typer's classes are
#: still in the collector's generations (frozen ones are not)
PROGRAM = """
import gc, json, sys
from crmtool.cli import main
sys.argv = ["crmtool", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
from sqlglot import exp
import typer
seen = {id(o) for o in gc.get_objects()}
sys.__stderr__.write("@@" + json.dumps([id(exp.Column) in seen, id(typer.Typer) in seen, gc.get_freeze_count()]))
"""


def test_validate_as_a_process_freezes_its_imports(tmp_path: Path) -> None:
    data = tmp_path / "small.csv"  # the example export's first 10 rows
    data.write_bytes(b"".join((ROOT / "examples" / "clientes.csv").read_bytes().splitlines(keepends=True)[:11]))
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    proc = subprocess.run([sys.executable, "-c", PROGRAM, "validate", data.name, "--rules", "rules", "-q"],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    column_tracked, typer_tracked, frozen = json.loads(proc.stderr.rsplit("@@", 1)[1])
    # typer's (frozen when main starts) and sqlglot's (after the rules are read) objects are out
    # of the collector's generations: on 03ac8d1 both were in them and nothing was frozen
    assert (column_tracked, typer_tracked) == (False, False) and frozen > 20_000


def test_validate_inside_another_program_freezes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,age\nC1,30\n", encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: a, kind: range, column: age, min: 18}\n", encoding="utf-8")
    before = gc.get_freeze_count()
    result = CliRunner().invoke(app, ["validate", str(data), "--rules", str(rules), "--workspace", ":memory:", "-q"])
    assert result.exit_code == 0 and gc.get_freeze_count() == before
