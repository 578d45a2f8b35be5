"""Bulk audit entries from SQL chain exactly like single ones; a re-hashed forgery breaks the seal."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool import audit
from crmtool.audit import AuditWriter, line_hash, split_line, verify_log
from crmtool.errors import UsageError


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "BLOCK", 7)  # several digest blocks in a small log


def _write(path: Path, runs: int = 2) -> None:
    con = duckdb.connect()
    for r in range(runs):
        writer = AuditWriter(path, f"run-{r}")
        writer.add({"type": "run"})
        writer.add_query(con, "SELECT range AS i, '\"type\":\"change\",\"v\":' || to_json('é' || range) AS members "
                              "FROM range(20)", "i")
        writer.add({"type": "note"})
        writer.add_query(con, "SELECT range AS i, '\"type\":\"change\",\"v\":' || range AS members FROM range(9)", "i")
        writer.seal()


def test_bulk_and_single_entries_form_one_chain(tmp_path: Path, small_blocks: None) -> None:
    path = tmp_path / "a.jsonl"
    _write(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(1, 65))  # 2 runs x (1 + 20 + 1 + 9 + seal)
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    for line, entry in zip(lines, entries, strict=True):
        parts = split_line(line)
        assert parts is not None and line_hash(parts[0]) == entry["hash"]
    assert entries[2]["v"] == "é1" and entries[-1]["entries"] == 32
    assert verify_log(path).ok


def test_a_rehashed_edit_is_caught_by_the_seal(tmp_path: Path, small_blocks: None) -> None:
    path = tmp_path / "a.jsonl"
    _write(path, runs=1)
    lines = path.read_text(encoding="utf-8").splitlines()
    # a careful forger edits line 5, recomputes its hash and patches the next line's prev
    body, _h, prev = split_line(lines[4]) or ("", "", "")
    forged_body = body.replace('"v":"é3"', '"v":"é33"')
    new_hash = line_hash(forged_body)
    lines[4] = f'{forged_body[:-1]},"hash":"{new_hash}","prev":"{prev}"}}'
    nbody, nh, _p = split_line(lines[5]) or ("", "", "")
    lines[5] = f'{nbody[:-1]},"hash":"{nh}","prev":"{new_hash}"}}'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = verify_log(path)
    assert not result.ok
    assert result.bad_line == len(lines)
    assert "does not match the run's lines" in result.problem


def test_many_small_batches_chain_across_queries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # batches of 3 rows and a queue of 1 make every thread wait on the next one many times
    monkeypatch.setattr(audit, "BATCH_ROWS", 3)
    monkeypatch.setattr(audit, "HASH_QUEUE", 1)
    monkeypatch.setattr(audit, "SYNC_BYTES", 100)
    path = tmp_path / "a.jsonl"
    con = duckdb.connect()
    writer = AuditWriter(path, "run-x")
    writer.add({"type": "run"})
    for q in range(3):  # consecutive bulk appends share one pipeline; the next query runs meanwhile
        writer.add_query(con, f"SELECT range AS i, {q} AS q FROM range(50)", "i DESC",
                         members='\'"type":"change","q":\' || q || \',"i":\' || i')
    head = writer.seal()
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, 153))
    assert [(e["q"], e["i"]) for e in entries[1:-1]] == [(q, i) for q in range(3) for i in reversed(range(50))]
    assert verify_log(path, expected_head=head).ok


def test_a_failing_writer_thread_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "BATCH_ROWS", 4)

    def broken(self: object, lines: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit._LineSink, "_write", broken)
    con = duckdb.connect()
    writer = AuditWriter(tmp_path / "a.jsonl", "run-x")
    with pytest.raises(UsageError, match=r"cannot write the audit log .*a\.jsonl \(No space left on device\)"):
        writer.add_query(con, "SELECT range AS i, '\"v\":' || range AS members FROM range(100)", "i")
        writer.seal()
    # the connection is usable again: no result was left open
    assert con.execute("SELECT 42").fetchall() == [(42,)]


def test_the_switch_interval_comes_back_after_the_last_sink(tmp_path: Path) -> None:
    import sys

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.004)
        con = duckdb.connect()
        first, second = AuditWriter(tmp_path / "a.jsonl", "a"), AuditWriter(tmp_path / "b.jsonl", "b")
        first.add_query(con, "SELECT range AS i, '\"v\":' || range AS members FROM range(5)", "i")
        second.add_query(con, "SELECT range AS i, '\"v\":' || range AS members FROM range(5)", "i")
        assert sys.getswitchinterval() == pytest.approx(audit.SWITCH_INTERVAL)
        first.seal()  # closed first, while the second still runs
        assert sys.getswitchinterval() == pytest.approx(audit.SWITCH_INTERVAL)
        second.seal()
        assert sys.getswitchinterval() == pytest.approx(0.004)
        assert verify_log(tmp_path / "a.jsonl").ok and verify_log(tmp_path / "b.jsonl").ok
    finally:
        sys.setswitchinterval(before)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=40))
def test_batch_hashes_are_sha256_of_each_body_with_its_brace(bodies: list[str]) -> None:
    expected = [hashlib.sha256((b + "}").encode("utf-8")).hexdigest() for b in bodies]
    array = pa.array(bodies, pa.string())
    assert audit._hashes_polars(array).to_pylist() == expected
    assert audit._hashes_hashlib(array).to_pylist() == expected


def test_a_failing_hash_plugin_gives_way_to_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_bodies: object) -> object:
        raise RuntimeError("plugin built for another polars")

    monkeypatch.setattr(audit, "_hashes_polars", broken)
    monkeypatch.setattr(audit, "_plugin_failed", [])
    bodies = pa.array(['{"a":1', '{"é":"ü"'], pa.string())
    assert audit.body_hashes(bodies).to_pylist() == [line_hash('{"a":1}'), line_hash('{"é":"ü"}')]
    assert audit._plugin_failed  # and hashlib is used from then on
