"""Step 5 of an erasure: keep only keyed proof, and say per request what happened.

Tokens of every identifier of an erased or not-found request, and of the linked identifiers of
the people erased, go to ``privacy_erasures`` (with the request reference and date) and to the
suppressions as ``erasure``: later loads drop these people, send lists leave them out. An
ambiguous request records nothing. The audit log gets one ``erasure`` entry per request (status,
rows removed, identifiers as keyed hashes), one ``erasure_linked`` per linked identifier, and
one entry per table and per rewritten file.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmtool.privacy.erase.match import ALREADY_ERASED, AMBIGUOUS, EARLIER, LINKED, STATUS, TARGETS
from crmtool.privacy.erase.requests import REQ

if TYPE_CHECKING:
    from crmtool.audit import AuditWriter
    from crmtool.workspace import Run, Workspace

TOKEN_PREFIX = "k:"


def record_tokens(ws: Workspace, run: Run, now: datetime) -> None:
    con = ws.con
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_tokens AS
        SELECT DISTINCT t.ref, t.type, crm_token(t.value) AS token, t.linked, r.requested_at,
               CASE WHEN t.linked THEN '{LINKED}' ELSE s.status END AS status
        FROM {TARGETS} t JOIN {STATUS} s ON s.ref = t.ref AND s.status <> '{AMBIGUOUS}'
        LEFT JOIN (SELECT ref, min(requested_at) AS requested_at FROM {REQ} GROUP BY ref) r ON r.ref = t.ref""")
    con.execute(
        """INSERT INTO privacy_erasures (token, identifier_type, request_ref, requested_at, erased_at, run_id, status)
        SELECT DISTINCT token, type, ref, requested_at, ?, ?, status FROM __erase_tokens e
        WHERE NOT EXISTS (SELECT 1 FROM privacy_erasures p WHERE p.token = e.token AND p.request_ref = e.ref)
        ORDER BY 1, 3""",
        [now, run.run_id],
    )
    con.execute(
        """INSERT INTO privacy_suppressions
        SELECT DISTINCT type, token, 'erasure', 'erase ' || ?, ? FROM __erase_tokens e
        WHERE NOT EXISTS (SELECT 1 FROM privacy_suppressions p
                          WHERE p.channel = e.type AND p.token = e.token AND p.kind = 'erasure')""",
        [run.run_id, now],
    )


def per_request(ws: Workspace) -> list[dict[str, Any]]:
    """One dict per request of the file: ref, status, people, rows removed, identifier tokens."""
    con = ws.con
    rows = con.execute(f"""
        SELECT s.ref, s.status, s.people, s.has_identifier, coalesce(n.n, 0),
               (SELECT list(DISTINCT t.type || ':' || crm_token(t.value)) FROM {REQ} t WHERE t.ref = s.ref) AS ids,
               strftime(e.erased_at, '%Y-%m-%d'), e.run_id
        FROM {STATUS} s LEFT JOIN __erase_ref_rows n ON n.ref = s.ref
        LEFT JOIN {EARLIER} e ON e.ref = s.ref AND s.status = '{ALREADY_ERASED}' ORDER BY s.ref""").fetchall()
    out = []
    for ref, status, people, has_id, n_rows, ids, day, run_id in rows:
        req: dict[str, Any] = {
            "request": str(ref),
            "status": status if has_id else "not_found",
            "reason": None if has_id else "no usable identifier in the request",
            "people": int(people),
            "rows_removed": int(n_rows),
            "identifiers": [{"type": i.split(":", 1)[0], "identifier": TOKEN_PREFIX + i.split(":", 1)[1]}
                            for i in sorted(ids or [])],
        }
        if status == ALREADY_ERASED and has_id:  # the earlier erasure: when and by which run
            req["erased_at"], req["erased_by_run"] = day, run_id
        out.append(req)
    return out


def audit(
    writer: AuditWriter, ws: Workspace, requests: list[dict[str, Any]], removed: dict[str, int],
    rewritten: dict[str, int], now: datetime, n_rows: int, digests: dict[str, str],
) -> None:
    """The run's audit entries (identifiers as keyed hashes only; ``digests``: each rewritten file's SHA-256)."""
    from crmtool.db import fetch_arrow

    writer.add({"type": "run", "command": "erase", "key_fingerprint": ws.hasher.fingerprint, "requests": n_rows})
    day = now.strftime("%Y-%m-%d")
    when = dict(ws.con.execute(f"SELECT ref, min(requested_at) FROM {REQ} GROUP BY ref").fetchall())
    for req in requests:
        requested = when.get(req["request"])
        for ident_ in req["identifiers"] or [{"type": None, "identifier": None}]:
            writer.add({
                "type": "erasure",
                "identifier": ident_["identifier"],
                "identifier_type": ident_["type"],
                "request": req["request"],
                "requested_at": requested.strftime("%Y-%m-%d") if requested else None,
                "erased_at": day,
                "status": req["status"],
                "rows_removed": req["rows_removed"],
            })
    # one entry per linked identifier (~95k at 1M rows): made as one Arrow table, not a dict each
    # (ordered by the table's columns: the output's "type" is the entry's type)
    writer.add_table(fetch_arrow(ws.con, f"""SELECT 'erasure_linked' AS type, '{TOKEN_PREFIX}' || e.token AS identifier,
        e.type AS identifier_type, e.ref AS request, '{day}' AS erased_at FROM __erase_tokens e WHERE e.linked
        ORDER BY e.ref, e.type, e.token"""))
    for table, n in sorted(removed.items()):
        writer.add({"type": "erasure_table", "table": table, "rows_removed": n})
    for path_s, n in sorted(rewritten.items()):
        writer.add({"type": "erasure_output", "path": path_s, "rows_removed": n,
                    "sha256": digests[path_s]})
