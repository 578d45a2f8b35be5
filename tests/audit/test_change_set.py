"""clean's change set written on a second cursor while the outputs are written: its rows and order,
a failure while the outputs are written, and a change set stopped half-way."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pyarrow.parquet as pq
import pytest

from crmtool.api import clean
from crmtool.audit import AuditWriter, iter_entries, verify_log
from crmtool.audit.format import PENDING, SETS
from crmtool.clean_audit import ChangeSetJob
from crmtool.engine import CHANGES, VIOLATIONS
from crmtool.errors import CrmToolError
from crmtool.keys import KeyedHasher
from crmtool.workspace import Workspace

from .conftest import EXAMPLE, KEY, RULES

HASHER = KeyedHasher(KEY.encode(), "test")


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    """The documented order of a change set part: record, row, field, rule, line, nulls last."""
    return tuple((v is None, v if v is not None else 0 if k in ("row", "line") else "")
                 for k, v in ((k, row[k]) for k in ("record", "row", "field", "rule", "line")))


def _seal(log: Path) -> dict[str, Any]:
    return next(e for e in iter_entries(log) if e["type"] == "seal")


def test_change_set_holds_every_change_and_reject_in_record_order(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTOOL_KEY", KEY)
    with Workspace(":memory:") as ws:
        clean(ws, EXAMPLE, [RULES / "10-normalise.yaml", RULES / "20-checks.yaml"], tmp_path / "out")
        changes = ws.con.execute(f"SELECT count(*) FROM {CHANGES}").fetchall()[0][0]
        rejects = ws.con.execute(f"SELECT count(*) FROM {VIOLATIONS} WHERE reject").fetchall()[0][0]
    log = tmp_path / "out" / "crmtool.audit"
    seal = _seal(log)
    rows: list[dict[str, Any]] = []
    for entry in seal["sets"]:
        part = pq.read_table(log / entry["file"]).to_pylist()
        assert len(part) == entry["rows"]
        # each part sorted on its own: the record-sorted parts by record, row, field, rule, line;
        # the rare rules' part by rule first
        key = (lambda r: (r["rule"], _key(r))) if entry.get("rare") else _key
        assert part == sorted(part, key=key), entry["file"]
        assert pq.read_schema(log / entry["file"]).names == ["type", "rule", "row", "line", "record", "field", "old",
                                                             "new", "reason"]
        rows += part
    assert changes > 0 and rejects > 0
    assert sum(r["type"] == "change" for r in rows) == changes
    assert sum(r["type"] == "reject" and r["rule"] != "parse" for r in rows) == rejects
    assert all(r["record"].startswith("k:") and len(r["record"]) == 34 for r in rows if r["rule"] != "parse")
    assert verify_log(log, HASHER).ok


def test_a_failure_while_the_outputs_are_written_leaves_no_trace_in_the_log(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTOOL_KEY", KEY)
    with Workspace(tmp_path / "ws.duckdb") as ws:
        clean(ws, EXAMPLE, [RULES / "10-normalise.yaml"], tmp_path / "out")
        log = tmp_path / "ws.audit"
        before = {p.relative_to(log): p.read_bytes() for p in log.rglob("*") if p.is_file() and p.name != "lock"}
        # the example has accents: ASCII output fails when the clean file is re-encoded, after the
        # change set was started on its cursor
        with pytest.raises(CrmToolError, match="cannot hold"):
            clean(ws, EXAMPLE, [RULES / "10-normalise.yaml"], tmp_path / "out", encoding="ascii")
        after = {p.relative_to(log): p.read_bytes() for p in log.rglob("*") if p.is_file() and p.name != "lock"}
        assert after == before  # no change set, no pending note, no record of the failed run
        assert verify_log(log, HASHER).ok
        clean(ws, EXAMPLE, [RULES / "10-normalise.yaml"], tmp_path / "out")  # the log goes on
    assert verify_log(log, HASHER).ok
    assert not [e for e in iter_entries(log) if e["type"] == "aborted"]


def test_a_change_set_stopped_half_way_is_taken_back_whole(tmp_path: Path) -> None:
    """cancel() interrupts the statement running on the job's cursor and waits for the thread, so
    abort() removes every part: none lands after it."""
    rows = 3_000_000
    with Workspace(":memory:") as ws:
        con = ws.con
        con.execute("ATTACH IF NOT EXISTS ':memory:' AS crm_scratch")
        con.execute(f"CREATE TABLE {CHANGES} AS SELECT (i % 5)::INTEGER AS rule, i // 5 AS _row, "
                    f"'c' || (i % 7) AS \"column\", md5(i::VARCHAR) AS old, md5((i + 1)::VARCHAR) AS new "
                    f"FROM range({rows}) t(i)")
        con.execute(f"CREATE TABLE {VIOLATIONS} (rule INTEGER, _row BIGINT, \"column\" VARCHAR, reason VARCHAR, "
                    f"reject BOOLEAN)")
        con.execute(f"CREATE TABLE crm_scratch.tokens AS SELECT _row, 'k:' || md5(_row::VARCHAR) AS record, "
                    f"row_number() OVER (ORDER BY 'k:' || md5(_row::VARCHAR), _row) AS pos "
                    f"FROM range({rows // 5}) t(_row)")
        ruleset = SimpleNamespace(rules=[SimpleNamespace(name=f"rule_{i}") for i in range(5)])
        loaded = SimpleNamespace(parse_rejects=[])
        log = tmp_path / "log"
        AuditWriter(log, "run-0", HASHER, command="clean").seal()  # a log that outlives the aborted run
        writer = AuditWriter(log, "run-1", HASHER, command="clean")
        writer.add({"type": "run", "command": "clean"})
        job = ChangeSetJob(ws, writer, cast(Any, loaded), cast(Any, ruleset), "crm_scratch.tokens")
        deadline = time.monotonic() + 120
        while not list((log / SETS).glob("run-1.changes.0.parquet")):  # stopped after its first part
            assert time.monotonic() < deadline
            time.sleep(0.01)
        job.cancel()
        assert not job._thread.is_alive()
        parts = len(list((log / SETS).glob("run-1.*.parquet")))
        writer.abort()
        assert parts < 8  # stopped before its last part (of eight)
        assert list((log / SETS).iterdir()) == [] and list((log / PENDING).iterdir()) == []
        assert verify_log(log, HASHER).ok
        # the connection goes on working after the interrupt
        assert con.execute(f"SELECT count(*) FROM {CHANGES}").fetchall()[0][0] == rows


def test_each_part_is_synced_beside_the_next_and_all_before_the_seal(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The parts' fsync and SHA-256 run on a helper thread while the next part is written (off the
    change set's critical path), and every part is synced before add_set returns, so the seal names
    only parts that are on disk; the seal's hashes are the files' (decision 0008, audit5)."""
    import hashlib
    import os
    import threading

    import crmtool.audit.writer as writer_module

    synced: list[tuple[str, str]] = []  # (file, thread)
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).removesuffix(".tmp")
        synced.append((name, threading.current_thread().name))

    monkeypatch.setattr(writer_module.os, "fsync", recording_fsync)
    log = tmp_path / "log"
    with Workspace(":memory:") as ws:
        writer = AuditWriter(log, "run-1", HASHER, command="clean")
        writer.add({"type": "run", "command": "clean"})
        query = ("SELECT 'change' AS type, 'r' || (i % 3) AS rule, i AS \"row\", "
                 "'k:' || md5(i::VARCHAR) AS record FROM range(20000) t(i)")
        rows = writer.add_set(ws.con, "changes", query, order_by="record, \"row\"", parts=8)
        parts = sorted(p.name for p in (log / SETS).glob("run-1.changes.*.parquet"))
        done = [name for name, _ in synced]  # what was synced when add_set returned
        writer.seal()
    assert rows == 20000 and len(parts) == 8
    assert sorted(n for n in done if n.startswith("run-1.changes.")) == parts
    caller = threading.current_thread().name
    assert all(thread != caller for name, thread in synced if name in parts)
    for entry in _seal(log)["sets"]:
        assert entry["sha256"] == hashlib.sha256((log / entry["file"]).read_bytes()).hexdigest()
    assert verify_log(log, HASHER).ok


