"""Rule-file sections register like kinds: each declares its schema and parser beside its schema,
the registry lists them, and the loader reads the registry (never a feature's parser)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import crmtool.rulefile
from crmtool.dedupe.spec import spec_from_ruleset
from crmtool.errors import ConfigError
from crmtool.privacy.consent import parse_consent
from crmtool.privacy.retention import parse_retention
from crmtool.rulefile import load_rules, rules_schema, section_problems
from crmtool.ruleset import RuleSet
from crmtool.section import Section
from crmtool.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "crmtool"

DEDUPE = """\
dedupe:
  id: customer_id
  blocking:
    - {name: email, 'on': ['email:email']}
    - {name: email, 'on': ['phone:phone']}
  comparisons:
    - {column: email, method: email}
"""


def _loaded_modules(statement: str) -> set[str]:
    """The crmtool modules a fresh interpreter holds after ``statement``."""
    program = (f"import json, sys\n{statement}\n"
               "print(json.dumps(sorted(m for m in sys.modules if m.startswith('crmtool'))))")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_the_registry_lists_every_section_by_its_own_name() -> None:
    assert list(SECTIONS) == ["dedupe", "consent", "retention"]  # the order rules lint parses them in
    for name, section in SECTIONS.items():
        assert isinstance(section, Section)
        assert section.name == name
        assert section.description.strip() and "\n" not in section.description


def test_the_published_schema_holds_each_registered_section_schema() -> None:
    properties = rules_schema()["properties"]
    for name, section in SECTIONS.items():
        assert properties[name] == section.schema


def test_the_sections_of_the_shipped_rules_parse_as_their_owners_parse_them() -> None:
    ruleset = load_rules(ROOT / "rules")
    assert set(ruleset.sections) == set(SECTIONS)
    assert SECTIONS["dedupe"].parse(ruleset) == spec_from_ruleset(ruleset) is not None
    assert SECTIONS["consent"].parse(ruleset) == parse_consent(ruleset) != {}
    assert SECTIONS["retention"].parse(ruleset) == parse_retention(ruleset) != []
    assert section_problems(ruleset) == []


def test_an_absent_section_parses_to_nothing() -> None:
    empty = RuleSet()
    assert [section.parse(empty) for section in SECTIONS.values()] == [None, {}, []]


def test_section_problems_come_from_the_owner_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dedupe.yaml"
    path.write_text(DEDUPE, encoding="utf-8")
    ruleset = load_rules(path)  # the schema accepts it: the duplicate name is the owner's check
    problems = section_problems(ruleset)
    assert [(str(loc), message) for loc, message in problems] == [
        (f"{path}:5", "dedupe: blocking rule name 'email' used twice")]
    with pytest.raises(ConfigError) as err:
        crmtool.load_checked_rules([path])
    assert err.value.problems == problems


def test_loading_rule_files_imports_no_section_parser() -> None:
    loaded = _loaded_modules("import crmtool.rulefile")
    assert {"crmtool.sections", "crmtool.dedupe.schema", "crmtool.privacy.schemas"} <= loaded
    assert not loaded & {"crmtool.dedupe.spec", "crmtool.privacy.consent", "crmtool.privacy.retention"}


def test_the_section_type_sits_on_the_ground_floor() -> None:
    assert _loaded_modules("import crmtool.section") == {"crmtool", "crmtool.section"}


def test_the_loader_names_its_sections_only_through_the_registry() -> None:
    tree = ast.parse((SRC / "rulefile.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "__import__" not in names and "importlib" not in imported
    assert not {m for m in imported if m and m.startswith(("crmtool.dedupe", "crmtool.privacy"))}
    assert "crmtool.sections" in imported


def test_rule_set_is_still_importable_from_the_loader() -> None:
    assert crmtool.rulefile.RuleSet is RuleSet
    schemas = crmtool.rulefile.SECTION_SCHEMAS
    assert schemas == {name: s.schema for name, s in SECTIONS.items()}
