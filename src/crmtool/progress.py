"""How long-running work says where it is: a step, and how far along when that is known."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Called with the step being worked on; ``done`` of ``total`` where the step can count.

    The command line shows a progress bar on a terminal and logs the steps otherwise; a Python
    caller may pass any function of this shape (or none).
    """

    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None: ...
