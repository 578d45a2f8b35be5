"""Start-up of a run (issue 19): the command line loads the one command module it runs, typer's
option coercion goes without pydantic, and a rule file loads only the libraries its rules need
(while every piece of user SQL still goes through the sqlglot vetting of issue 12)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import typer

from crmtool import cli
from crmtool.cli.common import OutputFormat

#: what a validate with the 5 checks of bench/validate_peers.py must not load
NOT_FOR_FIVE_CHECKS = ("sqlglot", "ftfy", "phonenumbers", "pandas", "pyspark", "pydantic", "email_validator")

FIVE_CHECKS = """rules:
  - {name: not_null, kind: required, column: name}
  - {name: unique, kind: unique, column: id}
  - {name: email_regex, kind: regex, column: email, pattern: '[a-z0-9.]+@[a-z0-9.]+'}
  - {name: range, kind: range, column: age, min: 18, max: 99}
  - {name: allowed, kind: allowed, column: country, values: [ES, PT]}
"""


#: ``python -m crmtool ARGS`` in a fresh interpreter, then every module it imported (``-X importtime``
#: misses what ``importlib.import_module`` loads)
PROGRAM = """
import json, runpy, sys
sys.argv = ["crmtool", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("crmtool", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
sys.__stdout__.write("\\n@@" + json.dumps([code, sorted(sys.modules)]))
"""


def _modules(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """Exit code, every module ``python -m crmtool ARGS`` imported, and stderr."""
    proc = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(args)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
    assert "@@" in proc.stdout, proc.stderr
    code, names = json.loads(proc.stdout.rsplit("@@", 1)[1])
    return code, set(names), proc.stderr


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "small.csv"
    data.write_text("id,name,email,age,country\nC1,Ana,ana@x.es,30,ES\nC1,,bad,7,XX\n", encoding="utf-8")
    return data


def test_validate_with_the_five_peer_checks_loads_no_sql_parser_text_fixer_or_other_command(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(FIVE_CHECKS, encoding="utf-8")
    code, names, stderr = _modules(tmp_path, "validate", str(_data(tmp_path)), "--rules", str(rules),
                                   "--format", "json", "-q")
    assert code == 1, stderr  # the second row fails every check
    assert "crmtool.cli.core_cmd" in names and "duckdb" in names  # the measurement saw the run
    loaded = {n for n in names if n.split(".")[0] in NOT_FOR_FIVE_CHECKS}
    assert loaded == set()
    commands = {n for n in names if n.startswith("crmtool.cli.") and n.endswith("_cmd")}
    assert commands == {"crmtool.cli.core_cmd"}


@pytest.mark.parametrize("rule", [
    "{name: s, kind: sql, column: age, expr: \"length(name) > 1\"}",
    "{name: r, kind: required, column: name, where: \"country = 'ES'\"}",
])
def test_a_rule_with_user_sql_still_has_it_parsed_by_the_vetting(tmp_path: Path, rule: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"rules:\n  - {rule}\n", encoding="utf-8")
    code, names, stderr = _modules(tmp_path, "validate", str(_data(tmp_path)), "--rules", str(rules), "-q")
    assert code in (0, 1), stderr
    assert "sqlglot" in names


def test_user_sql_the_vetting_refuses_is_still_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, kind: required, column: name, "
                     "where: \"country IN (SELECT 1 FROM read_csv('/etc/passwd'))\"}\n", encoding="utf-8")
    code, _names, stderr = _modules(tmp_path, "validate", str(_data(tmp_path)), "--rules", str(rules), "-q")
    assert code == 2
    assert "rules.yaml:2" in stderr


def _registered(module: str) -> set[str]:
    app = typer.Typer()
    import_module(f"crmtool.cli.{module}").register(app)
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name or "" for g in app.registered_groups}


def test_the_command_table_names_what_each_module_registers() -> None:
    for module in cli.COMMAND_MODULES:
        assert _registered(module) == {n for n, m in cli.COMMANDS.items() if m == module}, module
    assert set(cli.COMMANDS.values()) == set(cli.COMMAND_MODULES)


@pytest.mark.parametrize(("argv", "environ", "modules"), [
    (["validate", "x.csv"], {}, ("core_cmd",)),
    (["segment", "run", "--help"], {}, ("segments_cmd",)),
    ([], {}, cli.COMMAND_MODULES),
    (["--help"], {}, cli.COMMAND_MODULES),
    (["--version"], {}, cli.COMMAND_MODULES),
    (["valdate"], {}, cli.COMMAND_MODULES),  # click's "did you mean" needs every name
    (["validate"], {"_CRMTOOL_COMPLETE": "complete_bash"}, cli.COMMAND_MODULES),
])
def test_modules_for_a_command_line(argv: list[str], environ: dict[str, str], modules: tuple[str, ...]) -> None:
    assert cli.modules_for(argv, environ) == modules


def test_help_lists_every_command_and_a_command_runs_alone(tmp_path: Path) -> None:
    listed = subprocess.run([sys.executable, "-m", "crmtool", "--help"], capture_output=True, text=True, timeout=60,
                            check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    assert {n for n in cli.COMMANDS if re.search(rf"^│ {n} ", listed, re.M)} == set(cli.COMMANDS)
    code, names, stderr = _modules(tmp_path, "kpis", "--help")
    assert code == 0, stderr
    assert {n for n in names if n.endswith("_cmd")} == {"crmtool.cli.kpis_cmd"}


class _Param:
    multiple, nargs, name, human_readable_name = False, 1, "x", "x"


class _Ctx:
    token_normalize_func = None


@pytest.mark.parametrize(("annotation", "values"), [
    (int, ["0", "7", "007", "-3", "+3", " 5", "1_000", "99999999999999999999", 5]),
    (float, ["1.5", "1", "-0.25", "1e3", ".5", "5.", " 1", 2.0]),
    (str, ["a", "", " b "]),
    (bool, [True, False]),
    (Path, ["a/b", ".", "/x", "~", Path("q")]),
    (OutputFormat, ["json", "text", "junit"]),
    (list[Path], [["a", "b"], ("c",)]),
])
def test_plain_coercion_gives_what_typers_adapter_gives(annotation: Any, values: list[Any]) -> None:
    from typer._coercion import build_runtime_param, resolve_type_descriptor
    from typer._param_types import coerce_cli_choice, coerce_cli_path
    from typer.models import OptionInfo

    from crmtool.cli.plain_params import _NO, plain_value

    info = OptionInfo()
    adapter = build_runtime_param(resolve_type_descriptor(annotation, info))
    answered = 0
    for value in values:
        plain = plain_value(annotation, info, value, _Param(), _Ctx(), choice=coerce_cli_choice, path=coerce_cli_path)
        if plain is not _NO:
            answered += 1
            want = adapter._coerce_value(value, _Param(), _Ctx())
            assert (plain, type(plain)) == (want, type(want)), value
    assert answered  # the plain path answers the common values


def test_values_the_plain_path_leaves_alone_get_typers_own_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "crmtool", "validate", "x.csv", "--format", "yaml"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
                          env={"COLUMNS": "200", "PATH": ""})
    assert proc.returncode == 2
    # typer's pydantic adapter words it, as before (loaded for this error only)
    assert "Invalid value for '--format' / '-f': Value error, 'yaml' is not one of 'text', 'json', 'junit'." \
        in proc.stderr
