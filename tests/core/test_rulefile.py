"""Rule files: every configuration mistake is reported with file:line and exit code 2, all at once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from crmtool.api import validate
from crmtool.cli import app
from crmtool.errors import ConfigError, ExitCode
from crmtool.kinds import KINDS
from crmtool.rulefile import load_rules, rules_schema
from crmtool.workspace import Workspace
from crmtool.yamlspec import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "rules"


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _problems(path: Path | list[Path]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    err = info.value
    assert err.exit_code == ExitCode.USAGE == 2
    return [f"{loc}: {msg}" for loc, msg in err.problems]


BAD = {
    "broken_yaml": ("""
        rules:
          - name: a
            kind: trim
           column: x
        """, 4, "YAML syntax error"),
    "unclosed_flow": ("rules: [\n", 2, "YAML syntax error"),
    "tab_indent": ("rules:\n\t- name: a\n", 2, "YAML syntax error"),
    "unknown_kind": ("""
        rules:
          - name: a
            kind: frobnicate
            column: x
        """, 3, "rules/0/kind: expected one of 'allowed'"),
    "wrong_type": ("""
        rules:
          - name: a
            kind: range
            column: x
            min: zero
        """, 5, "rules/0/min: expected number, got str 'zero'"),
    "wrong_type_list": ("""
        rules:
          - name: a
            kind: allowed
            column: x
            values: ES
        """, 5, "rules/0/values: expected array"),
    "regex_does_not_compile": ("""
        rules:
          - name: a
            kind: regex
            column: x
            pattern: '([a-z'
        """, 5, "rule 'a': pattern does not compile"),
    "sql_does_not_parse": ("""
        rules:
          - name: a
            kind: sql
            expr: 'x >>> = 3 AND'
        """, 4, "rule 'a': expr: SQL does not parse"),
    "sql_with_semicolon": ("""
        rules:
          - name: a
            kind: sql
            expr: 'true; DROP TABLE x'
        """, 4, "';' (a statement separator) is not allowed"),
    "where_does_not_parse": ("""
        rules:
          - name: a
            kind: required
            column: x
            where: 'x = = 1'
        """, 5, "rule 'a': where: SQL does not parse"),
    "duplicate_rule_names": ("""
        rules:
          - name: a
            kind: trim
            column: x
          - name: a
            kind: required
            column: x
        """, 5, "rule name 'a' already used at"),
    "duplicate_yaml_keys": ("""
        rules:
          - name: a
            kind: trim
            column: x
            column: y
        """, 5, "duplicate key 'column'"),
    "missing_required_option": ("""
        rules:
          - name: a
            kind: regex
            column: x
        """, 2, "'pattern' is required"),
    "action_not_allowed_for_kind": ("""
        rules:
          - name: a
            kind: required
            column: x
            action: fix
        """, 5, "expected one of 'flag', 'reject', got 'fix'"),
    "unknown_option": ("""
        rules:
          - name: a
            kind: required
            column: x
            colour: red
        """, 5, "'colour' was unexpected) (did you mean 'column'?)"),
    "bad_severity": ("""
        rules:
          - name: a
            kind: required
            column: x
            severity: fatal
        """, 5, "expected one of 'error', 'warning', got 'fatal'"),
    "bad_threshold": ("""
        rules:
          - name: a
            kind: required
            column: x
            threshold: lots
        """, 5, "rules/0/threshold: expected a count of failing rows tolerated (3) or a share ('1%'), got 'lots'"),
    "negative_threshold": ("""
        rules:
          - name: a
            kind: required
            column: x
            threshold: -1
        """, 5, "rules/0/threshold: -1 is less than the minimum of 0"),
    "date_bound_not_a_date": ("""
        rules:
          - name: a
            kind: date
            column: x
            min: yesterday
        """, 5, "rules/0/min: expected an ISO date (YYYY-MM-DD) or 'today', got 'yesterday'"),
    "date_format_unknown": ("""
        rules:
          - name: d
            kind: date
            column: x
            formats: ['%d/%m/%Y', '%Q']
        """, 5, "formats: '%Q' is not a strptime format"),
    "date_bound_impossible": ("""
        rules:
          - name: d
            kind: date
            column: x
            max: '2020-02-31'
        """, 5, "max: '2020-02-31' is not a real day"),
    "range_bound_not_finite": ("""
        rules:
          - name: r
            kind: range
            column: x
            min: .nan
        """, 5, "min: nan is not a finite number"),
    "top_level_list": ("- a\n- b\n", 1, "expected a mapping"),
    "unknown_section": ("rulez: []\n", 1, "'rulez' was unexpected) (did you mean 'rules'?)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_mistake_is_reported_with_file_and_line(tmp_path: Path, case: str) -> None:
    text, line, message = BAD[case]
    path = _write(tmp_path, text)
    problems = _problems(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems[0]
    assert message in problems[0]


def test_not_utf8_rule_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"rules:\n  - name: \xff\n")
    assert _problems(path) == [f"{path}: not UTF-8 text"]


def test_several_problems_in_several_files_are_reported_at_once(tmp_path: Path) -> None:
    a = _write(tmp_path, """
        rules:
          - name: a
            kind: range
            column: x
            min: zero
          - name: b
            kind: nope
        """, "a.yaml")
    b = _write(tmp_path, """
        rules:
          - name: c
            kind: regex
            column: x
            pattern: '('
          - name: d
            kind: sql
            expr: 'x = = 1'
        """, "b.yaml")
    problems = _problems(tmp_path)
    assert [p.split(": ")[0] for p in problems] == [f"{a}:5", f"{a}:7", f"{b}:5", f"{b}:8"]
    with pytest.raises(ConfigError) as info:
        load_rules([a, b])
    assert info.value.message.startswith("4 problems in configuration:\n")


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "rules: [{name: same, kind: trim, column: x}]\n", "1.yaml")
    second = _write(tmp_path, "rules:\n  - {name: same, kind: trim, column: y}\n", "2.yaml")
    assert _problems(tmp_path) == [f"{second}:2: rule name 'same' already used at {first}:1"]


def test_valid_rules_become_typed_specs_with_their_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        version: 1
        dataset: {key: id, personal_data: [email]}
        rules:
          - name: e
            kind: email
            column: email
            threshold: 5%
          - kind: required
            columns: [id, email]
            action: reject
            severity: warning
            threshold: 3
            where: "id <> 'x'"
        """)
    ruleset = load_rules(path)
    assert ruleset.dataset.key == "id" and ruleset.dataset.personal_data == ("email",)
    first, second = ruleset.rules
    assert (first.name, first.kind, first.columns, first.severity, first.action) == (
        "e", "email", ("email",), "error", "flag")
    assert first.threshold.share == pytest.approx(0.05) and str(first.threshold) == "5%"
    assert str(first.loc) == f"{path}:4"
    assert (second.name, second.columns, second.action, second.severity, second.threshold.count) == (
        "required_id_email", ("id", "email"), "reject", "warning", 3)
    assert second.where == "id <> 'x'"
    assert str(second.loc) == f"{path}:8"


