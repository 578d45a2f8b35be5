"""Plain lines and the rules table without rich (crmtool.cli.plain_console): the same bytes as
rich writes, and rich not imported by a small validate whose output goes to no terminal."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.cli.core_cmd import _render_outcomes
from crmtool.cli.plain_console import LazyConsole

ROOT = Path(__file__).resolve().parents[2]
#: text that is plain, and text with what rich reads otherwise: markup, emoji codes, tabs, control
#: characters, accents, wide characters, trailing spaces
TEXT = st.lists(st.sampled_from([*"abc XYZ019_-.,;()/:[]\\@", "\t", "\r", "\x1b", "é", "界", ":smile:", "[b]", "  ",
                                 "word "]), max_size=60).map("".join)


class _Out(io.TextIOWrapper):
    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", newline="")

    def written(self) -> bytes:
        self.flush()
        assert isinstance(self.buffer, io.BytesIO)
        return self.buffer.getvalue()


def _both(monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], use: Any) -> tuple[bytes, bytes, bool]:
    """What ``use(console)`` writes through a LazyConsole and through rich's Console itself (the
    same options, the same file), and whether the LazyConsole built rich."""
    from rich.console import Console

    written = []
    for lazy in (True, False):
        out = _Out()
        monkeypatch.setattr(sys, "stderr" if options.get("stderr") else "stdout", out)
        console: Any = LazyConsole(**options) if lazy else Console(**options)
        use(console)
        written.append(out.written())
        if lazy:
            built = console._console is not None
    return written[0], written[1], built


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, markup=st.sampled_from([None, True, False]), soft_wrap=st.sampled_from([None, True, False]),
       overflow=st.sampled_from([None, "fold"]), width=st.integers(20, 160), stderr=st.booleans())
def test_a_line_is_written_as_rich_writes_it(monkeypatch: pytest.MonkeyPatch, text: str, markup: bool | None,
                                            soft_wrap: bool | None, overflow: str | None, width: int,
                                            stderr: bool) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    # Ui's two consoles: stderr at the terminal's width, stdout at a fixed one
    options: dict[str, Any] = {"no_color": True, "highlight": False, "soft_wrap": True}
    options |= {"stderr": True} if stderr else {"width": width}
    given_options = {"markup": markup, "soft_wrap": soft_wrap, "overflow": overflow}
    kwargs = {k: v for k, v in given_options.items() if v is not None}
    lazy, rich, built = _both(monkeypatch, options, lambda c: c.print(text, **kwargs))
    assert lazy == rich
    if text.isascii() and text.isprintable() and not any(c in text for c in ":[") and soft_wrap is not False:
        assert not built  # the plain way was taken


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(st.tuples(st.text("abcxyz_019", min_size=1, max_size=40) | TEXT,
                                st.integers(0, 10**9), st.integers(0, 10**6), st.sampled_from(["pass", "warn", "fail"]),
                                st.sampled_from(["error", "warning"])), max_size=30),
       width=st.integers(40, 200))
def test_the_rules_table_is_written_as_rich_writes_it(monkeypatch: pytest.MonkeyPatch, rules: list[Any],
                                                      width: int) -> None:
    report = {"rules": [{"rule": name, "kind": "email_risk" if n % 2 else "sql", "severity": sev, "failed": n,
                         "fixed": f, "rejected": n // 3, "status": status} for name, n, f, status, sev in rules]}

    class Ui:
        out: Any

    def render(console: Any) -> None:
        ui = Ui()
        ui.out = console
        if not isinstance(console, LazyConsole):  # rich's own Table
            lazy = LazyConsole()
            lazy._console = console
            ui.out = lazy
        _render_outcomes(ui, report)  # type: ignore[arg-type]

    options = {"no_color": True, "highlight": False, "soft_wrap": True, "width": width}
    lazy, rich, built = _both(monkeypatch, options, render)
    assert lazy == rich
    short = all(r[0].isascii() and r[0].isidentifier() and len(r[0]) < 25 for r in rules)
    if rules and short and width >= 100:
        assert not built  # the plain way was taken


def test_a_small_validate_to_a_file_imports_no_rich(tmp_path: Path) -> None:
    """Every example rule on a 10-row export, the text report to a file (cron, CI): rich is not
    imported (it was: the Ui's consoles and the rules table)."""
    program = ("import sys; from crmtool.cli import main\n"
               "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
               "sys.stderr.write('@@' + repr(sorted(m for m in sys.modules if m.split('.')[0] == 'rich')))\n")
    data = tmp_path / "small.csv"  # the example export's first 10 rows (cp1252)
    data.write_bytes(b"".join((ROOT / "examples" / "clientes.csv").read_bytes().splitlines(keepends=True)[:11]))
    shutil.copytree(ROOT / "rules", tmp_path / "rules")  # short paths: the failure lines fit the width unfolded
    proc = subprocess.run([sys.executable, "-c", program, "validate", data.name, "--rules", "rules",
                           "--workspace", ":memory:"], capture_output=True, text=True, timeout=120, check=False,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "COLUMNS": "100", "CRMTOOL_KEY": "k" * 32})
    assert proc.stderr.rsplit("@@", 1)[1] == "[]", proc.stderr
    assert "rule " in proc.stdout and "━" in proc.stdout and "run " in proc.stdout
    assert json.dumps(proc.stdout)  # the report went to stdout


def test_a_line_under_a_live_display_goes_where_rich_sends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A progress bar on a terminal (stderr) puts a proxy in front of stdout; rich writes the
    report past it to stdout itself, and so must the plain way."""
    from rich.console import Console
    from rich.file_proxy import FileProxy

    terminal = Console(file=io.StringIO(), force_terminal=True)
    out = _Out()
    monkeypatch.setattr(sys, "stdout", FileProxy(terminal, out))  # type: ignore[arg-type]
    lazy = LazyConsole(no_color=True, highlight=False, soft_wrap=True, width=100)
    lazy.print("run r1: pass")
    Console(no_color=True, highlight=False, soft_wrap=True, width=100).print("run r1: pass")
    assert out.written() == b"run r1: pass\nrun r1: pass\n" and not terminal.file.getvalue()  # type: ignore[attr-defined]
    assert lazy._console is None  # past the proxy, the plain way (the proxy itself names no encoding)
