"""Holdouts: deterministic, Python == SQL, nested percentages, stable across runs."""

from __future__ import annotations

import hashlib

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.segments.holdout import bucket, bucket_sql, in_holdout


def sql_buckets(ids: list[str], salt: str) -> dict[str, int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[i] for i in ids])
    return {r[0]: int(r[1]) for r in con.execute(f"SELECT id, {bucket_sql('id', salt)} FROM t").fetchall()}


def test_bucket_is_first_64_bits_of_sha256_mod_10000() -> None:
    digest = hashlib.sha256(b"crm-2026:C0000001").hexdigest()
    assert bucket("C0000001", "crm-2026") == int(digest[:16], 16) % 10000 == 5931
    assert bucket("  C0000001 ", "crm-2026") == 5931  # the id is trimmed first


def test_python_equals_sql_on_many_ids() -> None:
    ids = [f"C{i:07d}" for i in range(3000)] + [" padded ", "ñandú", "1"]
    assert sql_buckets(ids, "s'alt") == {i: bucket(i, "s'alt") for i in ids}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=20), st.text(max_size=10))
def test_python_equals_sql_property(ids: list[str], salt: str) -> None:
    ids = [i.replace("\x00", "") or "x" for i in ids]
    got = sql_buckets(ids, salt.replace("\x00", ""))
    assert got == {i: bucket(i, salt.replace("\x00", "")) for i in ids}


def test_smaller_holdout_nests_inside_larger_with_same_salt() -> None:
    ids = [f"C{i:07d}" for i in range(5000)]
    h5 = {i for i in ids if in_holdout(i, "s", 5)}
    h10 = {i for i in ids if in_holdout(i, "s", 10)}
    assert h5 < h10
    assert 200 <= len(h5) <= 300 and 430 <= len(h10) <= 570  # ~5% and ~10% of 5000
    other = {i for i in ids if in_holdout(i, "other", 5)}
    assert len(other & h5) < len(h5) // 2  # another salt draws an independent group


def test_holdout_is_stable_across_runs_when_the_data_changes(ws, kit) -> None:  # type: ignore[no-untyped-def]
    body = "holdouts: {salt: fixed, global: 20}\nsegments: [{name: all, when: 'TRUE'}]\n"
    ids = [f"C{i:04d}" for i in range(200)]
    kit.run(ws, body, kit.customers(ids, name="a.csv"), out="o1")
    first = {r["customer_id"] for r in kit.rows("o1/holdouts.csv")}
    kit.run(ws, body, kit.customers(ids[50:] + [f"N{i}" for i in range(40)], name="b.csv"), out="o2")
    second = {r["customer_id"] for r in kit.rows("o2/holdouts.csv")}
    assert first and {i for i in first if i in ids[50:]} == {i for i in second if i.startswith("C")}
    assert first == {i for i in ids if in_holdout(i, "fixed", 20)}
