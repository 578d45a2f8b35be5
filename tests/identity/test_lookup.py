"""Person keys on demand (identity.lookup) hold exactly the full keys' lines of the rows asked about."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.identity.keys import IdentityColumns, cluster_map_table, person_keys
from crmtool.identity.lookup import lookup_keys

from .test_keys import email_like, phone_like

ids = st.one_of(st.none(), st.sampled_from(["C1", " C1", "C2", "C3 ", "C4", ""]))
nifs = st.one_of(st.none(), st.sampled_from(["16783115-S", "16783115s", "ES16783115S", "X1234567L", "b-12345678"]))
rows = st.lists(st.tuples(ids, st.one_of(st.none(), email_like), st.one_of(st.none(), phone_like), nifs),
                min_size=1, max_size=14)


def _setup(con: duckdb.DuckDBPyConnection, data: list[tuple[str | None, ...]], clusters: list[int]) -> None:
    con.execute("CREATE OR REPLACE TABLE t (_row INTEGER, customer_id VARCHAR, email VARCHAR, phone VARCHAR, "
                "nif VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                    [(i, *[v.replace("\x00", "") if v else v for v in r]) for i, r in enumerate(data)])
    con.execute("CREATE OR REPLACE TABLE dedupe_records (record_id VARCHAR, cluster_id VARCHAR)")
    con.executemany("INSERT INTO dedupe_records VALUES (?, ?)",
                    [(f"C{i + 1}", f"k{c}") for i, c in enumerate(clusters)])


@settings(max_examples=60, deadline=None)
@given(rows, st.lists(st.integers(0, 2), min_size=4, max_size=4), st.data())
def test_lines_of_the_values_and_people_asked_about_equal_the_full_keys(
    data: list[tuple[str | None, ...]], clusters: list[int], draw: st.DataObject
) -> None:
    con = duckdb.connect()
    _setup(con, data, clusters)
    cols = IdentityColumns("customer_id", ["email"], ["phone"], ["nif"])
    cmap = cluster_map_table(con, "__cm")
    full = person_keys(con, "t", cols, name="fullk", cluster_map=cmap)
    lines = con.execute("SELECT rid, pid, type, value FROM fullk").fetchall()
    values = draw.draw(st.lists(st.sampled_from([(t, v) for _r, _p, t, v in lines] or [("id", "C1")]), max_size=5))
    people = draw.draw(st.lists(st.sampled_from([p for _r, p, _t, _v in lines] or ["i:C1"]), max_size=3))
    asked_values = [*values, ("email", "nobody@x.es")]
    asked_people = [*people, "i:none"]
    con.execute("CREATE TABLE asked_v (type VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO asked_v VALUES (?, ?)", asked_values)
    con.execute("CREATE TABLE asked_p (pid VARCHAR)")
    con.executemany("INSERT INTO asked_p VALUES (?)", [(p,) for p in asked_people])

    lazy = lookup_keys(con, "t", cols, name="lazy", cluster_map=cmap)
    assert con.execute("SELECT count(*) FROM lazy").fetchall()[0][0] == 0  # nothing until asked
    assert sorted(con.execute("SELECT * FROM lazy_rows").fetchall()) == sorted(
        con.execute("SELECT * FROM fullk_rows").fetchall())
    lazy.add_values("SELECT type, value FROM asked_v")
    lazy.add_people("SELECT pid FROM asked_p")
    lazy.add_values("SELECT type, value FROM asked_v")  # asking again adds nothing twice
    by_value = "SELECT k.* FROM {} k WHERE (k.type, k.value) IN (SELECT (type, value) FROM asked_v)"
    by_person = "SELECT k.* FROM {} k WHERE k.pid IN (SELECT pid FROM asked_p)"
    for question in (by_value, by_person):
        assert sorted(con.execute(question.format("lazy")).fetchall()) == sorted(
            con.execute(question.format("fullk")).fetchall())
    # every line it holds is a true line of the full keys, each once
    held = con.execute("SELECT rid, pid, type, value FROM lazy").fetchall()
    assert len(held) == len(set(held)) and set(held) <= set(lines)

    only = lookup_keys(con, "t", cols, name="once", cluster_map=cmap, only="SELECT type, value FROM asked_v")
    assert sorted(con.execute(by_value.format("once")).fetchall()) == sorted(
        con.execute(by_value.format("fullk")).fetchall())
    for k in (full, lazy, only):
        k.drop()
