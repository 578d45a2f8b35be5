"""Configuration YAML is read by libyaml where PyYAML has it (issue 19), with PyYAML's own result:
the same values and lines for every file, PyYAML's message for a broken one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from crmtool import yamlspec
from crmtool.errors import ConfigError
from crmtool.yamlspec import parse_yaml_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("rules/*.yaml"), *ROOT.glob("examples/*.yaml"), ROOT / "segments.yaml"])
ODD = [
    "a: [ES, NO, yes, On, n, true, False, 1:30, 12, 0.5, null, 'no', \"x\", ~]\nb: 1900-01-01\n",
    "rules:\n  - name: a\n    where: |\n      x > 1\n      AND y\n    k: >-\n      folded\n      text\n",
    "base: &b {kind: required, column: x}\nrules:\n  - *b\n  - {<<: *b, name: y}\n",
    "\ufeffrules: []\r\nother:\r\n  - 1\r\n",
    "# only a comment\n",
    "",
    "x: café ñ 日本\n",
]


def _read(text: str) -> tuple[Any, dict[Any, int], dict[Any, int]]:
    doc = parse_yaml_text(text, "f.yaml")
    return doc.data, doc.lines, doc.key_lines


def _error(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_yaml_text(text, "f.yaml")
    return [str(caught.value)]


def test_libyaml_is_the_loader_here() -> None:
    assert yaml.__with_libyaml__ and yamlspec._FAST_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8") for p in SHIPPED] + ODD,
                         ids=[p.name for p in SHIPPED] + [f"odd{i}" for i in range(len(ODD))])
def test_both_parsers_give_the_same_values_and_lines(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _read(text)
    monkeypatch.setattr(yamlspec, "_FAST_LOADER", None)
    assert fast == _read(text)


@pytest.mark.parametrize("text", [
    "rules: [\n",
    "rules:\n\t- name: a\n",
    "a: 1\na: 2\n",
    "rules: !!python/object:os.system x\n",
    "rules: &a [*a]\n",
    "a: *nowhere\n",
    "a: 1\n---\nb: 2\n",
    "a: 'unclosed\n",
    "a: b: c\n",
    "x: \x01\n",
    "x: a\x85b\n",
])
def test_a_broken_file_gets_the_python_parsers_message(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _error(text)
    monkeypatch.setattr(yamlspec, "_FAST_LOADER", None)
    assert fast == _error(text)
