"""One shape for every command's run: a :class:`Step` and the one recorder that stores it.

Every command is a step: it reads inputs (path and SHA-256), writes outputs (registered in
``crm_outputs``), measures metrics (name, value, dimension), ends with a
:class:`~crmtool.status.Status` and keeps timings. The command fills the step its
:class:`~crmtool.workspace.Run` carries (``run.step``); :func:`record` — called by
``Workspace.finish_run`` and nothing else — writes it to ``crm_runs`` (summary), ``crm_metrics``
and ``crm_outputs``; :meth:`Step.manifest` is the same step as a manifest section. History, the
KPIs and the pipeline then read one set of tables.

Metrics never hold customer values: only counts, shares and rule, status or segment names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.workspace import Run, Workspace

# words older call sites use for a status; the recorder stores the Status value
_STATUS_WORDS = {"ok": Status.PASS, "passed": Status.PASS, "failed": Status.FAIL}


@dataclass(frozen=True)
class Metric:
    """One measurement of a step: ``rows_in``, or ``email_status_share`` with dimension ``valid``."""

    name: str
    value: float | None
    dimension: str = ""


@dataclass(frozen=True)
class StepFile:
    """A file a step read or wrote: absolute path, SHA-256, and for outputs its kind and rows."""

    path: str
    sha256: str
    kind: str = ""
    rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": self.path, "sha256": self.sha256}
        if self.kind:
            body["kind"] = self.kind
        if self.rows is not None:
            body["rows"] = self.rows
        return body


@dataclass
class Step:
    """What one command run read, wrote and measured; filled by the command, stored by :func:`record`."""

    name: str
    inputs: list[StepFile] = field(default_factory=list)
    outputs: list[StepFile] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    status: Status | None = None

    def input(self, path: Path, rows: int | None = None, *, sha256: str | None = None) -> None:
        """A file this step read (``sha256`` when the caller hashed it already)."""
        from crmtool.io.readers import file_sha256

        target = Path(path).resolve()
        self.inputs.append(StepFile(str(target), sha256 or file_sha256(target), rows=rows))

    def output(self, kind: str, path: Path, rows: int | None = None, *, sha256: str | None = None) -> None:
        """A file this step wrote; registered in ``crm_outputs`` when the run is recorded."""
        from crmtool.io.readers import file_sha256

        target = Path(path).resolve()
        self.outputs.append(StepFile(str(target), sha256 or file_sha256(target), kind, rows))

    def metric(self, name: str, value: float | int | None, dimension: str = "") -> None:
        self.metrics.append(Metric(name, None if value is None else float(value), str(dimension)))

    def share(self, name: str, part: float | int | None, whole: float | int | None, dimension: str = "") -> None:
        """A ratio metric; no value (NULL) when the whole is zero or unknown."""
        ok = part is not None and whole
        self.metric(name, round(float(part) / float(whole), 6) if ok else None, dimension)  # type: ignore[arg-type]

    def counts(self, values: dict[str, Any], *, dimension_of: str = "") -> None:
        """Every numeric item of ``values`` as a metric (a nested mapping of numbers becomes one
        metric per key, the key as its dimension); booleans and text are skipped."""
        for name, value in values.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                self.metric(f"{dimension_of}{name}", value)
            elif isinstance(value, dict) and value and all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
                for dim, v in value.items():
                    self.metric(f"{dimension_of}{name}", v, str(dim))

    def manifest(self) -> dict[str, Any]:
        """The step as a manifest section (inputs, outputs, metrics)."""
        return {
            "step": {
                "name": self.name,
                "inputs": [f.as_dict() for f in self.inputs],
                "outputs": [f.as_dict() for f in self.outputs],
                "metrics": [{"name": m.name, "dimension": m.dimension, "value": m.value} for m in self.metrics],
            }
        }


def as_status(status: Status | str) -> Status:
    """The Status for a word an older call site passes (``ok`` is ``pass``)."""
    if isinstance(status, Status):
        return status
    return _STATUS_WORDS.get(status) or Status(status)


#: metric rows per INSERT statement (a run records ~50; a long parameter list costs little)
_METRICS_PER_INSERT = 1000


def record(ws: Workspace, run: Run, status: Status | str, exit_code: int, summary: dict[str, Any]) -> None:
    """The one recorder: the run's row in ``crm_runs``, its metrics and its registered outputs.

    When a command recorded no metric of its own, the numbers of its summary (top level and
    ``counts``) become its metrics, so every command feeds the KPIs.
    """
    step = run.step
    step.status = as_status(status)
    if not step.metrics:
        step.counts({k: v for k, v in summary.items() if k not in ("run_id", "timings", "timings_seconds")})
        if isinstance(summary.get("counts"), dict):
            step.counts(summary["counts"])
    now = datetime.now(UTC).replace(tzinfo=None)
    body = {**summary, "step": {"inputs": [f.as_dict() for f in step.inputs],
                                "outputs": [f.as_dict() for f in step.outputs],
                                "metrics": len(step.metrics), "timings": run.timings}}
    con = ws.con
    con.execute(
        "UPDATE crm_runs SET finished_at = ?, status = ?, exit_code = ?, summary = ? WHERE run_id = ?",
        [now, step.status.value, exit_code, json.dumps(body, sort_keys=True, default=str), run.run_id],
    )
    latest = {(m.name, m.dimension): m.value for m in step.metrics}  # recorded twice: the last value
    rows = [(run.run_id, step.name, name, dim, value, now) for (name, dim), value in latest.items()]
    for start in range(0, len(rows), _METRICS_PER_INSERT):  # one statement (executemany: ~0.2 ms a row)
        chunk = rows[start:start + _METRICS_PER_INSERT]
        values = ", ".join(["(?, ?, ?, ?, CAST(? AS DOUBLE), CAST(? AS TIMESTAMP))"] * len(chunk))
        con.execute(f"INSERT INTO crm_metrics VALUES {values}", [v for row in chunk for v in row])
    for out in step.outputs:
        ws.register_output(run, out.kind, Path(out.path), out.rows, sha256=out.sha256)
