""":meth:`AuditWriter.add_table` writes the very bytes :meth:`AuditWriter.add` writes for each row as a
dict: the same chain, hashes and seal, for any text (quotes, control characters, any Unicode), nulls,
integers, and members that sort before, between and after the ones the writer fills in."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.audit import AuditWriter, verify_log
from crmtool.keys import KeyedHasher

from .conftest import KEY

HASHER = KeyedHasher(KEY.encode(), "test")
TEXT = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=10))
ROW = st.tuples(TEXT, TEXT, st.one_of(st.none(), st.integers(-(2**62), 2**62)), TEXT)
# "a" sorts before prev, "request" between prev and run, "rows" between run and seq, "zz" after type
NAMES = ("a", "request", "rows", "zz")
TS = "2026-12-02T17:00:00Z"


def _log(tmp: Path, name: str, rows: list[tuple[Any, ...]], *, as_table: bool, before: int, after: int) -> bytes:
    log = tmp / name
    writer = AuditWriter(log, "run-1", HASHER, command="erase")
    writer.ts = TS  # both logs written "at the same second"
    writer.add({"type": "run", "command": "erase"})
    for i in range(before):
        writer.add({"type": "note", "n": i})
    if as_table:
        columns: dict[str, Any] = {"type": pa.array(["linked"] * len(rows), pa.string())}
        for j, name_ in enumerate(NAMES):
            columns[name_] = pa.array([r[j] for r in rows], pa.int64() if name_ == "rows" else pa.string())
        assert writer.add_table(pa.table(columns)) == len(rows)
    else:
        for r in rows:
            writer.add({"type": "linked", **dict(zip(NAMES, r, strict=True))})
    for i in range(after):
        writer.add({"type": "note", "n": -i})
    count = writer.count
    writer.seal({"counts": {"rows": len(rows)}})
    assert count == 1 + before + len(rows) + after
    assert verify_log(log, HASHER).ok
    return (log / "chain.jsonl").read_bytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, max_size=30), st.integers(0, 2), st.integers(0, 2))
def test_add_table_writes_what_add_writes(rows: list[tuple[Any, ...]], before: int, after: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one = _log(Path(tmp), "dicts", rows, as_table=False, before=before, after=after)
        many = _log(Path(tmp), "table", rows, as_table=True, before=before, after=after)
    assert many == one
    assert one.count(b"\n") == 1 + before + len(rows) + after + 1  # header, events, seal


def test_add_table_of_a_big_batch_matches_add(tmp_path: Path) -> None:
    rows = [(f"k:{i:064x}", f"REQ-{i // 9:06d}", i, "é\"\\\n\u2028") for i in range(5000)]
    assert _log(tmp_path, "t", rows, as_table=True, before=1, after=1) == _log(
        tmp_path, "d", rows, as_table=False, before=1, after=1)
