"""Issue 16, one vocabulary: every command shares --quiet, --log-file, --format as the output format,
and its own --help; built once in cli/common.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from crmtool.cli import app

from .conftest import EXAMPLE, cli


def _commands() -> dict[str, Any]:
    root = typer.main.get_command(app)
    found: dict[str, Any] = {}

    def walk(cmd: Any, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found[path] = cmd

    walk(root, "")
    return found


def test_every_command_has_quiet_log_file_and_its_own_help() -> None:
    commands = _commands()
    assert {"clean", "validate", "profile", "init", "rules lint", "rules schema", "bounces import"} <= set(commands)
    helps: dict[str, str] = {}
    for path, cmd in commands.items():
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        assert {"--quiet", "--log-file"} <= options, path
        assert cmd.help and len(cmd.help) > 20, path
        helps[path] = cmd.help
        fmt = next((p for p in cmd.params if "--format" in getattr(p, "opts", [])), None)
        if fmt is not None:
            # --format is the output on stdout, never an input or platform
            assert "Result on stdout" in (getattr(fmt, "help", "") or ""), path
    assert len(set(helps.values())) == len(helps)  # no command borrows another's text


def test_log_file_and_quiet_work_on_a_command_that_lacked_them(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "crm.log"
    result = cli("pii", EXAMPLE, "--quiet", "--log-file", log)
    assert result.exit_code == 0
    assert result.stderr == ""  # quiet: the detection line only goes to the log
    assert "clientes.csv: csv, encoding cp1252" in log.read_text(encoding="utf-8")
    bad = cli("rules", "lint", tmp_path / "missing.yaml", "--log-file", log)
    assert bad.exit_code == 2 and "no such rule file" in log.read_text(encoding="utf-8")


def test_help_shows_flags_as_flags_on_every_command() -> None:
    """Typer's own flags (-h/--help, --install-completion) read like ours: no ``<bool>`` after them."""
    paths = ["", *sorted(_commands()), "suppress", "segment", "rules", "audit"]
    for path in paths:
        for flag in ("-h", "--help"):
            result = cli(*path.split(), flag, env={"COLUMNS": "100"})
            assert result.exit_code == 0, (path, result.output)
            assert "Show this message and exit." in result.output, path
            assert "<bool>" not in result.output, (path, flag)


def test_help_keeps_bracketed_text_that_rich_would_read_as_markup() -> None:
    """``pip install 'crmtool[spark]'`` in --engine's help: rich read ``[spark]`` as a style and dropped it."""
    with_engine = [path for path, cmd in _commands().items()
                   if any("--engine" in getattr(p, "opts", []) for p in cmd.params)]
    assert {"validate", "clean", "segment run", "dedupe"} <= set(with_engine)
    for path in with_engine:
        result = cli(*path.split(), "--help", env={"COLUMNS": "250"})
        assert "'crmtool[spark]'" in result.output, path
