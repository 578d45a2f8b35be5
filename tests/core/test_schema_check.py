"""The quick schema check never disagrees with jsonschema: it answers exactly or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from crmtool.rulefile import SECTION_SCHEMAS, rules_schema
from crmtool.schema_check import surely_valid
from crmtool.yamlspec import parse_yaml_text, schema_problems

ROOT = Path(__file__).resolve().parents[2]
RULES = rules_schema()


def _names(schema: Any, found: set[str]) -> set[str]:
    """Every property name and every string constant of a schema: the words documents are made of."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties":
                found.update(value)
            if key in ("enum", "const"):
                found.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
            _names(value, found)
    elif isinstance(schema, list):
        for item in schema:
            _names(item, found)
    return found


WORDS = sorted(_names(RULES, set()) | {"x", "", "Email", "1%", "12"})
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 200), st.floats(allow_nan=False, width=16),
                    st.sampled_from(WORDS), st.text(max_size=4))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(WORDS), inner, max_size=5)), max_leaves=25)


def _agrees(schema: dict[str, Any], doc: Any) -> bool | None:
    quick = surely_valid(schema, doc)
    assert quick is None or quick == Draft202012Validator(schema).is_valid(doc), (quick, doc)
    return quick


@given(DOCS)
@settings(max_examples=400, deadline=None)
def test_random_documents_agree_with_jsonschema(doc: Any) -> None:
    _agrees(RULES, doc)
    for schema in SECTION_SCHEMAS.values():
        _agrees(schema, doc)


@given(st.sampled_from(sorted((ROOT / "rules").glob("*.yaml"))), st.data())
@settings(max_examples=150, deadline=None)
def test_mutated_example_rules_agree_with_jsonschema(path: Path, data: st.DataObject) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    mappings: list[dict[str, Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            mappings.append(node)
        for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else []:
            collect(child)

    collect(doc)
    target = data.draw(st.sampled_from(mappings))
    key = data.draw(st.sampled_from([*target, *WORDS]))
    target[key] = data.draw(SCALARS | st.lists(SCALARS, max_size=3))
    _agrees(RULES, doc)
    for schema in SECTION_SCHEMAS.values():
        _agrees(schema, doc.get(key, doc) if isinstance(doc, dict) else doc)


def test_the_example_rule_files_are_decided_without_jsonschema() -> None:
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        assert surely_valid(RULES, yaml.safe_load(path.read_text(encoding="utf-8"))) is True, path


def test_unknown_keywords_and_floats_for_integers_are_left_to_jsonschema() -> None:
    assert surely_valid({"type": "object", "dependentRequired": {"a": ["b"]}}, {"a": 1}) is None
    assert surely_valid({"type": "integer"}, 1.0) is None
    assert surely_valid({"enum": [[1], "a"]}, "b") is None
    assert surely_valid({"enum": [1]}, True) is False  # true is not 1
    assert surely_valid({"oneOf": [{"type": "string"}, {"minLength": 1}]}, "ab") is False  # both match


def test_a_wrong_document_still_gets_every_message() -> None:
    doc = parse_yaml_text("rules:\n  - {name: a, kind: required, column: c, colour: red}\n", "r.yaml")
    problems = schema_problems(doc, RULES)
    assert [str(loc) for loc, _ in problems] == ["r.yaml:2"]
    assert "'colour' was unexpected" in problems[0][1]


SEGMENTS = __import__("crmtool.segments.schema", fromlist=["segments_schema"]).segments_schema()
SEGMENT_WORDS = sorted(_names(SEGMENTS, set()) | {"x", "", "1", "today", "2026-01-01"})
SEGMENT_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 200), st.sampled_from(SEGMENT_WORDS),
                            st.text(max_size=4))


def test_local_refs_are_followed_and_other_refs_left_to_jsonschema() -> None:
    schema = {"$defs": {"name": {"type": "string", "minLength": 2}, "a/b": {"const": 1}},
              "properties": {"n": {"$ref": "#/$defs/name"}, "s": {"$ref": "#/$defs/a~1b"}, "all": {"$ref": "#"}}}
    assert surely_valid(schema, {"n": "ab", "s": 1, "all": {"n": "cd"}}) is True
    assert surely_valid(schema, {"n": "a"}) is False
    assert surely_valid(schema, {"all": {"all": {"s": 2}}}) is False
    for ref in ("other.json#/x", "#/$defs/missing", "#anchor", "#/$defs/name%20x"):
        assert surely_valid({"$defs": {"name": {}}, "$ref": ref}, "x") is None, ref
    assert surely_valid({"$dynamicRef": "#meta"}, "x") is None


def test_the_segments_file_is_decided_without_jsonschema() -> None:
    assert surely_valid(SEGMENTS, yaml.safe_load((ROOT / "segments.yaml").read_text(encoding="utf-8"))) is True
    import subprocess
    import sys

    code = ("import sys; from crmtool.segments.spec import spec_from_doc; "
            "from crmtool.yamlspec import parse_yaml_text; "
            f"spec_from_doc(parse_yaml_text(open({str(ROOT / 'segments.yaml')!r}).read(), 'segments.yaml')); "
            "print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_segments_files_agree_with_jsonschema(data: st.DataObject) -> None:
    doc = yaml.safe_load((ROOT / "segments.yaml").read_text(encoding="utf-8"))
    mappings: list[Any] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict | list):
            mappings.append(node)
        for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else []:
            collect(child)

    collect(doc)
    target = data.draw(st.sampled_from(mappings))
    value = data.draw(SEGMENT_SCALARS | st.lists(SEGMENT_SCALARS, max_size=3)
                      | st.dictionaries(st.sampled_from(SEGMENT_WORDS), SEGMENT_SCALARS, max_size=2))
    if isinstance(target, dict):
        target[data.draw(st.sampled_from([*target, *SEGMENT_WORDS]))] = value
    elif target:
        target[data.draw(st.integers(0, len(target) - 1))] = value
    else:
        target.append(value)
    _agrees(SEGMENTS, doc)