def test_rule_naming_a_missing_column_is_a_config_error_at_run_time(ws: Workspace, tmp_path: Path) -> None:
    rules = _write(tmp_path, """
        rules:
          - name: ok
            kind: required
            column: id
          - name: missing
            kind: required
            column: emial
          - name: bad_sql
            kind: sql
            expr: nosuchcol > 1
        """)
    data = tmp_path / "d.csv"
    data.write_text("id,email\n1,a@b.es\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate(ws, data, [rules])
    problems = [f"{loc}: {msg}" for loc, msg in info.value.problems]
    assert problems[0] == f"{rules}:5: rule 'missing': column 'emial' is not in the data (columns: id, email)"
    assert problems[1].startswith(f"{rules}:8: rule 'bad_sql': expr: ")
    assert len(problems) == 2


def test_missing_rules_path_is_an_input_error(tmp_path: Path) -> None:
    from crmtool.errors import InputError

    with pytest.raises(InputError, match="no such rule file"):
        load_rules(tmp_path / "nope.yaml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"holds no \.yaml rule files"):
        load_rules(tmp_path / "empty")


# --- CLI: rules lint / rules schema ------------------------------------------------------------

def test_rules_lint_ok_on_shipped_rules() -> None:
    result = CliRunner().invoke(app, ["rules", "lint", str(SHIPPED_RULES)])
    assert result.exit_code == 0, result.stderr
    assert "rules: ok" in result.stderr
    assert result.stdout == ""


def test_rules_lint_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = _write(tmp_path, BAD["regex_does_not_compile"][0], "a.yaml")
    worse = _write(tmp_path, BAD["wrong_type"][0], "b.yaml")
    result = CliRunner().invoke(app, ["rules", "lint", str(bad), str(worse)])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:5: rule 'a': pattern does not compile" in result.stderr
    assert f"{worse}:5: rules/0/min: expected number" in result.stderr
    assert result.stderr.startswith("error: 2 problems in configuration:")


def test_rules_schema_is_valid_json_schema_and_accepts_the_shipped_rules() -> None:
    result = CliRunner().invoke(app, ["rules", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema == json.loads(json.dumps(rules_schema()))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    files = sorted(SHIPPED_RULES.glob("*.yaml"))
    assert files
    for file in files:
        # crmtool's YAML reading (keys stay strings: 'on:' is not True as in PyYAML's YAML 1.1)
        assert list(validator.iter_errors(load_yaml(file).data)) == [], file
    assert set(schema["properties"]["rules"]["items"]["properties"]["kind"]["enum"]) == set(KINDS)
    # and it rejects what load_rules rejects
    assert list(validator.iter_errors({"rules": [{"kind": "required", "column": "x", "action": "fix"}]}))
    assert list(validator.iter_errors({"rules": [{"kind": "frobnicate"}]}))


def test_rules_schema_unknown_name_is_exit_2() -> None:
    result = CliRunner().invoke(app, ["rules", "schema", "nonsense"])
    assert result.exit_code == 2
    assert "unknown schema 'nonsense'" in result.stderr


def test_yaml_scalars_read_as_yaml_1_2_reads_them(tmp_path: Path) -> None:
    # the Norway problem: YAML 1.1 reads NO/yes/on as booleans, 1:30 as 90 and dates as date objects;
    # editors and the published JSON Schema (YAML 1.2) see text
    from crmtool.yamlspec import parse_yaml_text

    doc = parse_yaml_text("a: [ES, NO, yes, On, n, true, False, 1:30, 12, 0.5, null, 'no']\nb: 1900-01-01\n", "x")
    assert doc.data == {"a": ["ES", "NO", "yes", "On", "n", True, False, "1:30", 12, 0.5, None, "no"],
                        "b": "1900-01-01"}
    rules = _write(tmp_path, """
        rules:
          - {name: c, kind: allowed, column: country, values: [ES, PT, NO]}
          - {name: d, kind: date, column: born, min: 1900-01-01}
        """)
    ruleset = load_rules(rules)
    assert ruleset.rules[0].opt("values") == ["ES", "PT", "NO"]
    assert ruleset.rules[1].opt("min") == "1900-01-01"


def test_norway_is_an_allowed_country(run: Any) -> None:
    r = run({"country": ["NO", "ES", "SE"]}, "rules: [{name: c, kind: allowed, column: country, values: [ES, NO]}]")
    assert r.failing("c") == [3]


def test_schema_and_semantic_problems_of_one_file_come_together(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        rules:
          - name: a
            kind: range
            column: x
            min: zero
          - name: b
            kind: regex
            column: x
            pattern: '('
          - name: b
            kind: sql
            expr: 'x = = 1'
        """)
    problems = _problems(path)
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:5", f"{path}:9", f"{path}:10", f"{path}:12"]
    assert "pattern does not compile" in problems[1]
    assert "rule name 'b' already used" in problems[2]
    assert "SQL does not parse" in problems[3]


def test_dataset_block_once_and_its_key_checked_where_it_was_written(ws: Workspace, tmp_path: Path) -> None:
    first = _write(tmp_path, "rules: [{name: t, kind: trim, column: id}]\n", "1.yaml")
    second = _write(tmp_path, "version: 1\ndataset:\n  key: nope\nrules: []\n", "2.yaml")
    data = tmp_path / "d.csv"
    data.write_text("id\n1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate(ws, data, [first, second])
    assert [f"{loc}: {msg}" for loc, msg in info.value.problems] == [
        f"{second}:3: dataset key 'nope' is not in the data"]
    third = _write(tmp_path, "dataset: {key: id}\n", "3.yaml")
    assert _problems([second, third]) == [f"{third}:1: dataset already defined at {second}:3"]


@pytest.mark.parametrize(("text", "where", "message"), [
    ("rules: !!python/object:os.system x\n", ":1", "could not determine a constructor"),
    ("rules:\n  - kind: required\n    column: !!binary xyz\n", ":3", "base64"),
    ("rules: &a [*a]\n", "", "nests too deeply"),
])
def test_unsafe_or_recursive_yaml_is_a_config_error(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = _write(tmp_path, text)
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}{where}: ") and message in problems[0]


def test_complex_yaml_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "rules: []\n? [a, b]\n: 1\n")
    assert _problems(path) == [f"{path}:2: a key must be plain text"]


def test_rules_that_are_not_mappings_get_one_problem_each(tmp_path: Path) -> None:
    path = _write(tmp_path, "rules: [1, x, null]\n")
    assert _problems(path) == [f"{path}:1: rules/0: expected object, got int 1",
                               f"{path}:1: rules/1: expected object, got str 'x'",
                               f"{path}:1: rules/2: expected object, got NoneType None"]
