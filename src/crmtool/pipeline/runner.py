"""Run a pipeline: steps in order into ``OUT/runs/<run_id>/``, ``latest`` published only on success.

Publishing: ``OUT/latest.txt`` (the pointer every platform reads: ``runs/<run_id>``) is replaced
atomically (write to a temp file, rename); on POSIX a ``OUT/latest`` symbolic link is also
swapped atomically (a new link renamed over the old), and where links cannot be made the
pointer file alone is published. Both happen only when every step passed
(or warned), so a failed night leaves yesterday's ``latest`` in place. Retention then removes
run folders beyond ``keep`` (newest first), never the one ``latest`` points to.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import CrmToolError, InputError
from crmtool.pipeline.registry import StepContext, StepOutcome, step_kinds
from crmtool.pipeline.spec import PipelineSpec, StepSpec, step_reference
from crmtool.progress import Progress
from crmtool.status import Status
from crmtool.workspace import Workspace

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions

POINTER = "latest.txt"
LINK = "latest"
_ORDER = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3, Status.ABORTED: 4}


@dataclass
class StepRun:
    name: str
    kind: str
    status: Status | None  # None: not run (an earlier step failed)
    seconds: float = 0.0
    run_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "step": self.kind, "status": self.status.value if self.status else "skipped",
                "seconds": round(self.seconds, 3), "run_id": self.run_id, "outputs": self.outputs,
                "counts": self.counts, "message": self.message}


@dataclass
class PipelineResult:
    run_id: str
    day: date
    folder: Path
    status: Status
    exit_code: int
    steps: list[StepRun]
    published: bool = False
    removed: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, Any]:
        """Key counts for the end-of-run line: steps passed, then each step's own counts."""
        done = sum(1 for s in self.steps if s.status in (Status.PASS, Status.WARN))
        out: dict[str, Any] = {"steps": f"{done}/{len(self.steps)}"}
        for s in self.steps:
            out.update(s.counts)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "date": self.day.isoformat(), "folder": str(self.folder),
                "status": self.status.value, "exit_code": self.exit_code, "published": self.published,
                "removed_runs": self.removed, "steps": [s.as_dict() for s in self.steps]}


def workspace_path(spec: PipelineSpec, day: date, override: str | None) -> str:
    if override:
        return override
    return str(spec.path(spec.workspace, day, "workspace")) if spec.workspace else str(spec.folder / "crmtool.duckdb")


def _params(spec: PipelineSpec, step: StepSpec, day: date, done: dict[str, dict[str, Path]]) -> dict[str, Any]:
    kind = step_kinds()[step.kind]
    out: dict[str, Any] = {}
    for param, value in step.params.items():
        typ, where = kind.params[param], f"{step.name}.{param}"
        ref = step_reference(str(value)) if typ == "input" and value not in spec.inputs else None
        if ref is not None:
            wrote = done.get(ref[0], {})
            if ref[1] not in wrote:
                raise InputError(f"step {step.name}: {param} '{value}': step {ref[0]} wrote no '{ref[1]}' output",
                                 f"it wrote: {', '.join(sorted(wrote)) or 'nothing'}")
            out[param] = wrote[ref[1]]
        elif typ == "input":
            out[param] = spec.input_path(str(value), day, where)
        elif typ == "path":
            out[param] = spec.path(str(value), day, where)
        else:
            out[param] = value
    return out


def plan_pipeline(spec: PipelineSpec, day: date, workspace: str | None = None) -> dict[str, Any]:
    """What a run would do on ``day`` (``--dry-run``): resolved paths, and inputs that are missing."""
    out = spec.path(spec.out, day, "out")
    steps, missing = [], []
    for step in spec.steps:
        shown: dict[str, str] = {}
        for param, value in step.params.items():
            typ = step_kinds()[step.kind].params[param]
            ref = step_reference(str(value)) if typ == "input" and value not in spec.inputs else None
            if ref is not None:
                shown[param] = f"output '{ref[1]}' of step {ref[0]}"
            elif typ in ("input", "path"):
                path = spec.input_path(str(value), day, f"{step.name}.{param}")
                shown[param] = str(path)
                if not path.exists():
                    missing.append(f"{step.name}.{param}: {path}")
            else:
                shown[param] = str(value)
        steps.append({"name": step.name, "step": step.kind, "params": shown})
    return {"pipeline": str(spec.file), "date": day.isoformat(), "workspace": workspace_path(spec, day, workspace),
            "folder": str(out / "runs" / "<run_id>"), "latest": str(out / POINTER), "keep": spec.keep,
            "steps": steps, "missing": missing}


def run_pipeline(spec: PipelineSpec, day: date, *, workspace: str | None = None, lock_timeout: float = 60.0,
                 key_file: Path | None = None, progress: Progress | None = None,
                 say: Callable[[str], None] | None = None, output: OutputOptions | None = None) -> PipelineResult:
    """Run every step in order; stop at the first that fails; publish ``latest`` when all passed
    (``output``: how the CSV files of every step look, unless a step sets its own)."""
    out = spec.path(spec.out, day, "out")
    runs_dir = out / "runs"
    with Workspace(workspace_path(spec, day, workspace), lock_timeout=lock_timeout, key_file=key_file) as ws:
        run = ws.start_run("run")
        folder = runs_dir / run.run_id
        result = PipelineResult(run.run_id, day, folder, Status.PASS, 0,
                                [StepRun(s.name, s.kind, None) for s in spec.steps])
        try:
            folder.mkdir(parents=True, exist_ok=False)
            _run_steps(ws, spec, day, result, out, progress, say, output)
        except KeyboardInterrupt:
            result.status, result.exit_code = Status.ABORTED, 130
            _finish(ws, run, spec, result, out)
            raise
        except Exception:  # a bug in a step: the run is still recorded as ended, latest stays
            result.status, result.exit_code = Status.ERROR, 2
            _finish(ws, run, spec, result, out)
            raise
        if result.status in (Status.PASS, Status.WARN):
            publish_latest(out, run.run_id)
            result.published = True
        result.removed = apply_keep(ws, out, spec.keep, run.run_id)
        _finish(ws, run, spec, result, out)
    return result


