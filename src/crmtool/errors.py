"""One exception tree and the documented exit codes.

The CLI catches :class:`CrmToolError`, prints ``message`` and ``hint`` on stderr and exits with its
``exit_code``; a command's own outcome is its result's status (``crmtool.result``). Anything else
escaping is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes. Their meaning never changes once released."""

    OK = 0
    CHECKS_FAILED = 1
    USAGE = 2  # usage, configuration or input error
    BUSY = 3  # the workspace lock could not be taken within --lock-timeout
    INTERRUPTED = 130  # Ctrl-C (SIGINT): the run stopped, outputs and temp files as before it


@dataclass(frozen=True)
class Location:
    """Where a configuration item came from: file and 1-based line (0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class CrmToolError(Exception):
    """Base of every error crmtool reports to a user (never a traceback)."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(CrmToolError):
    """A rule, policy or segments file is wrong. Carries every problem found, each with its place."""

    def __init__(self, problems: list[tuple[Location, str]], hint: str = "") -> None:
        self.problems = sorted(problems, key=lambda p: (p[0].file, p[0].line, p[1]))
        lines = [f"{loc}: {msg}" for loc, msg in self.problems]
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems in configuration:\n  " + "\n  ".join(lines)
        super().__init__(head, hint)


class InputError(CrmToolError):
    """An input file is missing, empty, unreadable or lacks a column a rule needs."""


class UsageError(CrmToolError):
    """The command line asks for something that cannot be done."""


class EngineError(CrmToolError):
    """DuckDB refused a statement built from the rules (e.g. a SQL expression that does not bind)."""


class WorkspaceBusy(CrmToolError):
    """Another run holds the workspace lock."""

    exit_code = ExitCode.BUSY
