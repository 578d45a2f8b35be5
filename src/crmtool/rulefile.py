"""Rule files: YAML -> schema check -> typed :class:`RuleSet` (no DuckDB here).

A rule file holds an optional ``dataset`` block, a ``rules`` list, and optional sections that
other features own (``dedupe``, ``consent``, ``retention``, ``email_risk`` lists ...). Several
files (a folder) merge: rules in file-name order, each section from at most one file. Every
problem in every file is collected with its ``file:line`` and reported at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmtool.errors import ConfigError, InputError, Location
from crmtool.kinds import KINDS
from crmtool.kinds.base import ACTIONS, SEVERITIES, RuleSpec, Threshold
from crmtool.ruleset import DatasetSpec, RuleSet
from crmtool.sections import SECTIONS
from crmtool.yamlspec import YamlDoc, load_yaml, schema_problems

__all__ = [  # RuleSet and DatasetSpec live in crmtool.ruleset; importable from here as before
    "SCHEMA_ID", "SECTION_SCHEMAS", "DatasetSpec", "RuleSet", "column_problems", "load_rules", "rule_files",
    "rules_schema", "section_problems", "sql_column_problems",
]

SCHEMA_ID = "https://crmtool.dev/schemas/rules.schema.json"
#: top-level sections owned by other features: name -> JSON Schema of the section (read from the
#: registry :data:`crmtool.sections.SECTIONS`)
SECTION_SCHEMAS: dict[str, Any] = {name: section.schema for name, section in SECTIONS.items()}

# one schema, not oneOf: minimum applies to the count, pattern to the share, so a mistake gets
# its own message ("-1 is less than the minimum of 0") instead of the other branch's
_THRESHOLD = {"type": ["integer", "string"], "minimum": 0, "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$",
              "description": "a count of failing rows tolerated (3) or a share ('1%')"}
_COMMON: dict[str, Any] = {
    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$",
             "description": "a unique rule name of letters, digits, '_', '.' and '-'"},
    "kind": {"enum": sorted(KINDS), "description": "what the rule does"},
    "description": {"type": "string"},
    "column": {"type": "string", "minLength": 1},
    "columns": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    "severity": {"enum": list(SEVERITIES)},
    "action": {"enum": list(ACTIONS)},
    "threshold": _THRESHOLD,
    "where": {"type": "string", "description": "SQL filter: the rule applies only to rows where it holds"},
}


def _kind_schema(name: str) -> dict[str, Any]:
    kind = KINDS[name]
    props = {**_COMMON, **kind.options_schema, "action": {"enum": list(kind.actions)}}
    schema: dict[str, Any] = {
        "if": {"type": "object", "properties": {"kind": {"const": name}}, "required": ["kind"]},
        "then": {"properties": props, "additionalProperties": False,
                 "required": list(kind.required_options)},
    }
    if kind.columns == "one":
        schema["then"]["required"] = [*schema["then"]["required"], "column"]
        schema["then"]["properties"] = {k: v for k, v in props.items() if k != "columns"}
    elif kind.columns == "many":
        schema["then"]["oneOf"] = [{"required": ["column"]}, {"required": ["columns"]}]
    return schema


def rules_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file (published by ``crmtool rules schema``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "crmtool rule file",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "dataset": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "description": "record key column (ids in reports, audit)"},
                    "personal_data": {"type": "array", "items": {"type": "string"},
                                      "description": "columns hashed in the audit log besides the detected ones"},
                    "not_personal": {"type": "array", "items": {"type": "string"},
                                     "description": "columns written in clear in the audit log"},
                    "max_unparseable": {**_THRESHOLD, "description":
                                        "unparseable rows tolerated before the run fails: a count (10) or a "
                                        "share ('1%'); default 0"},
                },
            },
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {"kind": _COMMON["kind"]},
                    "allOf": [_kind_schema(k) for k in sorted(KINDS)],
                },
            },
            **SECTION_SCHEMAS,
        },
    }


def rule_files(path: Path) -> list[Path]:
    """The YAML files a ``--rules`` argument names: a file, or every *.yaml/*.yml in a folder."""
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise InputError(f"{path}: folder holds no .yaml rule files")
        return files
    if not path.exists():
        raise InputError(f"{path}: no such rule file or folder")
    return [path]


def _rule_from(doc: YamlDoc, index: int, raw: dict[str, Any], problems: list[tuple[Location, str]]) -> RuleSpec | None:
    loc = doc.loc(("rules", index))
    kind = KINDS[raw["kind"]]
    columns: tuple[str, ...] = ()
    if "column" in raw:
        columns = (raw["column"],)
    elif "columns" in raw:
        columns = tuple(raw["columns"])
    name = raw.get("name") or f"{raw['kind']}_{'_'.join(columns) or index + 1}"
    action = raw.get("action", kind.default_action)
    common = set(_COMMON)
    options = {k: v for k, v in raw.items() if k not in common}
    where = _vetted_sql(doc, index, name, "where", raw.get("where"), problems)
    for option in kind.sql_options:
        if option in options:
            if option == "expr" and "message" not in options:  # the message quotes what the user wrote
                options["message"] = f"condition not met: {options[option]}"
            options[option] = _vetted_sql(doc, index, name, option, options[option], problems)
    spec = RuleSpec(
        name=name,
        kind=raw["kind"],
        columns=columns,
        severity=raw.get("severity", kind.default_severity),
        action=action,
        threshold=Threshold.parse(raw.get("threshold")),
        options=options,
        loc=loc,
        description=raw.get("description", ""),
        where=where,
    )
    for problem in kind.problems(spec):
        # a problem that starts with an option name ("pattern does not compile") points at that option
        option = problem.split(":", 1)[0].split(" ", 1)[0]
        where = doc.loc(("rules", index, option)) if option in raw else loc
        problems.append((where, f"rule '{name}': {problem}"))
    return spec


def _vetted_sql(doc: YamlDoc, index: int, name: str, option: str, sql: Any,
                problems: list[tuple[Location, str]]) -> Any:
    """User SQL of a rule option, vetted (one expression, allowed functions; columns are checked
    once the data is loaded); problems are added with the option's line."""
    if not isinstance(sql, str):
        return sql
    from crmtool.usersql import expression_problems

    vetted, found = expression_problems(sql, columns=None)
    for problem in found:
        problems.append((doc.loc(("rules", index, option)), f"rule '{name}': {option}: {problem}"))
    return vetted if vetted is not None else sql


def _check_name(spec: RuleSpec | None, names: dict[str, Location], problems: list[tuple[Location, str]]) -> None:
    if spec is None:
        return
    if spec.name in names:
        problems.append((spec.loc, f"rule name '{spec.name}' already used at {names[spec.name]}"))
    names[spec.name] = spec.loc


def load_rules(paths: list[Path] | Path) -> RuleSet:
    """Load, validate and merge rule files; raise one :class:`ConfigError` listing every problem."""
    if isinstance(paths, Path):
        paths = [paths]
    files = [f for p in paths for f in rule_files(p)]
    schema = rules_schema()
    ruleset = RuleSet(files=files)
    problems: list[tuple[Location, str]] = []
    names: dict[str, Location] = {}
    for file in files:
        try:
            doc = load_yaml(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(doc.data, dict):
            problems.append((doc.loc(), "expected a mapping with a 'rules' list at the top level"))
            continue
        found = schema_problems(doc, schema, suggest=True)
        if found:
            problems.extend(found)
            # the rules that are right on their own still get their semantic checks (regex, SQL,
            # names), so every problem of the file is reported in one go
            rules = doc.data.get("rules")
            from jsonschema import Draft202012Validator

            item = Draft202012Validator(schema["properties"]["rules"]["items"])
            for i, raw in enumerate(rules if isinstance(rules, list) else []):
                if item.is_valid(raw):
                    _check_name(_rule_from(doc, i, raw, problems), names, problems)
            continue
        data = doc.data
        if "dataset" in data:
            ds = data["dataset"]
            if ruleset.dataset.loc is not None:
                problems.append((doc.loc(("dataset",)), f"dataset already defined at {ruleset.dataset.loc}"))
            ruleset.dataset = DatasetSpec(ds.get("key"), tuple(ds.get("personal_data", ())),
                                          tuple(ds.get("not_personal", ())), doc.loc(("dataset",)),
                                          Threshold.parse(ds.get("max_unparseable")))
        for i, raw in enumerate(data.get("rules", [])):
            spec = _rule_from(doc, i, raw, problems)
            if spec is None:
                continue
            _check_name(spec, names, problems)
            ruleset.rules.append(spec)
        for section in SECTIONS:
            if section in data:
                if section in ruleset.sections:
                    other = ruleset.sections[section][0].loc((section,))
                    problems.append((doc.loc((section,)), f"section '{section}' already defined at {other}"))
                ruleset.sections[section] = (doc, data[section])
    if problems:
        raise ConfigError(problems, "see the rule-file reference in the README, or 'crmtool rules schema'")
    return ruleset


def column_problems(ruleset: RuleSet, columns: list[str]) -> list[tuple[Location, str]]:
    """Rules that name columns the data lacks."""
    have = set(columns)
    problems = []
    for spec in ruleset.rules:
        named = list(spec.columns)
        for opt in ("region_column", "country_column"):
            if spec.opt(opt):
                named.append(spec.opt(opt))
        for col in named:
            if col not in have:
                problems.append((spec.loc, f"rule '{spec.name}': column '{col}' is not in the data "
                                           f"(columns: {', '.join(columns)})"))
    problems.extend(sql_column_problems(ruleset, columns))
    if ruleset.dataset.key and ruleset.dataset.key not in have:
        problems.append((ruleset.dataset.loc or Location(""),
                         f"dataset key '{ruleset.dataset.key}' is not in the data"))
    return problems


def sql_column_problems(ruleset: RuleSet, columns: list[str]) -> list[tuple[Location, str]]:
    """The rules' SQL (``where``, SQL options) checked again with the data's columns known."""
    from crmtool.usersql import expression_problems

    problems: list[tuple[Location, str]] = []
    for spec in ruleset.rules:
        exprs = [("where", spec.where)] if spec.where else []
        exprs += [(o, spec.opt(o)) for o in KINDS[spec.kind].sql_options if spec.opt(o)]
        for label, sql in exprs:
            for problem in expression_problems(sql, columns=columns)[1]:
                problems.append((spec.loc, f"rule '{spec.name}': {label}: {problem}"))
    return problems


def section_problems(ruleset: RuleSet) -> list[tuple[Location, str]]:
    """Every section of ``ruleset`` parsed by the feature that owns it, in registry order; the
    problems of all of them (a section that parses cleanly adds none)."""
    problems: list[tuple[Location, str]] = []
    for section in SECTIONS.values():
        try:
            section.parse(ruleset)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems
