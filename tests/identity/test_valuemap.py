"""Person keys of several tables from shared value maps (identity.valuemap) hold exactly the full keys'
lines of the rows asked about, in every table (the exact path: identity.keys.person_keys per table)."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.identity.keys import IdentityColumns, cluster_map_table, person_keys
from crmtool.identity.lookup import lookup_keys
from crmtool.identity.valuemap import ValueMaps, add_people, add_rows_where, match_other_db, shared_lookup_keys

from .test_keys import email_like, phone_like

ids = st.one_of(st.none(), st.sampled_from(["C1", " C1", "C2", "C3 ", "C4", ""]))
nifs = st.one_of(st.none(), st.sampled_from(["16783115-S", "16783115s", "ES16783115S", "X1234567L", "b-12345678"]))
row = st.tuples(ids, st.one_of(st.none(), email_like), st.one_of(st.none(), phone_like), nifs)
COLS = ("customer_id", "email", "phone", "nif")


def _table(con: duckdb.DuckDBPyConnection, name: str, data: list[tuple[str | None, ...]]) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {name} (_row INTEGER, {', '.join(c + ' VARCHAR' for c in COLS)})")
    if data:
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?)",
                        [(i, *[v.replace("\x00", "") if v else v for v in r]) for i, r in enumerate(data)])


@settings(max_examples=40, deadline=None)
@given(st.lists(row, min_size=1, max_size=12), st.lists(st.integers(0, 2), min_size=4, max_size=4), st.data())
def test_shared_maps_give_the_full_keys_lines_of_every_table(
    data: list[tuple[str | None, ...]], clusters: list[int], draw: st.DataObject
) -> None:
    con = duckdb.connect()
    # three copies of one export as a workspace holds them: as loaded, with a fix applied, and a
    # table with other rows (values of one table need not be in another), plus a table of ids only
    _table(con, "data_t", data)
    _table(con, "work_t", [(i, e.lower().strip() if e else e, p, n) for i, e, p, n in data])
    _table(con, "other_t", draw.draw(st.lists(row, max_size=6)))
    con.execute("CREATE OR REPLACE TABLE dedupe_records (record_id VARCHAR, cluster_id VARCHAR)")
    con.executemany("INSERT INTO dedupe_records VALUES (?, ?)",
                    [(f"C{i + 1}", f"k{c}") for i, c in enumerate(clusters)])
    cols = IdentityColumns("customer_id", ["email"], ["phone"], ["nif"])
    tables = {t: cols for t in ("data_t", "work_t", "other_t")}
    tables["dedupe_records"] = IdentityColumns("record_id", cluster="cluster_id")
    cmap = cluster_map_table(con, "__cm")
    full = {t: person_keys(con, t, c, name=f"full_{t}", cluster_map=cmap) for t, c in tables.items()}
    lines = [r for k in full.values() for r in con.execute(f"SELECT rid, pid, type, value FROM {k.name}").fetchall()]
    values = draw.draw(st.lists(st.sampled_from([(t, v) for _r, _p, t, v in lines] or [("id", "C1")]), max_size=5))
    people = draw.draw(st.lists(st.sampled_from([p for _r, p, _t, _v in lines] or ["i:C1"]), max_size=3))
    con.execute("CREATE TABLE asked_v (type VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO asked_v VALUES (?, ?)", [*values, ("email", "nobody@x.es"), ("nif", "0")])
    con.execute("CREATE TABLE asked_p (pid VARCHAR)")
    con.executemany("INSERT INTO asked_p VALUES (?)", [(p,) for p in [*people, "i:none"]])

    maps, lazy = shared_lookup_keys(con, tables, name="lazy", cluster_map=cmap)
    by_value = "SELECT k.* FROM {} k WHERE (k.type, k.value) IN (SELECT (type, value) FROM asked_v)"
    by_person = "SELECT k.* FROM {} k WHERE k.pid IN (SELECT pid FROM asked_p)"
    for k in lazy.values():
        assert con.execute(f"SELECT count(*) FROM {k.name}").fetchall()[0][0] == 0  # nothing until asked
    if draw.draw(st.booleans()):
        # as erase asks: one round over every table (one cluster-map look-up and one join per value map)
        raws = maps.raws_matching("SELECT type, value FROM asked_v")
        add_rows_where(list(lazy.values()), {k.name: maps.holding_sql(k.cols, raws) for k in lazy.values()})
        add_people(list(lazy.values()), "SELECT pid FROM asked_p")
        con.execute(f"DROP TABLE {raws}")
    for t, k in lazy.items():
        # the rows of some people, found by their id, cluster and rowid columns: those of the full keys
        everyone = f"SELECT pid FROM {full[t].rows}"
        for pids in ("SELECT pid FROM asked_p", everyone, f"SELECT 'r:{t}:' || rid AS pid FROM {full[t].rows}"):
            assert sorted(con.execute(k.persons_of_sql(pids)).fetchall()) == sorted(con.execute(
                f"SELECT rid, pid FROM {full[t].rows} WHERE pid IN ({pids})").fetchall()), (t, pids)
        k.add_values("SELECT type, value FROM asked_v")
        k.add_people("SELECT pid FROM asked_p")
        k.add_values("SELECT type, value FROM asked_v")  # asking again adds nothing twice
        # once their people were asked about, every row of theirs is among the rows added
        assert sorted(con.execute(k.added_persons_of_sql("SELECT pid FROM asked_p")).fetchall()) == sorted(
            con.execute(f"SELECT rid, pid FROM {full[t].rows} WHERE pid IN (SELECT pid FROM asked_p)").fetchall())
        for question in (by_value, by_person):
            assert sorted(con.execute(question.format(k.name)).fetchall()) == sorted(
                con.execute(question.format(full[t].name)).fetchall()), (t, question)
        held = con.execute(f"SELECT rid, pid, type, value FROM {k.name}").fetchall()
        full_lines = set(con.execute(f"SELECT rid, pid, type, value FROM {full[t].name}").fetchall())
        assert len(held) == len(set(held)) and set(held) <= full_lines
    # the raws found once for every table (as erase asks) reach the same rows
    raws = maps.raws_matching("SELECT type, value FROM asked_v")
    for t in lazy:
        got = {r[0] for r in con.execute(maps.rows_holding_sql(t, tables[t], raws)).fetchall()}
        want = {r[0] for r in con.execute(
            f"SELECT k.rid FROM {full[t].name} k JOIN asked_v a ON a.type = k.type AND a.value = k.value").fetchall()}
        assert got == want, t
    for k in [*full.values(), *lazy.values()]:
        k.drop()
    maps.drop()
    assert not maps.tables


@settings(max_examples=40, deadline=None)
@given(st.lists(row, min_size=1, max_size=10), st.lists(row, max_size=8), st.data())
def test_a_file_matched_through_the_maps_gives_the_rows_of_canonicalising_every_row(
    data: list[tuple[str | None, ...]], new_rows: list[tuple[str | None, ...]], draw: st.DataObject
) -> None:
    """An output file read into another database: its texts the workspace holds take their lines from
    the maps, the others are canonicalised there; the rows found are those of the exact path
    (lookup_keys(only=...) over every row of the file)."""
    con, side = duckdb.connect(), duckdb.connect()
    _table(con, "data_t", data)
    cols = IdentityColumns("customer_id", ["email"], ["phone"], ["nif"])
    # the file: some rows of the workspace (as written) and rows it does not hold; no nif column in
    # the workspace tables of one variant (a kind the maps lack is canonicalised in the file only)
    tables = {"data_t": cols if draw.draw(st.booleans()) else IdentityColumns("customer_id", ["email"], ["phone"])}
    _table(side, "f", [*draw.draw(st.lists(st.sampled_from(data), max_size=6)), *new_rows])
    full = person_keys(con, "data_t", cols, name="fullk")
    lines = con.execute("SELECT type, value FROM fullk").fetchall()
    fkeys = person_keys(side, "f", cols, name="ffull", clusters=False)
    lines += side.execute("SELECT type, value FROM ffull").fetchall()
    asked = draw.draw(st.lists(st.sampled_from(lines or [("id", "C1")]), max_size=6))
    targets = [(f"R{i % 3}", t, v) for i, (t, v) in enumerate([*asked, ("email", "nobody@x.es")])]
    for c in (con, side):
        c.execute("CREATE TABLE targets (ref VARCHAR, type VARCHAR, value VARCHAR)")
        c.executemany("INSERT INTO targets VALUES (?, ?, ?)", targets)
    maps = ValueMaps.build(con, tables, "m")
    sql, made = match_other_db(side, "f", cols, maps, "targets", "targets")
    got = sorted(set(side.execute(sql).fetchall()))
    exact = lookup_keys(side, "f", cols, name="once", clusters=False, only="SELECT type, value FROM targets")
    want = sorted(set(side.execute(
        "SELECT k.rid, t.ref FROM once k JOIN targets t ON t.type = k.type AND t.value = k.value").fetchall()))
    assert got == want
    for t in made:
        side.execute(f"DROP TABLE {t}")
    for k in (full, fkeys, exact):
        k.drop()
    maps.drop()


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=14), st.lists(st.integers(0, 2), min_size=4, max_size=4), st.data())
def test_lookup_keys_of_one_question_hold_the_full_keys_lines_of_its_values(
    data: list[tuple[str | None, ...]], clusters: list[int], draw: st.DataObject
) -> None:
    """lookup_keys(only=...) (erase --check matching an output file): every row's person as person_keys
    makes it, and exactly the full keys' lines of the values asked about, nothing else."""
    con = duckdb.connect()
    _table(con, "t", data)
    con.execute("CREATE OR REPLACE TABLE dedupe_records (record_id VARCHAR, cluster_id VARCHAR)")
    con.executemany("INSERT INTO dedupe_records VALUES (?, ?)",
                    [(f"C{i + 1}", f"k{c}") for i, c in enumerate(clusters)])
    cols = IdentityColumns("customer_id", ["email"], ["phone"], ["nif"])
    cmap = cluster_map_table(con, "__cm")
    full = person_keys(con, "t", cols, name="fullk", cluster_map=cmap)
    lines = con.execute("SELECT rid, pid, type, value FROM fullk").fetchall()
    values = draw.draw(st.lists(st.sampled_from([(t, v) for _r, _p, t, v in lines] or [("id", "C1")]), max_size=5))
    con.execute("CREATE TABLE asked_v (type VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO asked_v VALUES (?, ?)", [*values, ("email", "nobody@x.es")])

    only = lookup_keys(con, "t", cols, name="once", cluster_map=cmap, only="SELECT type, value FROM asked_v")
    assert sorted(con.execute("SELECT * FROM once_rows").fetchall()) == sorted(
        con.execute("SELECT * FROM fullk_rows").fetchall())
    by_value = "SELECT k.* FROM {} k WHERE (k.type, k.value) IN (SELECT (type, value) FROM asked_v)"
    assert sorted(con.execute(by_value.format("once")).fetchall()) == sorted(
        con.execute(by_value.format("fullk")).fetchall())
    held = con.execute("SELECT rid, pid, type, value FROM once").fetchall()  # no line of a value not asked about
    assert sorted(held) == sorted(con.execute(by_value.format("fullk")).fetchall())
    for k in (full, only):
        k.drop()
