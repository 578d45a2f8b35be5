"""Person keys: the faster SQL paths give exactly what the Python twins give, line for line."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.identity.canonical import canonical_email, canonical_phone, legacy_plain_email, plain_email
from crmtool.identity.keys import IdentityColumns, cluster_map_table, person_keys, values_sql

phone_like = st.one_of(
    st.text(alphabet="0123456789 +-().", max_size=16),
    st.from_regex(r"[0-9]{1,8}", fullmatch=True),  # plainly too short: settled in SQL as its digits
    st.from_regex(r"(\+34|0034)?[ ]?[6789][0-9]{2}[ .\-]?[0-9]{3}[ .\-]?[0-9]{3}", fullmatch=True),
    st.text(max_size=12),
)
email_like = st.one_of(
    st.from_regex(r"[ ]?(mailto:)?[A-Za-zé0-9._+]{1,6}@(gmail\.com|GoogleMail\.com|outlook\.com|x\.es)[ ]?",
                  fullmatch=True),
    st.text(max_size=12),
)


def _lines(con: duckdb.DuckDBPyConnection, kind: str, values: list[str | None], plain: bool) -> list[tuple]:
    con.execute("CREATE OR REPLACE TABLE t (rid INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    sql, made = values_sql(con, kind, "SELECT rid, v FROM t", plain=plain)
    got = sorted(con.execute(f"SELECT rid, value FROM ({sql})").fetchall(), key=repr)
    for m in made:
        con.execute(f"DROP TABLE {m}")
    return got


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), phone_like), min_size=1, max_size=25))
def test_sql_phone_values_equal_python_on_any_text(values: list[str | None]) -> None:
    values = [v.replace("\x00", "") if v is not None else None for v in values]
    want = sorted(((i, canonical_phone(v)) for i, v in enumerate(values)), key=repr)
    assert _lines(duckdb.connect(), "phone", values, plain=False) == want


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(st.none(), email_like), min_size=1, max_size=20))
def test_email_lines_are_the_canonical_form_and_the_plain_one_when_it_differs(values: list[str | None]) -> None:
    values = [v.replace("\x00", "") if v is not None else None for v in values]
    want = []
    for i, v in enumerate(values):
        c, p = canonical_email(v), plain_email(v)
        if c:
            want.append((i, c))
            if p and p != c:
                want.append((i, p))
            legacy = legacy_plain_email(v)  # what older registers hold (display name, format characters kept)
            if legacy and p and legacy not in (p, c):
                want.append((i, legacy))
    assert _lines(duckdb.connect(), "email", values, plain=True) == sorted(want, key=repr)


def _table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE customers AS SELECT * FROM (VALUES
        ('C1', 'Ana.Garcia@gmail.com', 'ana.garcia@gmail.com', '600 12 34 56'),
        ('C2', 'ana.garcia@gmail.com', NULL, '+34600123456'),
        ('C3', 'luis@x.es', 'LUIS@x.es', '123'),
        (NULL, 'solo@x.es', NULL, NULL)) v(customer_id, email, email_2, phone)""")
    con.execute("CREATE TABLE dedupe_records AS SELECT * FROM (VALUES ('C1', 'k1'), ('C2', 'k1')) "
                "v(record_id, cluster_id)")


def test_person_keys_hold_each_identifier_of_a_row_once() -> None:
    con = duckdb.connect()
    _table(con)
    one = person_keys(con, "customers", IdentityColumns("customer_id", ["email"], ["phone"]))
    lines = con.execute(f"SELECT rid, pid, type, value FROM {one.name}").fetchall()
    assert len(lines) == len(set(lines))
    assert sorted(v for _r, _p, t, v in lines if t == "email") == sorted(
        ["anagarcia@gmail.com", "ana.garcia@gmail.com", "anagarcia@gmail.com", "ana.garcia@gmail.com",
         "luis@x.es", "solo@x.es"])
    assert {v for _r, _p, t, v in lines if t == "phone"} == {"+34600123456", "123"}
    # two columns of one kind repeating a value still give one line per row and value
    two = person_keys(con, "customers", IdentityColumns("customer_id", ["email", "email_2"], ["phone"]))
    lines2 = con.execute(f"SELECT rid, pid, type, value FROM {two.name}").fetchall()
    assert len(lines2) == len(set(lines2))
    assert set(lines2) == set(lines)  # email_2 only repeats (in other spellings) what email holds


def test_person_keys_with_a_cluster_map_made_once_equal_those_without() -> None:
    con = duckdb.connect()
    _table(con)
    cols = IdentityColumns("customer_id", ["email"], ["phone"])
    plain = person_keys(con, "customers", cols)
    cmap = cluster_map_table(con, "__test_clusters")
    assert cmap is not None
    shared = person_keys(con, "customers", cols, cluster_map=cmap)
    for a, b in ((plain.name, shared.name), (plain.rows, shared.rows)):
        assert sorted(con.execute(f"SELECT * FROM {a}").fetchall(), key=repr) == sorted(
            con.execute(f"SELECT * FROM {b}").fetchall(), key=repr)
    pids = dict(con.execute(f"SELECT rid, pid FROM {shared.rows}").fetchall())
    assert pids[0] == pids[1] == "c:k1" and pids[2] == "i:C3" and pids[3].startswith("r:")


def test_odd_values_mapped_in_small_batches_give_the_same_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    import crmtool.db as db

    values: list[str | None] = [f" Ána.{i}@GoogleMail.com " if i % 3 else f"x{i}@X.es" for i in range(40)]
    values += [None, "ñ@x.es", "mailto:Z@gmail.com"]
    whole = _lines(duckdb.connect(), "email", values, plain=True)
    monkeypatch.setattr(db, "MAP_BATCH", 4)
    assert _lines(duckdb.connect(), "email", values, plain=True) == whole
    assert len(whole) > len(values)  # plain and canonical forms differ for the Google addresses
