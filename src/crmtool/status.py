"""The status words every command, result and renderer uses (text, JSON, JUnit, manifest, crm_runs)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Outcome of a run, a step or a rule.

    ``pass``: everything checked passed. ``warn``: a warning-severity check failed (exit 0 unless
    ``--fail-on warning``). ``fail``: an error-severity check failed (exit 1). ``error``: the run
    could not do its work (configuration, input, engine; exit 2). ``aborted``: interrupted or
    killed before it finished (exit 130 when interrupted).
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    ABORTED = "aborted"

    @property
    def exit_code(self) -> int:
        return {Status.PASS: 0, Status.WARN: 0, Status.FAIL: 1, Status.ERROR: 2, Status.ABORTED: 130}[self]
