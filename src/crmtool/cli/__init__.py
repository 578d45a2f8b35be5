"""The ``crmtool`` command line: thin commands over :mod:`crmtool.api`.

Each command parses options, calls one library function, renders the result and returns an
exit code (0 ok, 1 checks failed, 2 usage/configuration/input error, 3 workspace busy,
130 interrupted).
"""

from __future__ import annotations

import typer

from crmtool import __version__
from crmtool.cli import (
    audit_cmd,
    campaign_cmd,
    core_cmd,
    dedupe_cmd,
    diff_cmd,
    emails_cmd,
    init_cmd,
    kpis_cmd,
    privacy_cmd,
    report_cmd,
    rules_cmd,
    run_cmd,
    segments_cmd,
)
from crmtool.cli.common import FlagHelpGroup

app = typer.Typer(cls=FlagHelpGroup,
    name="crmtool",
    help="Keep a customer database clean, lawful and segmented.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_show_locals=False,  # locals hold customer data
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, metavar="",
                                       help="Print the version and exit.")) -> None:
    """Keep a customer database clean, lawful and segmented."""


for module in (init_cmd, core_cmd, rules_cmd, audit_cmd, emails_cmd, dedupe_cmd, privacy_cmd, segments_cmd, run_cmd,
               kpis_cmd, diff_cmd, report_cmd, campaign_cmd):
    module.register(app)


def main() -> None:
    # a command turns Ctrl-C into one line and exit 130 (cli.common.run_command); this catches one
    # that comes before or after the command body (imports, option parsing, rendering)
    try:
        app()
    except KeyboardInterrupt:
        import sys

        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
