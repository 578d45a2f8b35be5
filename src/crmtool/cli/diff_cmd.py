"""diff: what changed between two exports (added, removed, changed records and fields)."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmtool.cli.common import (
    Ui,
    WorkspaceOptions,
    cli_command,
    emit,
    finish,
)
from crmtool.errors import ExitCode
from crmtool.io.writers import OutputOptions

if TYPE_CHECKING:
    from crmtool.changes import DiffResult


class DiffFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def render_text(result: DiffResult) -> str:
    """Counts for people: records, fields, key problems and column changes (no values)."""
    c = result.counts
    lines = [f"{result.old.path} -> {result.new.path} on {result.key}",
             f"records: {c['added']} added, {c['removed']} removed, {c['changed']} changed, "
             f"{c['unchanged']} unchanged (old {result.old.rows} rows, new {result.new.rows} rows)"]
    changed = [(col, n) for col, n in result.changed_by_field.items() if n]
    if changed:
        width = max(len(col) for col, _ in changed)
        lines.append("changed fields:")
        lines += [f"  {col:<{width}}  {n:>9}" for col, n in sorted(changed, key=lambda x: (-x[1], x[0]))]
    for side, info in (("old", result.old), ("new", result.new)):
        problems = []
        if info.keys.empty:
            problems.append(f"{info.keys.empty} rows with an empty key")
        if info.keys.duplicate_keys:
            problems.append(f"{info.keys.duplicate_keys} keys repeated on {info.keys.duplicate_rows} rows")
        if info.unparseable_rows:
            problems.append(f"{info.unparseable_rows} unparseable rows")
        if problems:
            lines.append(f"{side}: " + ", ".join(problems) + " (left out of the comparison)")
    if result.columns.added:
        lines.append("columns added: " + ", ".join(result.columns.added))
    if result.columns.removed:
        lines.append("columns removed: " + ", ".join(result.columns.removed))
    for name, path in result.outputs.items():
        lines.append(f"  {name:10} {path}")
    lines.append(f"run {result.run_id}: {result.status}")
    return "\n".join(lines)


def render_csv(result: DiffResult) -> str:
    """The metrics of the run as CSV (name, dimension, value): what ``crm_metrics`` holds."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "dimension", "value"])
    for name, dim, value in result.metrics():
        writer.writerow([name, dim, int(value)])
    return buf.getvalue()


@cli_command
def diff(
    ui: Ui,
    old: Annotated[Path, typer.Argument(help="The earlier export (CSV, Parquet or xlsx).", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The later export.", show_default=False)],
    key: Annotated[str, typer.Option("--key", "-k", help="Column that identifies a record in both exports.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for added.csv, removed.csv, changes.csv, key_issues.csv and summary.json.")] = None,
    output: OutputOptions = OutputOptions(),
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Result on stdout: text, json or csv.")]
    = DiffFormat.text,
    show_values: Annotated[bool, typer.Option(
        "--show-values", help="Write personal values in clear in the output files (default: keyed hashes).")] = False,
    where: WorkspaceOptions = WorkspaceOptions(),
) -> ExitCode:
    """Added, removed and changed records between two exports, and the fields that changed."""
    from crmtool.changes import diff_exports

    with where.open() as ws:
        result = diff_exports(ws, old, new, key=key, out_dir=out, show_values=show_values,
                              output=output)
    if result.key_created:
        ui.warn(f"created a new key for keyed hashes at {result.key_created} (owner-only); keep it safe")
    return finish(ui, result, fmt, lambda: None if ui.quiet else emit(ui, render_text(result)),
                  renderers={"csv": lambda: render_csv(result)})
