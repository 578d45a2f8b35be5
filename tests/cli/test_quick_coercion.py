"""The CLI's quick option coercion (crmtool.cli.common._quick_coercion) gives every command exactly
what typer's own Pydantic coercion gives: the same values of the same types, the same errors."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from crmtool.cli import common


class Colour(StrEnum):
    red = "red"
    blue = "blue"


def _app() -> typer.Typer:
    app = typer.Typer(cls=common.FlagHelpGroup)

    @app.command("show")
    def show(
        input: Annotated[Path, typer.Argument()],
        paths: Annotated[list[Path], typer.Option("--path")] = [Path("rules")],  # noqa: B006
        existing: Annotated[Path | None, typer.Option("--existing", exists=True, dir_okay=False)] = None,
        resolved: Annotated[Path | None, typer.Option("--resolved", resolve_path=True)] = None,
        text: Annotated[str | None, typer.Option("--text")] = None,
        count: Annotated[int, typer.Option("--count")] = 3,
        ranged: Annotated[int, typer.Option("--ranged", min=1, max=5)] = 2,
        share: Annotated[float, typer.Option("--share")] = 0.5,
        colour: Annotated[Colour, typer.Option("--colour", case_sensitive=False)] = Colour.red,
        flag: Annotated[bool, typer.Option("--flag")] = False,
    ) -> None:
        values = {"input": input, "paths": paths, "existing": existing, "resolved": resolved, "text": text,
                  "count": count, "ranged": ranged, "share": share, "colour": colour, "flag": flag}
        typer.echo(json.dumps({k: [type(v).__name__, repr(v)] for k, v in values.items()}))

    @app.command("other")
    def other() -> None:
        """A second command, so ``show`` is a subcommand."""

    return app


CASES = [
    ["show", "a.csv"],
    ["show", "a.csv", "--path", "x", "--path", "y/z", "--text", "hola", "--count", "7", "--share", "1e-3"],
    ["show", "a.csv", "--colour", "BLUE", "--flag", "--ranged", "5", "--resolved", "."],
    ["show", "a.csv", "--existing", "{file}"],
    ["show", "a.csv", "--existing", "{missing}"],
    ["show", "a.csv", "--existing", "{folder}"],
    ["show", "a.csv", "--colour", "green"],
    ["show", "a.csv", "--count", "x"],
    ["show", "a.csv", "--ranged", "9"],
    ["show", "a.csv", "--share", "abc"],
    ["show", ""],
    ["show"],
]


def _run(args: list[str], tmp_path: Path) -> tuple[int, str]:
    (tmp_path / "f.txt").write_text("x", encoding="utf-8")
    places = {"file": str(tmp_path / "f.txt"), "missing": str(tmp_path / "nope"), "folder": str(tmp_path)}
    result = CliRunner().invoke(_app(), [a.format(**places) for a in args], env={"COLUMNS": "100"})
    return result.exit_code, result.output


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c[1:]) or "none" for c in CASES])
def test_quick_coercion_gives_what_typer_gives(args: list[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    quick = _run(args, tmp_path)
    with monkeypatch.context() as m:
        m.setattr(common, "_quick_coercion", lambda param: None)
        assert _run(args, tmp_path) == quick
    if quick[0] == 0:  # the values really went through (and are not, say, all defaults)
        assert '"input": ["PosixPath"' in quick[1]


def test_the_quick_coercion_is_in_use() -> None:
    import typer.core

    if common._quick_param_class() is None:
        pytest.skip("this typer coerces without Pydantic adapters")
    command = typer.main.get_command(_app())
    ctx = command.make_context("app", ["show", "a.csv"])
    sub = command.get_command(ctx, "show")  # type: ignore[attr-defined]
    params = [p for p in sub.params if isinstance(p, typer.core._TyperParameter)]
    assert params and all(type(p._runtime_param).__name__ == "QuickRuntimeParam" for p in params)
