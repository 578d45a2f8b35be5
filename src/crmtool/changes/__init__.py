"""What changed between two exports: added, removed and changed records on a key.

>>> from crmtool.changes import diff_exports
>>> from crmtool.workspace import open_workspace
>>> with open_workspace("crm.duckdb") as ws:                       # doctest: +SKIP
...     result = diff_exports(ws, Path("old.csv"), Path("new.csv"), key="customer_id", out_dir=Path("diff"))

Both exports are read as the project's readers read them (CSV in any common encoding and
delimiter, Parquet, xlsx; a plain CSV or Parquet file by DuckDB directly, see
:mod:`crmtool.changes.read`); columns are matched by name in any order. Rows with an empty key, or a key that
occurs more than once in its export, cannot be paired: they are counted and listed
(``key_issues.csv``), never dropped silently. The run is a step (:mod:`crmtool.steps`): recorded in
``crm_runs``, its counts in ``crm_metrics`` (step ``diff``) for the KPIs, its files in ``crm_outputs``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.changes.compare import (
    NEW,
    OLD,
    ColumnPlan,
    KeyProblems,
    build_delta,
    delta_counts,
    pair_keys,
    plan_columns,
)
from crmtool.changes.read import Side
from crmtool.errors import CrmToolError
from crmtool.status import Status
from crmtool.workspace import Run, Workspace

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions

STEP = "diff"
SCRATCH = "crm_diff"


@dataclass(frozen=True)
class DiffInput:
    """One side as read: path, SHA-256, how it was read, and rows the comparison could not use."""

    path: Path
    sha256: str
    format: str
    rows: int
    unparseable_rows: int
    keys: KeyProblems

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "format": self.format, "rows": self.rows,
                "unparseable_rows": self.unparseable_rows, "empty_keys": self.keys.empty,
                "duplicate_keys": self.keys.duplicate_keys, "duplicate_key_rows": self.keys.duplicate_rows}


@dataclass
class DiffResult:
    """Counts of a diff (no customer values); ``outputs`` names the files written when asked."""

    run_id: str
    key: str
    old: DiffInput
    new: DiffInput
    columns: ColumnPlan
    counts: dict[str, int]
    changed_by_field: dict[str, int]
    personal_columns: list[str]
    show_values: bool
    outputs: dict[str, Path] = field(default_factory=dict)
    key_created: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    status: Status = Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": str(self.status),
            "key": self.key,
            "old": self.old.as_dict(),
            "new": self.new.as_dict(),
            "columns": {"compared": [n for _o, n in self.columns.compared], "added": self.columns.added,
                        "removed": self.columns.removed, "compared_as_text": self.columns.retyped},
            "counts": self.counts,
            "changed_by_field": self.changed_by_field,
            "values": "shown" if self.show_values else "personal values as keyed hashes",
            "personal_columns": self.personal_columns,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "seconds": self.seconds,
            "timings": self.timings,
        }

    def metrics(self) -> list[tuple[str, str, float]]:
        """(name, dimension, value) rows for ``crm_metrics``: counts only, never a value."""
        rows: list[tuple[str, str, float]] = [(name, "", float(n)) for name, n in self.counts.items()]
        for side, info in (("old", self.old), ("new", self.new)):
            rows += [("rows", side, info.rows), ("empty_keys", side, info.keys.empty),
                     ("duplicate_keys", side, info.keys.duplicate_keys),
                     ("duplicate_key_rows", side, info.keys.duplicate_rows),
                     ("unparseable_rows", side, info.unparseable_rows)]
        rows += [("changed_field", col, float(n)) for col, n in self.changed_by_field.items()]
        rows += [("columns_added", "", len(self.columns.added)), ("columns_removed", "", len(self.columns.removed))]
        return [(name, dim, float(v)) for name, dim, v in rows]


def diff_exports(ws: Workspace, old: Path, new: Path, *, key: str, out_dir: Path | None = None,
                 show_values: bool = False, output: OutputOptions | None = None) -> DiffResult:
    """Compare ``old`` and ``new`` on ``key``; write the detail to ``out_dir`` when given (``output``:
    how its CSV files look, see :class:`crmtool.io.writers.OutputOptions`; ``summary.json`` is JSON)."""
    import time

    from crmtool.io.readers import ensure_readable

    for path in (old, new):
        ensure_readable(path)
    from crmtool.changes.read import discard_side

    start = time.perf_counter()
    run = ws.start_run(STEP)
    cur = ws.con.cursor()
    sides: dict[str, Side] = {}
    try:
        cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SCRATCH}")
        cur.execute(f"USE {SCRATCH}")
        result = _compare(ws, cur, run, (old, new), key, sides, out_dir, show_values, output)
        result.seconds = round(time.perf_counter() - start, 3)
        _record(ws, run, result)
    except CrmToolError as exc:
        ws.finish_run(run, Status.ERROR, int(exc.exit_code), {"error": exc.message})
        raise
    finally:
        # the two exports are in SCRATCH (tables, or views over Parquet files linked into the
        # sandbox); everything made from them is a temporary table of the cursor, gone when it
        # closes (see crmtool.changes.compare on why they are kept apart)
        for side, table in (("old", OLD), ("new", NEW)):
            discard_side(cur, table, sides.get(side))
        cur.close()
    return result


def _compare(ws: Workspace, cur: Any, run: Run, paths: tuple[Path, Path], key: str, sides: dict[str, Side],
             out_dir: Path | None, show_values: bool, output: OutputOptions | None = None) -> DiffResult:
    """Read both exports into ``sides`` (filled as they are read, so the caller can clean up) and compare."""
    from crmtool.changes.read import read_side
    from crmtool.io.readers import file_sha256
    from crmtool.pii import detect_pii

    old, new = paths
    with ThreadPoolExecutor(2) as pool, run.timed("read"):  # hashing overlaps reading (hashlib frees the GIL)
        hashes = [pool.submit(file_sha256, p) for p in (old, new)]
        sides["old"] = read_side(cur, old, OLD)
        sides["new"] = read_side(cur, new, NEW)
        sha_old, sha_new = (h.result() for h in hashes)
    plan = plan_columns(cur, key, (str(old), str(new)))
    with run.timed("keys"):
        problems, taking_part = pair_keys(cur, plan, sides)
    with run.timed("compare"):
        build_delta(cur, plan, sides)
        counts, by_field = delta_counts(cur, plan)
    counts["unchanged"] = taking_part - counts["added"] - counts["changed"]
    # record keys stay readable (they are how a user finds the record); other personal data is hashed
    detected = {**detect_pii(cur, OLD), **detect_pii(cur, NEW)}
    personal = sorted({c for c, p in detected.items() if p.category != "customer_id"} - {plan.key_old, plan.key_new})
    result = DiffResult(
        run.run_id, plan.key_new,
        DiffInput(old, sha_old, sides["old"].format, sides["old"].rows, sides["old"].unparseable_rows,
                  problems["old"]),
        DiffInput(new, sha_new, sides["new"].format, sides["new"].rows, sides["new"].unparseable_rows,
                  problems["new"]),
        plan, counts, by_field, personal, show_values,
    )
    result.timings = run.timings
    if out_dir is not None:
        with run.timed("write"):
            result.key_created = _write(ws, cur, run, out_dir, result, sides, output)
    return result


def _write(ws: Workspace, cur: Any, run: Run, out_dir: Path, result: DiffResult, sides: dict[str, Side],
           output: OutputOptions | None = None) -> str | None:
    """Write the detail and the summary, register every file; the key file's path when it was created."""
    from crmtool.changes.outputs import rendering, write_detail
    from crmtool.io.writers import write_text_atomic

    created = None
    if result.personal_columns and not result.show_values:
        hasher = ws.hasher
        hasher.register_sql(cur)
        created = hasher.source if hasher.created else None
    render = rendering({c.lower() for c in result.personal_columns}, result.show_values)
    key_issues = any(s.keys.empty or s.keys.duplicate_keys for s in (result.old, result.new))
    files = write_detail(cur, out_dir, result.columns, sides, result.changed_by_field, render, key_issues, output)
    rows = {"diff_added": result.counts["added"], "diff_removed": result.counts["removed"],
            "diff_changes": sum(result.changed_by_field.values()),
            "diff_key_issues": sum(s.keys.empty + s.keys.duplicate_rows for s in (result.old, result.new))}
    summary = out_dir / "summary.json"
    result.outputs = {kind.removeprefix("diff_"): path for kind, (path, _q) in files.items()}
    result.outputs["summary"] = summary
    write_text_atomic(summary, json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n")
    for kind, (path, _query) in files.items():
        run.step.output(kind, path, rows[kind])
    run.step.output("diff_summary", summary)
    return created


def _record(ws: Workspace, run: Run, result: DiffResult) -> None:
    """The run's step (inputs, counts as metrics; outputs were added when written) and its summary,
    stored by the workspace's one recorder (``crm_runs``, ``crm_metrics`` step ``diff``, ``crm_outputs``)."""
    for info in (result.old, result.new):
        run.step.input(info.path, info.rows, sha256=info.sha256)
    for name, dim, value in result.metrics():
        run.step.metric(name, value, dim)
    ws.finish_run(run, result.status, result.status.exit_code, result.as_dict())
