"""crmtool run: the nightly pipeline (thin over :mod:`crmtool.pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crmtool.cli.common import (
    OutputFormat,
    Ui,
    WorkspaceOptions,
    cli_command,
    emit,
    finish,
    parse_as_of,
    workspace_bundle,
)
from crmtool.errors import ExitCode, UsageError
from crmtool.io.writers import OutputOptions

# no default of its own: the pipeline's 'workspace' when not named here
_PipelineWorkspaceOpt = Annotated[str | None, typer.Option(
    "--workspace", "-w", envvar="CRMTOOL_WORKSPACE",
    help="DuckDB workspace (default: the pipeline's 'workspace', else crmtool.duckdb beside it).")]
PipelineWorkspace = Annotated[WorkspaceOptions, workspace_bundle("lock_timeout", "key_file",
                                                                 workspace=(_PipelineWorkspaceOpt, None))]


def register(app: typer.Typer) -> None:
    app.command("run")(run)


@cli_command
def run(
    ui: Ui,
    pipeline: Annotated[Path | None, typer.Argument(help="Pipeline file (YAML).", show_default=False)] = None,
    day: Annotated[str | None, typer.Option("--date", help="Date filled into {date} in paths (default today), "
                                                          "YYYY-MM-DD.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and show what would run.")] = False,
    root: Annotated[Path | None, typer.Option(
        "--root", help="Folder every path of the pipeline must stay inside (default: the pipeline's folder).")] = None,
    allow_absolute: Annotated[bool, typer.Option(
        "--allow-absolute-paths", help="Let the pipeline name absolute paths.")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of pipeline files.")] = False,
    output: OutputOptions = OutputOptions(),
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Result on stdout: text or json.")]
    = OutputFormat.text,
    where: PipelineWorkspace = WorkspaceOptions(""),
) -> ExitCode:
    """Run a pipeline for cron: steps into out/runs/<run_id>/, 'latest' published only when every step passed.

    Exit 0 all steps passed, 1 a step's checks failed (or a KPI is off), 2 configuration or input error, 3 workspace busy, 130 interrupted.

    The log file ends with one line: run id, status, key counts.
    """  # noqa: E501 - typer keeps the docstring's line breaks
    import json

    from crmtool.pipeline import load_pipeline, plan_pipeline, run_pipeline
    from crmtool.pipeline.spec import pipeline_schema
    from crmtool.result import Fields
    from crmtool.status import Status

    workspace = where.path or None

    if schema:
        emit(ui, json.dumps(pipeline_schema(), indent=2, sort_keys=True))
        return ExitCode.OK
    if pipeline is None:
        raise UsageError("give a pipeline file", "crmtool run pipeline.yaml (see examples/pipeline.yaml)")
    if fmt is OutputFormat.junit:
        raise UsageError("--format junit is not available for run", "use text or json")
    from datetime import date

    when = parse_as_of(day) or date.today()
    spec = load_pipeline(pipeline, root=root, allow_absolute=allow_absolute)
    if dry_run:
        plan = plan_pipeline(spec, when, workspace)
        finish(ui, Fields(plan, Status.ERROR if plan["missing"] else Status.PASS), fmt, lambda: _render_plan(ui, plan))
        if plan["missing"]:
            raise UsageError(f"{len(plan['missing'])} input(s) missing: " + "; ".join(plan["missing"]))
        return ExitCode.OK
    with ui.progress("pipeline") as progress:
        result = run_pipeline(spec, when, workspace=workspace, lock_timeout=where.lock_timeout, key_file=where.key_file,
                              progress=progress, say=ui.info, output=output)

    def text() -> None:
        for s in result.steps:
            status = s.status.value if s.status else "skipped"
            ui.out.print(f"  {s.name:12} {status:8} {s.seconds:7.1f} s  {s.message}".rstrip(), markup=False)
        ui.out.print(f"run {result.run_id}: {result.status.value}, folder {result.folder}"
                     + (", published as latest" if result.published else ", latest unchanged"), markup=False)

    finish(ui, result, fmt, text, counts=result.counts)
    # a step's busy workspace (3) is the pipeline's exit too: the one code no status stands for
    if result.exit_code:
        failed = next((s for s in result.steps if s.status and s.status.exit_code), None)
        if failed and failed.message:
            ui.err.print(f"step {failed.name}: {failed.message}", markup=False)
    return ExitCode(result.exit_code) if result.exit_code in (0, 1, 2, 3) else ExitCode.USAGE


def _render_plan(ui: Ui, plan: dict[str, Any]) -> None:
    out = ui.out
    out.print(f"pipeline {plan['pipeline']} for {plan['date']}", markup=False)
    out.print(f"  workspace {plan['workspace']}", markup=False)
    out.print(f"  outputs   {plan['folder']} (latest: {plan['latest']}, keep {plan['keep']})", markup=False)
    for i, step in enumerate(plan["steps"], 1):
        out.print(f"  {i}. {step['name']} ({step['step']})", markup=False)
        for param, value in step["params"].items():
            out.print(f"       {param}: {value}", markup=False)
    for m in plan["missing"]:
        out.print(f"  missing: {m}", markup=False)
