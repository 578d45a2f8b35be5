"""``erase``: the steps in order (requests -> match -> purge -> outputs -> record) as one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmtool.privacy.erase.match import ALREADY_ERASED, AMBIGUOUS, ERASED, NOT_FOUND
from crmtool.privacy.subject import KIND as SUBJECT
from crmtool.privacy.subject import drop_subject_exports
from crmtool.status import Status
from crmtool.workspace import Run, Workspace


@dataclass
class EraseResult:
    run_id: str
    requests: list[dict[str, Any]]  # one per request of the file: ref, status, rows removed, tokens
    rows_in_file: int
    rows_removed: dict[str, int]
    linked_identifiers: int
    outputs: dict[str, int] = field(default_factory=dict)  # rewritten file -> rows removed
    outputs_changed: list[str] = field(default_factory=list)  # crmtool's files changed since: not touched
    audit_path: str = ""
    audit_head: str = ""
    manifest_path: str = ""
    key_fingerprint: str = ""
    subject_exports_deleted: list[str] = field(default_factory=list)  # the erased people's subject exports
    people: int = 0  # people erased (dedupe cluster, customer id, or a row without either)

    def count(self, status: str) -> int:
        return sum(1 for r in self.requests if r["status"] == status)

    @property
    def complete(self) -> bool:
        """Every request ended erased or not found, and no file of ours was left out."""
        return not self.count(AMBIGUOUS) and not self.outputs_changed and all(
            r["reason"] is None for r in self.requests
        )

    @property
    def not_found_refs(self) -> list[str]:
        return [r["request"] for r in self.requests if r["status"] == NOT_FOUND]

    @property
    def status(self) -> Status:
        """Pass when every request ended erased, already erased or not found and no file of ours
        was left out; else fail (exit 1)."""
        return Status.PASS if self.complete else Status.FAIL

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "requests": len(self.requests),
            "rows_in_file": self.rows_in_file,
            "erased": self.count(ERASED),
            "not_found": self.count(NOT_FOUND),
            "already_erased": self.count(ALREADY_ERASED),
            "ambiguous": self.count(AMBIGUOUS),
            "complete": self.complete,
            "per_request": self.requests,
            "not_found_refs": self.not_found_refs,
            "rows_removed": self.rows_removed,
            "rows_removed_total": sum(self.rows_removed.values()),
            "linked_identifiers": self.linked_identifiers,
            "outputs_rewritten": self.outputs,
            "outputs_changed_not_rewritten": self.outputs_changed,
            "subject_exports_deleted": self.subject_exports_deleted,
            "people_erased": self.people,
            "audit": self.audit_path,
            "audit_head": self.audit_head,
            "manifest": self.manifest_path,
            "key_fingerprint": self.key_fingerprint,
        }


def erase(
    ws: Workspace,
    requests: Path,
    *,
    out_dir: Path = Path("out"),
    audit_log: Path | None = None,
    key: str | None = None,
    outputs: list[Path] | None = None,
) -> EraseResult:
    """Carry out the erasure requests of ``requests`` on the workspace and on every file crmtool wrote."""
    from crmtool.audit import AuditWriter, log_dir
    from crmtool.io.readers import file_sha256
    from crmtool.privacy.erase import match as m
    from crmtool.privacy.erase import outputs as o
    from crmtool.privacy.erase import purge, record
    from crmtool.privacy.erase.requests import drop_request_tables, load_requests
    from crmtool.privacy.identity import ensure_tables

    hasher = ws.hasher  # an unreadable key stops us before anything is changed
    con = ws.con
    ensure_tables(con)
    run = ws.start_run("erase")
    now = datetime.now(UTC).replace(tzinfo=None)
    match = m.Match()
    try:
        with run.timed("load"):
            n_rows = load_requests(ws, requests)
        with run.timed("match"):
            match = m.build_keys(ws, key)
            m.match_requests(ws, match)
            to_delete = m.rows_to_delete(ws, match)
        with run.timed("record"):
            record.record_tokens(ws, run, now)
            per_request = record.per_request(ws)
            linked = int(con.execute("SELECT count(*) FROM __erase_tokens WHERE linked").fetchall()[0][0])
            people = int(con.execute(f"SELECT count(DISTINCT pid) FROM {m.PIDS}").fetchall()[0][0])
        with run.timed("outputs"):
            state = o.registered_outputs(ws)
            extra = [(p.resolve(), "also") for p in outputs or [] if p.is_file()]
            rewritten: dict[str, int] = {}
            digests: dict[str, str] = {}  # a new version's SHA-256, read once (step, audit entry, manifest)
            for path, kind in sorted(set(state.current + extra)):
                if kind == SUBJECT:
                    continue  # one person's data: deleted below when that person is erased
                n = o.scrub_file(ws, path, key, match.maps)
                if n:
                    rewritten[str(path)] = n
                    digests[str(path)] = file_sha256(path)
                    # the new version, registered when the run is recorded
                    run.step.output(kind, path, sha256=digests[str(path)])
            dropped = drop_subject_exports(ws, f"SELECT type, value FROM {m.TARGETS}")
        with run.timed("delete"):
            removed = purge.delete_rows(ws, match, to_delete)
        audit_path = log_dir(ws, out_dir, audit_log)
        writer = AuditWriter(audit_path, run.run_id, hasher, command="erase", lock_timeout=ws.lock_timeout)
        try:
            record.audit(writer, ws, per_request, removed, rewritten, now, n_rows, digests)
            for path in dropped:
                writer.add({"type": "erasure_output", "path": str(path), "deleted": True})
        except BaseException:
            writer.abort()  # the log's lock is released and nothing of this run stays in it
            raise
    finally:
        m.drop_match_tables(ws, match)
        drop_request_tables(ws)
    result = EraseResult(run.run_id, per_request, n_rows, removed, linked, rewritten,
                         [str(p) for p in state.changed], str(audit_path), "", "", hasher.fingerprint,
                         [str(p) for p in dropped], people)
    counts = {k: result.as_dict()[k] for k in ("requests", "erased", "already_erased", "not_found", "ambiguous",
                                               "rows_removed_total",
                                               "people_erased")}
    counts["outputs_rewritten"] = len(rewritten)
    counts["subject_exports_deleted"] = len(dropped)
    result.audit_head = writer.seal({"counts": counts})
    result.manifest_path = str(_manifest(ws, run, out_dir, result, counts, writer.count, digests))
    if not ws.in_memory:
        con.execute("CHECKPOINT")
    _metrics(run, result, counts)
    status = Status.PASS if result.complete else Status.FAIL
    ws.finish_run(run, status, 0 if result.complete else 1, {"counts": counts, "key_fingerprint": hasher.fingerprint})
    return result


def _metrics(run: Any, result: EraseResult, counts: dict[str, Any]) -> None:
    """Requests by outcome, people and rows erased (in all and per table), files rewritten."""
    step = run.step
    step.counts(counts)
    step.metric("linked_identifiers", result.linked_identifiers)
    step.metric("outputs_changed_not_rewritten", len(result.outputs_changed))
    for table, n in sorted(result.rows_removed.items()):
        step.metric("rows_removed", n, table)


def _manifest(ws: Workspace, run: Run, out_dir: Path, result: EraseResult, counts: dict[str, Any],
              entries: int, digests: dict[str, str]) -> Path:
    """Write ``erase.manifest.json``: common keys (the request file unnamed), counts, requests, audit head."""
    from crmtool.manifest import common_keys, file_entry, write_manifest

    manifest_path = out_dir / "erase.manifest.json"
    write_manifest(manifest_path, {
        **common_keys(
            run, "erase",
            inputs=[{"path": "(request file: not recorded, it holds personal data)", "rows": result.rows_in_file}],
            outputs=[file_entry(Path(p), digests[p], rows_removed=n) for p, n in sorted(result.outputs.items())],
            status=Status.PASS if result.complete else Status.FAIL,
        ),
        "counts": counts,
        "requests": [{k: r[k] for k in ("request", "status", "rows_removed")} for r in result.requests],
        "rows_removed_by_table": result.rows_removed,
        "outputs_changed_not_rewritten": result.outputs_changed,
        "audit": {"path": result.audit_path, "head_sha256": result.audit_head, "entries": entries},
        "key_fingerprint": result.key_fingerprint,
    })
    return manifest_path
