"""Looking at and changing the suppression list: ``suppress list`` and ``suppress remove``.

``list_suppressions`` gives counts (kind, channel, source, first and last date), never values;
with an identifier it says whether that person is suppressed and why (matched in canonical form,
so any spelling of the address finds the entry). ``remove_suppressions`` is a re-opt-in: it needs
the reason and the date the person opted in again, removes the entries of that identifier (an
``erasure`` entry never: erased people do not come back), and writes one audit entry per entry
removed, with the reason and date, identifiers as keyed tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import UsageError
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.audit import AuditWriter
    from crmtool.workspace import Workspace

KEPT_KINDS = ("erasure",)  # never removed by a re-opt-in


def _guess_type(value: str) -> str:
    import re

    v = value.strip()
    if "@" in v:
        return "email"
    if re.fullmatch(r"(?i)(ES)?[0-9XYZKLM][ .\-]?[0-9]{7}[ .\-]?[A-Z]", v):
        return "nif"
    if re.fullmatch(r"[+0-9 ().\-]{7,}", v):
        return "phone"
    return "id"


def _tokens(ws: Workspace, value: str, kind: str | None) -> list[tuple[str, str]]:
    """``(type, token)`` of the canonical form of ``value``."""
    from crmtool.identity.canonical import canonical_given

    typ = kind or _guess_type(value)
    canon = canonical_given(typ, value)
    if not canon:
        raise UsageError(f"not a usable {typ}: nothing to look up", "give an email, phone, NIF or customer id")
    return [(typ, str(ws.hasher.token(canon)))]


@dataclass
class SuppressionList:
    """The suppression register counted per kind, channel and source (no values); with an
    identifier, that person's entries (``identifier``: ``{"suppressed": bool, "entries": [...]}``)."""

    entries: int
    groups: list[dict[str, Any]]
    identifier: dict[str, Any] | None = None

    @property
    def status(self) -> Status:
        """Pass: a listing that returns is complete."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entries": self.entries, "groups": self.groups}
        if self.identifier is not None:
            out["identifier"] = self.identifier
        return out


def list_suppressions(ws: Workspace, identifier: str | None = None, kind: str | None = None) -> SuppressionList:
    """Counts per kind, channel and source; with ``identifier``, that person's entries."""
    from crmtool.privacy.identity import ensure_tables

    con = ws.con
    ensure_tables(con)
    rows = con.execute(
        "SELECT kind, channel, source, count(*), min(added_at)::DATE::VARCHAR, max(added_at)::DATE::VARCHAR "
        "FROM privacy_suppressions GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    out = SuppressionList(sum(int(r[3]) for r in rows),
                          [{"kind": r[0], "channel": r[1], "source": r[2], "entries": int(r[3]), "first": r[4],
                            "last": r[5]} for r in rows])
    if identifier is not None:
        found = []
        for typ, token in _tokens(ws, identifier, kind):
            found += [
                {"identifier": "k:" + token, "channel": typ, "kind": r[0], "source": r[1], "added_at": r[2]}
                for r in con.execute(
                    "SELECT kind, source, added_at::DATE::VARCHAR FROM privacy_suppressions "
                    "WHERE channel = ? AND token = ? ORDER BY added_at", [typ, token]
                ).fetchall()
            ]
        out.identifier = {"suppressed": bool(found), "entries": found}
    return out


@dataclass
class RemoveResult:
    run_id: str
    removed: int
    kept_erasure: int
    audit_path: str

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def remove_suppressions(
    ws: Workspace,
    identifier: str,
    *,
    reason: str,
    opted_in_on: date,
    kind: str | None = None,
    audit_log: Path | None = None,
) -> RemoveResult:
    """Re-opt-in: remove the suppression entries of ``identifier`` (not erasures), with an audit entry each."""
    from crmtool.audit import AuditWriter as Writer
    from crmtool.audit import log_dir
    from crmtool.privacy.identity import ensure_tables

    if not reason.strip():
        raise UsageError("a re-opt-in needs a reason", "say why, e.g. --reason 'signed up again at the shop'")
    con = ws.con
    ensure_tables(con)
    tokens = _tokens(ws, identifier, kind)
    run = ws.start_run("suppress remove")
    audit_path = log_dir(ws, Path("out"), audit_log)
    writer = Writer(audit_path, run.run_id, ws.hasher, command="suppress remove", lock_timeout=ws.lock_timeout)
    writer.add({"type": "run", "command": "suppress remove", "key_fingerprint": ws.hasher.fingerprint})
    try:
        removed, kept = _remove(ws, writer, tokens, reason, opted_in_on)
    except BaseException:
        writer.abort()
        raise
    writer.seal({"counts": {"removed": removed, "kept_erasure": kept}})
    result = RemoveResult(run.run_id, removed, kept, str(audit_path))
    ws.finish_run(run, "pass", 0, {"removed": removed, "kept_erasure": kept})
    return result


def _remove(ws: Workspace, writer: AuditWriter, tokens: list[tuple[str, str]], reason: str,
            opted_in_on: date) -> tuple[int, int]:
    """Delete the entries of ``tokens`` (not erasures); one ``suppression_removed`` event each."""
    con = ws.con
    removed = kept = 0
    for typ, token in tokens:
        entries = con.execute(
            "SELECT kind, source FROM privacy_suppressions WHERE channel = ? AND token = ? ORDER BY kind, source",
            [typ, token],
        ).fetchall()
        for entry_kind, source in entries:
            if entry_kind in KEPT_KINDS:
                kept += 1
                continue
            writer.add({"type": "suppression_removed", "identifier": "k:" + token, "channel": typ,
                        "kind": entry_kind, "source": source, "reason": reason.strip(),
                        "opted_in_on": opted_in_on.isoformat()})
            removed += 1
        con.execute(
            f"DELETE FROM privacy_suppressions WHERE channel = ? AND token = ? "
            f"AND kind NOT IN ({', '.join(repr(k) for k in KEPT_KINDS)})",
            [typ, token],
        )
    return removed, kept
