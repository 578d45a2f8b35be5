"""``erase --check``: prove, request by request, that a request file was carried out.

Every request of the file is accounted for. A request is *proven* when it has at least one
usable identifier, every identifier's token is recorded as erased, no workspace row and no row
of any file crmtool wrote that still exists names it (in any canonical spelling), and (when an
audit log is given) the log has its ``erasure`` entries. Anything else is reported with the
reason, and the command exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmtool.status import Status
from crmtool.workspace import Workspace

TOKEN_PREFIX = "k:"


@dataclass
class RequestCheck:
    ref: str
    identifiers: list[dict[str, Any]]
    file_rows: dict[str, int]
    audited_status: str | None = None
    erased_at: str | None = None  # the first erasure of one of its identifiers on record (date, run)
    erased_by_run: str | None = None

    @property
    def reasons(self) -> list[str]:
        out = []
        if not self.identifiers:
            out.append("no usable identifier in the request")
        if any(not i["recorded"] for i in self.identifiers):
            out.append("not recorded as erased")
        present = sum(i["present_rows"] for i in self.identifiers)
        if present:
            out.append(f"{present} workspace rows still name it")
        for path, n in sorted(self.file_rows.items()):
            out.append(f"{n} rows still in {path}")
        if any(i["audited"] is False for i in self.identifiers):
            out.append("not in the audit log")
        return out

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass
class CheckResult:
    requests: list[RequestCheck]
    audit_path: str | None
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.requests)

    @property
    def status(self) -> Status:
        """Pass when every request of the file is proven; else fail (exit 1)."""
        return Status.PASS if self.ok else Status.FAIL

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "audit": self.audit_path,
            "files_checked": self.files_checked,
            "proven": sum(r.ok for r in self.requests),
            "requests": [
                {"request": r.ref, "ok": r.ok, "status": r.audited_status, "reasons": r.reasons,
                 "identifiers": r.identifiers, "file_rows": r.file_rows,
                 "erased_at": r.erased_at, "erased_by_run": r.erased_by_run}
                for r in self.requests
            ],
        }


def check_erasures(
    ws: Workspace, requests: Path, *, audit_log: Path | None = None, key: str | None = None
) -> CheckResult:
    """Per request of ``requests``: recorded, gone from the workspace and from crmtool's files, audited."""
    from crmtool.audit import iter_entries
    from crmtool.privacy.erase import match as m
    from crmtool.privacy.erase.outputs import file_hits, registered_outputs
    from crmtool.privacy.erase.requests import REFS, REQ, drop_request_tables, load_requests
    from crmtool.privacy.identity import ensure_tables

    ws.hasher  # noqa: B018 - registers crm_token()
    con = ws.con
    ensure_tables(con)
    audited: dict[str, str] | None = None
    if audit_log is not None:
        audited = {
            str(e.get("identifier")): str(e.get("status"))
            for e in iter_entries(audit_log)
            if e.get("type") in ("erasure", "erasure_linked")
        }
    match = m.Match()
    try:
        load_requests(ws, requests)
        match = m.build_keys(ws, key)
        match.add_values(f"SELECT type, value FROM {REQ}")  # the lines the counts below read
        keys = f"({match.all_keys_sql()})"
        rows = con.execute(f"""
            SELECT f.ref, q.type, crm_token(q.value) AS token,
                   EXISTS (SELECT 1 FROM privacy_erasures p WHERE p.token = crm_token(q.value)
                           AND p.identifier_type = q.type) AS recorded,
                   (SELECT count(*) FROM {keys} k WHERE k.type = q.type AND k.value = q.value) AS present
            FROM {REFS} f LEFT JOIN {REQ} q ON q.ref = f.ref
            ORDER BY f.ref, q.type, token""").fetchall()
        first = m.earlier_erasures_sql(f"SELECT ref, type, value FROM {REQ}")
        earlier = {str(ref): (day, run_id) for ref, day, run_id in con.execute(
            f"SELECT ref, strftime(erased_at, '%Y-%m-%d'), run_id FROM ({first})").fetchall()}
        state = registered_outputs(ws)
        files: dict[str, dict[str, int]] = {}
        for path in [p for p, _k in state.current] + state.changed:
            for ref, n in file_hits(ws, path, key).items():
                files.setdefault(ref, {})[str(path)] = n
    finally:
        m.drop_match_tables(ws, match)
        drop_request_tables(ws)
    by_ref: dict[str, RequestCheck] = {}
    for ref, typ, token, recorded, present in rows:
        check = by_ref.setdefault(str(ref), RequestCheck(str(ref), [], files.get(str(ref), {}),
                                                         None, *earlier.get(str(ref), (None, None))))
        if typ is None:
            continue
        ident_ = TOKEN_PREFIX + str(token)
        check.identifiers.append({
            "type": typ,
            "identifier": ident_,
            "recorded": bool(recorded),
            "present_rows": int(present),
            "audited": None if audited is None else ident_ in audited,
        })
        if audited and ident_ in audited:
            check.audited_status = audited[ident_]
    return CheckResult([by_ref[k] for k in sorted(by_ref)], str(audit_log) if audit_log else None,
                       len(state.current) + len(state.changed))
