"""The pipeline file: YAML -> checked, frozen :class:`PipelineSpec`.

The file is untrusted data. It is validated against a JSON Schema (every problem reported as
``file:line``, all at once), and every path in it must stay inside the root folder (the pipeline
file's folder unless the operator gives ``--root``): ``..`` or a symbolic link that leads out is
refused, and so is an absolute path unless the operator allows them (``--allow-absolute-paths``).
The file itself cannot grant either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crmtool.errors import ConfigError, Location, UsageError
from crmtool.yamlspec import load_yaml, schema_problems

SCHEMA_ID = "https://crmtool.dev/schemas/pipeline.schema.json"
_REF = re.compile(r"^([A-Za-z][A-Za-z0-9_-]+):([A-Za-z][A-Za-z0-9_:.-]*)$")
_PROBE_DATE = date(2000, 1, 1)


def pipeline_schema() -> dict[str, Any]:
    from crmtool.pipeline.registry import step_kinds

    kinds = step_kinds()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "crmtool pipeline",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "steps"],
        "properties": {
            "version": {"const": 1},
            "workspace": {"type": "string", "minLength": 1},
            "out": {"type": "string", "minLength": 1},
            "keep": {"type": "integer", "minimum": 1, "maximum": 10000},
            "inputs": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                       "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_-]*$"}},
            "steps": {
                "type": "array", "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["step"],
                    "properties": {"step": {"enum": sorted(kinds)}},
                    "allOf": [{"if": {"properties": {"step": {"const": k}}, "required": ["step"]},
                               "then": kind.schema()} for k, kind in sorted(kinds.items())],
                },
            },
        },
    }


@dataclass(frozen=True)
class StepSpec:
    name: str
    kind: str
    params: dict[str, Any]
    loc: Location


@dataclass(frozen=True)
class PipelineSpec:
    """A checked pipeline file. Paths are kept as written (with ``{date}``); see :meth:`path`."""

    file: Path
    root: Path
    allow_absolute: bool
    workspace: str | None
    out: str
    keep: int
    inputs: dict[str, str]
    steps: tuple[StepSpec, ...]
    locs: dict[str, Location]

    @property
    def folder(self) -> Path:
        return self.file.resolve().parent

    def path(self, value: str, day: date, where: str = "") -> Path:
        """``value`` (``{date}`` filled in) as an absolute path inside the root, else a ConfigError."""
        problem = _path_problem(value, self.folder, self.root, self.allow_absolute, day)
        if problem:
            raise ConfigError([(self.locs.get(where, Location(str(self.file))), problem)])
        return _resolve(value, self.folder, day)

    def input_path(self, value: str, day: date, where: str) -> Path:
        """An ``input`` parameter that is a declared input or a path (not a step reference)."""
        return self.path(self.inputs.get(value, value), day, where)


def _resolve(value: str, folder: Path, day: date) -> Path:
    text = value.replace("{date}", day.isoformat())
    path = Path(text).expanduser() if text.startswith("~") else Path(text)
    return (path if path.is_absolute() else folder / path).resolve()


def _path_problem(value: str, folder: Path, root: Path, allow_absolute: bool, day: date) -> str:
    if "{" in value.replace("{date}", ""):
        return f"'{value}': the only placeholder a path may hold is {{date}}"
    raw = value.replace("{date}", day.isoformat())
    if (Path(raw).is_absolute() or raw.startswith("~")) and not allow_absolute:
        return f"'{value}' is an absolute path; only paths inside {root} are allowed (--allow-absolute-paths)"
    if Path(raw).is_absolute() or raw.startswith("~"):
        return ""
    target = _resolve(value, folder, day)
    if not target.is_relative_to(root):
        return f"'{value}' leads outside {root}; pipeline paths must stay inside it (see --root)"
    return ""


def load_pipeline(path: Path, *, root: Path | None = None, allow_absolute: bool = False) -> PipelineSpec:
    """Read ``path`` and check it completely; every problem is reported at once with its line."""
    from crmtool.pipeline.registry import step_kinds

    doc = load_yaml(path)
    problems = schema_problems(doc, pipeline_schema())
    if problems:
        raise ConfigError(problems, "crmtool run --schema prints the JSON Schema of pipeline files")
    folder = path.resolve().parent
    root = (root or folder).resolve()
    if not folder.is_relative_to(root):
        raise UsageError(f"--root {root} does not contain the pipeline file {path}")
    data = doc.data
    locs: dict[str, Location] = {}
    kinds = step_kinds()
    steps: list[StepSpec] = []
    seen: dict[str, Location] = {}
    declared = dict(data.get("inputs") or {})
    for i, raw in enumerate(data["steps"]):
        loc = doc.loc(("steps", i))
        name = str(raw.get("name") or raw["step"])
        if name in seen:
            problems.append((loc, f"step name '{name}' is used twice (first at line {seen[name].line}); "
                                  "give one a 'name:'"))
        kind = kinds[raw["step"]]
        params = {k: v for k, v in raw.items() if k not in ("step", "name")}
        for param, value in params.items():
            where = f"{name}.{param}"
            locs[where] = doc.loc(("steps", i, param))
            typ = kind.params[param]
            problems += _param_problems(typ, str(value), where, locs[where], declared, seen, folder, root,
                                        allow_absolute)
        seen[name] = loc
        steps.append(StepSpec(name, kind.name, params, loc))
    for key in ("workspace", "out"):
        if key in data:
            locs[key] = doc.loc((key,))
            problem = _path_problem(str(data[key]), folder, root, allow_absolute, _PROBE_DATE)
            if problem:
                problems.append((locs[key], problem))
    for name, value in declared.items():
        locs[f"inputs.{name}"] = doc.loc(("inputs", name))
        problem = _path_problem(value, folder, root, allow_absolute, _PROBE_DATE)
        if problem:
            problems.append((locs[f"inputs.{name}"], problem))
    if problems:
        raise ConfigError(problems)
    return PipelineSpec(path, root, allow_absolute, data.get("workspace"), data.get("out", "out"),
                        int(data.get("keep", 14)), declared, tuple(steps), locs)


def _param_problems(typ: str, value: str, where: str, loc: Location, declared: dict[str, str],
                    earlier: dict[str, Location], folder: Path, root: Path,
                    allow_absolute: bool) -> list[tuple[Location, str]]:
    if typ == "input":
        if value in declared:
            return []
        ref = step_reference(value)
        if ref is not None:
            if ref[0] in earlier:
                return []
            return [(loc, f"{where}: '{value}' names no earlier step '{ref[0]}' (steps run in file order)")]
    if typ in ("input", "path"):
        problem = _path_problem(value, folder, root, allow_absolute, _PROBE_DATE)
        return [(loc, f"{where}: {problem}")] if problem else []
    return []


def step_reference(value: str) -> tuple[str, str] | None:
    """``clean:clean`` -> ('clean', 'clean'): a file an earlier step wrote, by step name and output kind
    (split at the first colon, so ``segment:segment:vip`` is the ``segment:vip`` output of ``segment``)."""
    match = _REF.match(value)
    return (match.group(1), match.group(2)) if match else None
