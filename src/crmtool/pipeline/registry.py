"""Step kinds of the pipeline, registered by name.

A kind declares its parameters (name -> type) and a function that runs it. Parameter types:
``path`` (a file or folder, relative to the pipeline file, ``{date}`` filled in), ``input`` (a
name from the pipeline's ``inputs``, ``<step>.<output>`` for a file an earlier step wrote, or a
path), ``text``, ``integer`` and ``boolean``. Adding a kind is one call::

    register(StepKind("diff", {"old": "input", "new": "input", "key": "text"}, ("old", "new", "key"), run_diff))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions
    from crmtool.progress import Progress
    from crmtool.workspace import Workspace

PARAM_TYPES = {"path": {"type": "string", "minLength": 1}, "input": {"type": "string", "minLength": 1},
               "text": {"type": "string"}, "integer": {"type": "integer"}, "boolean": {"type": "boolean"}}


@dataclass
class StepContext:
    """What a step gets besides its parameters: the open workspace, its run folder, the date."""

    ws: Workspace
    folder: Path  # out/runs/<run_id>/ : every file the step writes goes here
    day: date
    audit_log: Path  # the workspace's one audit log (a folder; crmtool.audit.log_dir)
    pipeline_root: Path
    progress: Progress | None = None
    output: OutputOptions | None = None  # how CSV files look (crmtool run --csv-dialect ...); a step may set its own


@dataclass
class StepOutcome:
    """How a step ended: its status, the run it recorded, files it wrote and a few counts."""

    status: Status
    run_id: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    message: str = ""


StepFunction = Callable[[StepContext, dict[str, Any]], StepOutcome]


@dataclass(frozen=True)
class StepKind:
    name: str
    params: dict[str, str]
    required: tuple[str, ...]
    run: StepFunction
    description: str = ""

    def schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {"step": {"const": self.name}, "name": {"type": "string",
                                 "pattern": "^[A-Za-z][A-Za-z0-9_-]*$",
                                 "description": "a name: letters, digits, _ and -"}}
        props.update({p: PARAM_TYPES[t] for p, t in self.params.items()})
        return {"properties": props, "required": ["step", *self.required], "additionalProperties": False}


STEP_KINDS: dict[str, StepKind] = {}


def register(kind: StepKind) -> StepKind:
    """Make ``kind`` available to pipeline files (a later registration of the same name replaces it)."""
    for param, typ in kind.params.items():
        if typ not in PARAM_TYPES:
            raise ValueError(f"step kind {kind.name}: parameter {param} has unknown type {typ}")
    STEP_KINDS[kind.name] = kind
    return kind


def step_kinds() -> dict[str, StepKind]:
    """Every registered kind (the built-in ones are registered on first use)."""
    from crmtool.pipeline import steps  # noqa: F401 - registers the built-in kinds

    return STEP_KINDS