def _run_steps(ws: Workspace, spec: PipelineSpec, day: date, result: PipelineResult, out: Path,
               progress: Progress | None, say: Callable[[str], None] | None,
               output: OutputOptions | None = None) -> None:
    done: dict[str, dict[str, Path]] = {}
    from crmtool.audit import log_dir

    # the workspace's one audit log (OUT/crmtool.audit for a :memory: workspace)
    ctx = StepContext(ws, result.folder, day, log_dir(ws, out), spec.root, progress, output)
    ws.parent_run_id = result.run_id
    try:
        for step, record in zip(spec.steps, result.steps, strict=True):
            start = time.perf_counter()
            try:
                outcome = step_kinds()[step.kind].run(ctx, _params(spec, step, day, done))
            except CrmToolError as exc:
                outcome = StepOutcome(Status.ERROR, message=exc.message + (f" ({exc.hint})" if exc.hint else ""))
                result.exit_code = int(exc.exit_code)
            finally:
                record.seconds = time.perf_counter() - start
            record.status, record.run_id, record.counts, record.message = (
                outcome.status, outcome.run_id, outcome.counts, outcome.message)
            record.outputs = {k: str(v) for k, v in outcome.outputs.items()}
            done[step.name] = {k: Path(v) for k, v in outcome.outputs.items()}
            if say:
                say(f"step {step.name}: {outcome.status.value} in {record.seconds:.1f} s"
                    + (f": {outcome.message}" if outcome.message else ""))
            if _ORDER[outcome.status] > _ORDER[result.status]:
                result.status = outcome.status
            if outcome.status in (Status.FAIL, Status.ERROR):
                break
    finally:
        ws.parent_run_id = None
    if result.status is Status.FAIL:
        result.exit_code = 1
    elif result.status is Status.ERROR:
        result.exit_code = result.exit_code or 2


def _finish(ws: Workspace, run: Any, spec: PipelineSpec, result: PipelineResult, out: Path) -> None:
    from crmtool.manifest import write_manifest

    step = run.step
    step.metric("steps", len(result.steps))
    step.metric("steps_passed", sum(1 for s in result.steps if s.status in (Status.PASS, Status.WARN)))
    step.metric("published", 1 if result.published else 0)
    for s in result.steps:
        if s.status is not None:
            step.metric("step_seconds", round(s.seconds, 4), s.name)
    step.input(spec.file)
    body = {"pipeline": str(spec.file), "out": str(out), **result.as_dict()}
    if result.folder.is_dir():
        manifest = result.folder / "run.json"
        write_manifest(manifest, {**body, **step.manifest()})
        step.output("manifest", manifest)
    ws.finish_run(run, result.status, result.exit_code, body)


def publish_latest(out: Path, run_id: str, *, symlink: bool | None = None) -> bool:
    """Point ``latest`` at ``runs/<run_id>`` atomically (see the module docstring); True when the
    ``latest`` symbolic link was made too.

    ``latest.txt`` is what every platform reads, so it is written first and always. The link is
    tried on POSIX (``symlink=None``) or when asked; where links cannot be made (Windows without
    the privilege, a FAT or SMB folder: ``os.symlink`` raises ``OSError`` or
    ``NotImplementedError``) publishing still succeeds with the pointer file alone, and a link an
    earlier run left is removed, so ``latest`` never names another run than ``latest.txt``.
    """
    from crmtool.io.writers import write_text_atomic

    write_text_atomic(out / POINTER, f"runs/{run_id}\n")
    link = out / LINK
    if link.exists() and not link.is_symlink():
        return False  # a real folder named latest belongs to someone else: the pointer file still moved
    if os.name == "posix" if symlink is None else symlink:
        tmp = out / f".{LINK}-{run_id}"
        try:
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(Path("runs") / run_id, tmp, target_is_directory=True)
            os.replace(tmp, link)
            return True
        except (OSError, NotImplementedError):
            if tmp.is_symlink():
                tmp.unlink()
    if link.is_symlink():  # an earlier run's link would name another run than latest.txt
        link.unlink()
    return False


def latest_run(out: Path) -> str | None:
    """The run id ``latest`` points to, or None when nothing was published yet."""
    try:
        text = (out / POINTER).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text.split("/", 1)[1] if text.startswith("runs/") else None


def apply_keep(ws: Workspace, out: Path, keep: int, current: str) -> list[str]:
    """Remove run folders of this pipeline's ``out`` beyond the ``keep`` newest (the current run
    counts); the run ``latest`` points to is always kept. Only folders of recorded runs go."""
    rows = ws.con.execute(
        "SELECT run_id, summary FROM crm_runs WHERE command = 'run' AND run_id <> ? AND summary IS NOT NULL "
        "ORDER BY started_at DESC, run_id DESC", [current]).fetchall()
    mine = [current]
    for run_id, summary in rows:
        try:
            if json.loads(summary).get("out") == str(out):
                mine.append(str(run_id))
        except (ValueError, AttributeError):
            continue
    protected = {latest_run(out)}
    removed = []
    for run_id in mine[keep:]:
        folder = out / "runs" / run_id
        if run_id not in protected and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
            removed.append(run_id)
    return removed
