"""The README's erase example is a real run: the documented commands print what the README shows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .conftest import EXAMPLES, ROOT, RULES, cli

DOC_FOLDER = "/tmp/crm/"  # where the README's run was made
HASHES = re.compile(r"(head|key) [0-9a-f]{16}")
EARLIER = re.compile(r"erased on \d{4}-\d\d-\d\d by run \S+\)")


def _block(command: str) -> list[str]:
    """The lines the README shows under ``$ <command>``, up to the next command or the block's end."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"$ {command}") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("$ ", "```")))
    return lines[start:end]


def _normal(line: str, folder: Path) -> str:
    line = EARLIER.sub("erased on <date> by run <run>)", line)
    return HASHES.sub(r"\1 <hex>", line.replace(DOC_FOLDER, "<folder>/").replace(f"{folder}/", "<folder>/"))


def test_the_documented_erase_commands_print_what_the_readme_shows(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    shutil.copytree(RULES, tmp_path / "rules")
    code, out = cli("clean", "examples/clientes.csv")
    assert code in (0, 1), out
    for command in ("suppress import examples/bajas.csv --kind unsubscribe",
                    "erase --requests examples/erasure-requests.csv",
                    "erase --check examples/erasure-requests.csv"):
        expected = [_normal(line, tmp_path) for line in _block(f"crmtool {command}")]
        assert expected, command
        code, out = cli(*command.split())
        assert code == 0, out
        got = [_normal(line, tmp_path) for line in out.splitlines()]
        assert [line for line in got if line in expected] == expected, command
