"""Output for people without importing rich where rich would add nothing (issue 19: start-up).

A :class:`LazyConsole` stands where the commands had a ``rich.console.Console``: it takes the
same options and builds that Console on first need. A line of plain text (printable ASCII,
nothing rich would read as markup or an emoji code, no wrapping to do) going to a file that is
not a terminal is written as rich would write it, its bytes unchanged, without rich: a cron or
CI run of a small ``validate`` then never imports rich (~15 ms, and ~10 ms to lay out a table).
Anything else (a terminal, colour forced, a renderable, markup, wide text) goes to rich itself.
tests/cli/test_plain_console.py holds both ways equal, byte for byte.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Any

#: what rich reads as an emoji code (``:smile:``; rich.emoji's pattern is narrower) or markup
_RICH_SYNTAX = re.compile(r":\S*?:|\[")
#: printable ASCII: one cell per character, nothing for rich to strip, expand or measure
_PLAIN = re.compile(r"[ -~]*")
#: options of print that a plain line can honour (see LazyConsole.print)
_PLAIN_OPTIONS = frozenset({"markup", "soft_wrap", "overflow", "highlight"})


def plain_text(text: object) -> bool:
    """Whether rich would print ``text`` as it is: printable ASCII without markup or emoji codes."""
    return isinstance(text, str) and _PLAIN.fullmatch(text) is not None and _RICH_SYNTAX.search(text) is None


class LazyConsole:
    """A ``rich.console.Console(**options)`` made on first need; plain lines to a file that is not a
    terminal are written directly (see the module). Every other attribute is the Console's."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The rich Console itself (imported and built now, once)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    def _file(self) -> Any:
        """Where rich would write now: the standard stream of the moment, or the file a live
        display (a progress bar on the other stream) has put a proxy in front of."""
        file = sys.stderr if self._options.get("stderr") else sys.stdout
        return getattr(file, "rich_proxied_file", file)

    def plain(self) -> bool:
        """Whether this console writes plain text: not a terminal by rich's own tests (forced,
        TTY_COMPATIBLE, FORCE_COLOR, isatty), no colour system or recording, UTF-8."""
        if self._console is not None or self._options.get("force_terminal") or self._options.get("record"):
            return False
        if set(self._options) - {"stderr", "no_color", "highlight", "force_terminal", "soft_wrap", "width", "quiet"}:
            return False
        env = os.environ
        if env.get("TTY_COMPATIBLE", "") == "1" or env.get("FORCE_COLOR") not in (None, ""):
            return False
        if "ipykernel" in sys.modules:  # rich renders for Jupyter there
            return False
        file = self._file()
        try:
            if file.isatty():
                return False
        except (AttributeError, ValueError):
            return False
        return str(getattr(file, "encoding", "") or "").lower().replace("-", "").startswith("utf")

    def print(self, *objects: Any, **options: Any) -> None:
        if self._plain_line(objects, options):
            if not self._options.get("quiet"):
                file = self._file()
                file.write(objects[0] + "\n")
                file.flush()
            return
        self.console.print(*objects, **options)

    def width_or_none(self) -> int | None:
        """The width given when the console was made (``None``: rich measures the terminal)."""
        width = self._options.get("width")
        return width if isinstance(width, int) else None

    def lines(self, lines: Sequence[str]) -> None:
        """Write rendered lines (a table laid out as rich would, see :func:`table_lines`); only
        when :meth:`plain` holds."""
        if not self._options.get("quiet"):
            file = self._file()
            file.write("".join(line + "\n" for line in lines))
            file.flush()

    def _plain_line(self, objects: tuple[Any, ...], options: dict[str, Any]) -> bool:
        if len(objects) != 1 or not plain_text(objects[0]) or set(options) - _PLAIN_OPTIONS:
            return False
        if options.get("soft_wrap", self._options.get("soft_wrap", False)) is not True:
            # rich wraps the line at the width: nothing to wrap when it is shorter
            width = self._options.get("width")
            if not isinstance(width, int) or len(objects[0]) >= width or options.get("overflow") not in (None, "fold"):
                return False
        return self.plain()


def table_lines(columns: Sequence[tuple[str, str, int]], rows: Sequence[Sequence[str]], width: int) -> list[str] | None:
    """The lines rich prints for ``Table(show_edge=False, pad_edge=False)`` with the default box
    (heavy head) and padding (one space each side), when everything fits in ``width`` without
    folding; ``None`` when it would not (rich then lays it out). ``columns`` are (header,
    justify ``left``/``right``, min_width)."""
    cells = [[h for h, _j, _m in columns], *(list(r) for r in rows)]
    if not rows or not all(plain_text(c) for row in cells for c in row) or any(len(r) != len(columns) for r in cells):
        return None
    widths = [max(m, *(len(r[i]) for r in cells)) for i, (_h, _j, m) in enumerate(columns)]
    if sum(widths) + 3 * (len(widths) - 1) > width:
        return None

    def line(row: Sequence[str], bar: str) -> str:
        parts = [c.rjust(w) if j == "right" else c.ljust(w)
                 for c, w, (_h, j, _m) in zip(row, widths, columns, strict=True)]
        return f" {bar} ".join(parts)

    last = len(widths) - 1  # pad_edge=False: no space before the first column or after the last
    rule = "╇".join("━" * (w + 2 - (i == 0) - (i == last)) for i, w in enumerate(widths))
    return [line(cells[0], "┃"), rule, *(line(r, "│") for r in cells[1:])]