def test_each_parts_index_is_read_back_on_the_sync_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules each part holds (and the rare part's record prefixes) are read back from the
    written files on the sync thread, not between one part's COPY and the next (decision 0008,
    audit7); the seal still lists exactly what each file holds."""
    import threading

    read: list[tuple[str, str]] = []  # (what, thread)
    real_rules, real_records = AuditWriter._index_rules, AuditWriter._index_records

    def rules(self: AuditWriter, entry: dict[str, Any]) -> None:
        read.append(("rules", threading.current_thread().name))
        real_rules(self, entry)

    def records(self: AuditWriter, entry: dict[str, Any]) -> None:
        read.append(("records", threading.current_thread().name))
        real_records(self, entry)

    monkeypatch.setattr(AuditWriter, "_index_rules", rules)
    monkeypatch.setattr(AuditWriter, "_index_records", records)
    log = tmp_path / "log"
    with Workspace(":memory:") as ws:
        writer = AuditWriter(log, "run-1", HASHER, command="clean")
        writer.add({"type": "run", "command": "clean"})
        # rule 'r0' is common (19,990 rows), 'rare' has 10 rows: it gets the rare part
        query = ("SELECT 'change' AS type, CASE WHEN i < 10 THEN 'rare' ELSE 'r0' END AS rule, i AS \"row\", "
                 "'k:' || md5(i::VARCHAR) AS record FROM range(20000) t(i)")
        writer.add_set(ws.con, "changes", query, order_by="record, \"row\"", parts=8,
                       rule_counts={"r0": 19990, "rare": 10})
        writer.seal()
    caller = threading.current_thread().name
    assert sorted(what for what, _ in read) == ["records"] + ["rules"] * 9
    assert all(thread not in (caller, "") and thread.startswith("crmtool-audit-sync") for _, thread in read)
    sets = _seal(log)["sets"]
    for entry in sets:
        held = pq.read_table(log / entry["file"], columns=["rule", "record"])
        assert entry["rules"] == sorted(set(held["rule"].to_pylist()))
    rare = next(e for e in sets if e.get("rare"))
    assert rare["rules"] == ["rare"] and len(rare["record_prefixes"]) == 10
    assert verify_log(log, HASHER).ok
