"""The one result model: what every command returns and every renderer reads.

A command's library function returns an object with a :class:`~crmtool.status.Status` and an
``as_dict()``; the CLI hands it to one renderer (``crmtool.cli.common.finish``) that prints its text,
writes its JSON (or CSV, JUnit) and turns its status into the exit code. The JSON of every command
has the same frame, checked against ``crmtool rules schema results``::

    {"schema_version": 1, "command": "erase", "status": "pass", ...the result's own fields}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from crmtool.status import Status


@runtime_checkable
class CommandResult(Protocol):
    """What a command returns: its outcome and its fields as plain JSON-ready data."""

    @property
    def status(self) -> Status: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Fields:
    """A result that is only its fields (``profile``, ``pii``, ``rules lint``): status and a dict."""

    fields: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return dict(self.fields)


def payload(command: str, result: CommandResult, status: Status | None = None) -> dict[str, Any]:
    """The JSON frame of ``result``: schema version, command, the result's fields and its status
    (``status`` when the command's options decide it, e.g. ``validate --fail-on warning``)."""
    from crmtool.schemas import RESULTS_SCHEMA_VERSION

    body = result.as_dict()
    return {"schema_version": RESULTS_SCHEMA_VERSION, "command": body.pop("command", command), **body,
            "status": str(status or result.status)}
