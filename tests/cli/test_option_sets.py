"""Issue 16, one bundle of options: every command's options (names, defaults, help, env var, order)
are compared with a recorded snapshot, so moving option lists into shared bundles changes nothing a
user sees. A deliberate change refreshes the snapshot with ``CRMTOOL_REFRESH_OPTIONS=1 pytest``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from crmtool.cli import app

SNAPSHOT = Path(__file__).parent / "data" / "options.json"


def option_sets() -> dict[str, list[dict[str, Any]]]:
    """Per command path, its parameters in order as a user meets them in --help."""
    root = typer.main.get_command(app)
    found: dict[str, list[dict[str, Any]]] = {}

    def walk(cmd: Any, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
            return
        found[path] = [
            {"name": p.name, "opts": list(p.opts) + list(getattr(p, "secondary_opts", [])),
             "default": repr(p.default), "help": getattr(p, "help", None), "envvar": p.envvar,
             "flag": bool(getattr(p, "is_flag", False)), "required": p.required}
            for p in cmd.params
        ]

    walk(root, "")
    return found


def test_every_command_keeps_its_options() -> None:
    current = option_sets()
    if os.environ.get("CRMTOOL_REFRESH_OPTIONS"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert sorted(current) == sorted(recorded)
    for path, params in current.items():
        assert params == recorded[path], path
