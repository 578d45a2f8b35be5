"""The ``crmtool`` command line: thin commands over :mod:`crmtool.api`.

Each command parses options, calls one library function, renders the result and returns an
exit code (0 ok, 1 checks failed, 2 usage/configuration/input error, 3 workspace busy,
130 interrupted).

Start-up (issue 19): :func:`main` imports and registers only the module of the command named on
the command line (``crmtool validate ...`` never imports the segment, privacy or campaign
commands); ``crmtool``, ``crmtool --help``, an unknown name and shell completion get every
command. ``from crmtool.cli import app`` is the whole application, as before.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

import typer

from crmtool import __version__
from crmtool.cli.common import FlagHelpGroup
from crmtool.cli.plain_params import install as install_plain_params

#: the command modules in the order --help lists their commands
COMMAND_MODULES = ("init_cmd", "core_cmd", "rules_cmd", "audit_cmd", "emails_cmd", "dedupe_cmd", "privacy_cmd",
                   "segments_cmd", "run_cmd", "kpis_cmd", "diff_cmd", "report_cmd", "campaign_cmd")

#: top-level command or group name -> the module that registers it (tests/cli/test_lazy_commands.py
#: checks this against what the modules register)
COMMANDS: dict[str, str] = {
    "init": "init_cmd",
    "clean": "core_cmd", "validate": "core_cmd", "profile": "core_cmd",
    "rules": "rules_cmd",
    "audit": "audit_cmd",
    "emails": "emails_cmd", "bounces": "emails_cmd",
    "dedupe": "dedupe_cmd", "explain": "dedupe_cmd",
    "suppress": "privacy_cmd", "retention": "privacy_cmd", "subject": "privacy_cmd", "erase": "privacy_cmd",
    "export": "privacy_cmd", "pii": "privacy_cmd",
    "segment": "segments_cmd",
    "run": "run_cmd",
    "kpis": "kpis_cmd",
    "diff": "diff_cmd",
    "report": "report_cmd",
    "campaign": "campaign_cmd",
}


def new_app() -> typer.Typer:
    """The root group without commands (:func:`register` adds them)."""
    root = typer.Typer(cls=FlagHelpGroup,
        name="crmtool",
        help="Keep a customer database clean, lawful and segmented.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
        pretty_exceptions_show_locals=False,  # locals hold customer data
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    return root


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmtool {__version__}")
        raise typer.Exit()


def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, metavar="",
                                       help="Print the version and exit.")) -> None:
    """Keep a customer database clean, lawful and segmented."""


_APP = new_app()
_registered: list[str] = []


def register(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """Add the commands of ``modules`` (each once) to the application and return it."""
    install_plain_params()
    for name in modules:
        if name not in _registered:
            import_module(f"crmtool.cli.{name}").register(_APP)
            _registered.append(name)
    return _APP


def modules_for(argv: list[str], environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[str, ...]:
    """The command modules a run with these arguments needs: the one of the command named first,
    else all of them (no command, root options such as --help or --version, an unknown name, or
    shell completion, which lists every command)."""
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in environ):
        return COMMAND_MODULES
    if argv and argv[0] in COMMANDS:
        return (COMMANDS[argv[0]],)
    return COMMAND_MODULES


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole application, for tests and for Python users (typer.testing.CliRunner)
        return register()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: whether a command runs as the whole process (:func:`main`), not inside another program or a test
PROCESS = False


def settle() -> None:
    """What is imported so far lives as long as the process: when the command is the process,
    it goes out of the cyclic garbage collector's sight (``gc.freeze``), so that each full pass
    skips typer's, sqlglot's and the rules' hundreds of thousands of objects instead of walking
    them again (~40 ms of a 10-row validate, issue 19). Objects freed by reference counting are
    freed as before; inside another program (tests, a Python caller) nothing changes."""
    if PROCESS:
        import gc

        gc.freeze()


def main() -> None:
    # a command turns Ctrl-C into one line and exit 130 (cli.common.run_command); this catches one
    # that comes before or after the command body (imports, option parsing, rendering)
    import sys

    global PROCESS
    PROCESS = True
    settle()
    try:
        register(modules_for(sys.argv[1:]))()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
