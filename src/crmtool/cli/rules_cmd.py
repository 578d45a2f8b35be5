"""crmtool rules lint | schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crmtool.cli.common import FlagHelpGroup, OutputFormat, TextJsonFormatOpt, Ui, cli_command, emit, finish
from crmtool.errors import ExitCode

rules_app = typer.Typer(cls=FlagHelpGroup, help="Check rule files and publish their JSON Schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


@rules_app.command("lint")
@cli_command
def lint(
    ui: Ui,
    paths: Annotated[list[Path], typer.Argument(help="Rule files or folders.")] = [Path("rules")],  # noqa: B006
    fmt: TextJsonFormatOpt = OutputFormat.text,
) -> ExitCode:
    """Validate rule files without data: schema, names, regexes, SQL and sections; exit 2 on any problem."""
    from crmtool.api import load_checked_rules
    from crmtool.errors import UsageError
    from crmtool.result import Fields

    if fmt is OutputFormat.junit:
        raise UsageError("--format junit is not available for rules lint", "use text or json")
    ruleset = load_checked_rules(paths)
    checked = Fields({"files": [str(f) for f in ruleset.files], "rule_count": len(ruleset.rules),
                      "sections": sorted(ruleset.sections)})
    return finish(ui, checked, fmt, lambda: ui.info(
        f"{len(ruleset.files)} file(s), {len(ruleset.rules)} rules: ok"
        + (f"; sections: {', '.join(sorted(ruleset.sections))}" if ruleset.sections else "")))


@rules_app.command("schema")
@cli_command
def schema(
    ui: Ui,
    which: Annotated[str, typer.Argument(help="rules, segments or results")] = "rules",
) -> ExitCode:
    """Print a JSON Schema: of rule files or segments.yaml (for editors), or of the JSON results
    of validate, clean and profile (results)."""
    from crmtool.errors import UsageError
    from crmtool.rulefile import rules_schema

    if which == "rules":
        emit(ui, json.dumps(rules_schema(), indent=2, sort_keys=True))
        return ExitCode.OK
    if which == "segments":
        from crmtool.segments.schema import segments_schema

        emit(ui, json.dumps(segments_schema(), indent=2, sort_keys=True))
        return ExitCode.OK
    if which == "results":
        from crmtool.report import results_schema

        emit(ui, json.dumps(results_schema(), indent=2, sort_keys=True))
        return ExitCode.OK
    raise UsageError(f"unknown schema {which!r}", "use 'rules', 'segments' or 'results'")
