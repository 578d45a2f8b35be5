"""Load YAML configuration with the line every value came from, and validate it against a schema.

Every configuration file (rules, policies, segments) goes through :func:`load_yaml` then
:func:`validate_schema`, so a mistake is always reported as ``file:line: what was expected``,
all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmtool.errors import ConfigError, InputError, Location

PathKey = tuple[str | int, ...]
_SCALARS = yaml.constructor.SafeConstructor()


@dataclass
class YamlDoc:
    """Plain data from one YAML file plus the line of every node, keyed by its path."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    #: the line of each mapping key (a mapping value starts on the next line)
    key_lines: dict[PathKey, int] = field(default_factory=dict)

    def loc(self, path: Iterable[str | int] = ()) -> Location:
        """Location of the node at ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key not in self.lines and key:
            key = key[:-1]
        return Location(self.file, self.lines.get(key, 0))


def _construct(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], problems: list[tuple[Location, str]],
               file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = str(key_node.value)
            else:  # '? [a, b]': a list or mapping as a key
                key = f"(complex key at line {key_node.start_mark.line + 1})"
                problems.append((Location(file, key_node.start_mark.line + 1), "a key must be plain text"))
            if key in out:
                problems.append((Location(file, key_node.start_mark.line + 1), f"duplicate key '{key}'"))
            lines[("\0key", *path, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*path, key), lines, problems, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, (*path, i), lines, problems, file) for i, v in enumerate(node.value)]
    # scalars: let PyYAML's safe constructor resolve the type (int, bool, null, ...), except the
    # YAML 1.1 readings that YAML 1.2 (editors, the JSON Schema) drops: yes/no/on/off/y/n are text
    # (country NO, answers yes/no), and so are 1:30 (not the base-60 number 90) and dates (the
    # schemas expect ISO text)
    if isinstance(node, yaml.ScalarNode) and not node.style:  # plain: None (Python parser) or "" (libyaml)
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            return node.value
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and ":" in node.value:
            return node.value
    return _SCALARS.construct_object(node)


#: libyaml's parser where PyYAML was built with it (issue 19: ~15x faster on the example rules)
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
#: characters the two parsers may read differently (PyYAML refuses what is not printable; both
#: break lines at NEL, LS and PS, but their marks may not agree): such text goes to PyYAML alone
_PYTHON_ONLY = re.compile("[\x85\u2028\u2029]|" + yaml.reader.Reader.NON_PRINTABLE.pattern)


def _compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``: libyaml's when it reads it without complaint, else PyYAML's, so a
    broken file gets PyYAML's own message and line (the two word their errors differently)."""
    if _FAST_LOADER is not None and not _PYTHON_ONLY.search(text):
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def parse_yaml_text(text: str, file: str) -> YamlDoc:
    """Parse YAML text; syntax errors and duplicate keys become a :class:`ConfigError` with lines."""
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = exc.problem or str(exc)
        raise ConfigError([(Location(file, line), f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([(Location(file), f"YAML error: {exc}")]) from None
    doc = YamlDoc(file=file, data=None)
    if node is None:
        doc.data = {}
        return doc
    problems: list[tuple[Location, str]] = []
    try:
        doc.data = _construct(node, (), doc.lines, problems, file)
        for key in [k for k in doc.lines if k and k[0] == "\0key"]:
            doc.key_lines[key[1:]] = doc.lines.pop(key)
    except yaml.MarkedYAMLError as exc:  # e.g. a !!python/object tag: no constructor in safe YAML
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError([(Location(file, mark.line + 1 if mark else 0),
                            f"YAML error: {exc.problem or exc.context}")]) from None
    except RecursionError:  # an alias inside itself (&a [*a]) or absurd nesting
        raise ConfigError([(Location(file), "YAML nests too deeply (an alias that contains itself?)")]) from None
    if problems:
        raise ConfigError(problems)
    return doc


def load_yaml(path: Path) -> YamlDoc:
    """Read and parse one YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError([(Location(str(path)), "not UTF-8 text")], "save the file as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_yaml_text(text, str(path))


def _describe(error: Any) -> str:
    """A short, human sentence for one jsonschema error."""
    validator = error.validator
    where = "/".join(str(p) for p in error.absolute_path) or "top level"
    if validator == "required":
        return f"{where}: {error.message.replace(' is a required property', '')} is required"
    if validator == "additionalProperties":
        return f"{where}: {error.message}"
    if validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"{where}: expected one of {allowed}, got {error.instance!r}"
    if validator == "type":
        return f"{where}: expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    if validator == "pattern" and isinstance(error.schema, dict) and error.schema.get("description"):
        return f"{where}: expected {error.schema['description']}, got {error.instance!r}"  # not the regex
    return f"{where}: {error.message}"


def did_you_mean(unknown: str, known: Iterable[str]) -> str:
    """`` (did you mean 'threshold'?)`` for a misspelt key, or ``""`` when nothing is close."""
    import difflib

    close = difflib.get_close_matches(unknown, sorted(set(known)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown_keys(doc: YamlDoc, error: Any) -> list[tuple[Location, str]] | None:
    """One problem per key that ``additionalProperties: false`` refuses, at the key's own line,
    with the closest allowed key; None when the error is of another kind."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
    patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
    import re

    extra = [k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns)]
    if not extra:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "top level"
    def at(key: str) -> Location:
        line = doc.key_lines.get((*error.absolute_path, key))
        return Location(doc.file, line) if line else doc.loc((*error.absolute_path, key))

    return [(at(key), f"{where}: Additional properties are not allowed "
             f"('{key}' was unexpected){did_you_mean(key, allowed)}") for key in extra]


def schema_problems(doc: YamlDoc, schema: dict[str, Any], *, suggest: bool = True) -> list[tuple[Location, str]]:
    """Every schema violation in ``doc``, each with the line of the offending node; an unknown key
    gets a "did you mean" with the closest key the schema allows there (unless ``suggest`` is off)."""
    from crmtool.schema_check import surely_valid

    if surely_valid(schema, doc.data):  # a right document needs no messages: jsonschema stays unloaded
        return []
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(schema)
    problems: list[tuple[Location, str]] = []
    for error in validator.iter_errors(doc.data):
        # for oneOf/anyOf, report the most relevant sub-error rather than the generic one
        if error.context:
            error = best_match(error.context)
        unknown = _unknown_keys(doc, error) if suggest else None
        if unknown:
            problems.extend(unknown)
            continue
        problems.append((doc.loc(error.absolute_path), _describe(error)))
    return problems
