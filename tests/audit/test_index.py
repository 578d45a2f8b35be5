"""The index of a run's change set (in its seal): rare rules in a part of their own, the rules and
record prefixes each part holds; ``audit show`` opens only the files that can hold the answer, and
finds exactly what a full scan finds. A changed index is caught by ``audit verify``."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from crmtool.audit import AuditWriter, show, verify_log
from crmtool.audit.query import _sets
from crmtool.keys import KeyedHasher

from .conftest import KEY

HASHER = KeyedHasher(KEY.encode(), "test")
ROWS = 100_000


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("index") / "ws.audit"
    con = duckdb.connect()
    HASHER.register_sql(con)
    con.execute(f"""CREATE TABLE ch AS SELECT
        CASE WHEN i % 400 = 3 THEN 'rare_a' WHEN i % 7 = 0 THEN 'other' ELSE 'common' END AS rule,
        i AS "row", CASE WHEN i = 5 THEN NULL ELSE 'k:' || crm_token('C' || (i // 3)) END AS record,
        to_json('v' || i) AS old, to_json('w' || i) AS new FROM range({ROWS}) t(i)""")
    counts = dict(con.execute("SELECT rule, count(*) FROM ch GROUP BY ALL").fetchall())
    for n in range(2):
        writer = AuditWriter(log, f"run-{n}", HASHER, command="test")
        writer.add({"type": "run"})
        writer.add_set(con, "changes", "SELECT * FROM ch", order_by='record, "row"', parts=4, rule_counts=counts)
        writer.seal()
    con.close()
    return log


def _seal(log: Path) -> dict:
    return next(json.loads(line) for line in (log / "chain.jsonl").read_text().splitlines()
                if json.loads(line)["type"] == "seal")


def _all(log: Path, where: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        return sorted(con.execute(f"SELECT \"row\", rule FROM read_parquet('{log}/sets/*.parquet') WHERE {where}")
                      .fetchall())
    finally:
        con.close()


def test_rare_rules_get_their_own_part_and_the_seal_lists_what_each_part_holds(indexed: Path) -> None:
    sets = _seal(indexed)["sets"]
    assert [s["file"].split(".", 1)[1] for s in sets] == [f"changes.{p}.parquet" for p in range(4)] + [
        "changes.rare.parquet"]
    rare = sets[-1]
    assert rare["rules"] == ["rare_a"] and rare["rows"] == ROWS // 400 and rare["rare"]
    assert len(rare["record_prefixes"]) <= rare["rows"] and all(len(p) == 4 for p in rare["record_prefixes"])
    assert all(s["rules"] == ["common", "other"] for s in sets[:4])
    assert sum(s["rows"] for s in sets) == ROWS
    assert verify_log(indexed, HASHER).ok


def test_show_by_rule_opens_only_the_rare_part_and_finds_every_row(indexed: Path) -> None:
    files = _sets(indexed, None, None, "rare_a")["changes"]
    assert [p.name.split(".", 1)[1] for p, _run in files] == ["changes.rare.parquet"] * 2
    got = sorted((e["row"], e["rule"]) for e in show(indexed, rule="rare_a"))
    assert got == sorted(_all(indexed, "rule = 'rare_a'")) and len(got) == 2 * ROWS // 400
    assert len(list(show(indexed, rule="other"))) == len(_all(indexed, "rule = 'other'"))
    assert list(show(indexed, rule="no such rule")) == []


@pytest.mark.parametrize("customer", ["C1", "C2", "C4000"])
def test_show_by_record_finds_what_a_full_scan_finds(indexed: Path, customer: str) -> None:
    token = HASHER.token(customer)
    got = sorted((e["row"], e["rule"]) for e in show(indexed, record_token=token) if "row" in e)
    assert got == _all(indexed, f"record = 'k:{token}'") and got
    for path, _run in _sets(indexed, None, "k:" + token)["changes"]:  # one part per run, the rare one if it may hold it
        assert ".rare." in path.name or path.name.endswith(f".changes.{int(token[0], 16) // 4}.parquet")


def test_show_limit_streams_only_what_is_asked(indexed: Path) -> None:
    assert len(list(show(indexed, run="run-1", limit=7))) == 7
    assert list(show(indexed, run="run-1", limit=0)) == []
    entries = list(show(indexed, run="run-1"))
    assert len(entries) == 2 + ROWS  # header, seal, every row


def test_a_changed_index_is_caught(indexed: Path, tmp_path: Path) -> None:
    import shutil

    log = tmp_path / "ws.audit"
    shutil.copytree(indexed, log)
    chain = log / "chain.jsonl"
    lines = chain.read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if '"type":"seal"' in line)
    lines[n] = lines[n].replace('"rules":["rare_a"]', '"rules":["rare_b"]')
    chain.write_text("".join(lines))
    result = verify_log(log, HASHER)
    assert not result.ok and result.where == f"chain.jsonl:{n + 1}"


def test_clean_writes_one_part_per_hex_digit_range_and_record_look_ups_find_every_row(real_log: Path) -> None:
    """clean's change set is in AUDIT_PARTS (8) parts: each part holds only records whose first hex
    digit is in its range (as its seal entry says), so --record opens one part per run and misses nothing."""
    from crmtool.clean_audit import AUDIT_PARTS

    log = real_log / "ws.audit"
    seals = [json.loads(line) for line in (log / "chain.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "seal" and any(s["kind"] == "changes" for s in json.loads(line)["sets"])]
    assert AUDIT_PARTS == 8 and len(seals) == 2
    con = duckdb.connect()
    try:
        for item in (s for seal in seals for s in seal["sets"] if s["kind"] == "changes" and not s.get("rare")):
            first, last = item["records"]
            assert int(last, 16) - int(first, 16) == 16 // AUDIT_PARTS - 1  # two digits per part
            digits = con.execute(f"SELECT DISTINCT substr(record, 3, 1) FROM read_parquet('{log / item['file']}') "
                                 "WHERE record IS NOT NULL").fetchall()
            assert all(first <= d <= last for (d,) in digits)
        assert sum(1 for s in seals[0]["sets"] if s["kind"] == "changes" and not s.get("rare")) == AUDIT_PARTS
        for (record,) in con.execute(f"SELECT DISTINCT record FROM read_parquet('{log}/sets/*.changes.*.parquet') "
                                     "WHERE record IS NOT NULL ORDER BY record LIMIT 40").fetchall():
            want = con.execute(f"SELECT count(*) FROM read_parquet('{log}/sets/*.changes.*.parquet') "
                               "WHERE record = ?", [record]).fetchall()[0][0]
            got = [e for e in show(log, record_token=record[2:]) if e.get("type") in ("change", "reject")]
            assert len(got) == want > 0
    finally:
        con.close()
