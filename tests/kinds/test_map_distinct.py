"""PlanContext.map_distinct leaves the same table on a small table (values read into Python,
one INSERT) as on any other (five statements in DuckDB): fast-path answers, settled values,
values only Python decides, values mapped by an earlier call, NULLs and several output types."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from crmtool.kinds.base import PlanContext

VALUES = ["a1", "b22", "c333", None, "a1", "dddd", "", "e5", "ÿ ñ"]


def _verdict(v: str) -> tuple[Any, ...]:
    return (len(v) % 2 == 0, v.upper() + "!", None if v.startswith("c") else f"py:{v}")


def _maps(small: bool) -> list[list[tuple[Any, ...]]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in VALUES])
    ctx = PlanContext(con, "t", small=small)
    out = [("ok", "BOOLEAN"), ("norm", "VARCHAR"), ("detail", "VARCHAR")]
    # fast: decides ok and norm for values of 2 characters; settled: the empty string
    fast = {"ok": "CASE WHEN length(f) = 2 THEN true END", "norm": "CASE WHEN length(f) = 2 THEN f END"}
    tables = []
    for step, prefilter in enumerate(["v <> 'e5'", None]):  # the second call maps e5 and the new values
        if step == 1:
            con.execute("INSERT INTO t VALUES ('ffffff'), ('a1')")
        name = ctx.map_distinct("t.x", _verdict, out, ("verdict",), prefilter=prefilter, fast=fast,
                                fast_input="upper(v)", settled="v = ''")
        tables.append(con.execute(f"SELECT * FROM {name} ORDER BY value").fetchall())
    # one output, no fast path
    name = ctx.map_distinct("t.x", lambda v: (v[::-1],), [("new", "VARCHAR")], ("reverse",))
    tables.append(con.execute(f"SELECT * FROM {name} ORDER BY value").fetchall())
    return tables


def test_a_small_table_maps_to_the_same_table() -> None:
    small, general = _maps(True), _maps(False)
    assert small == general
    first = dict((r[0], r[1:]) for r in general[0])
    assert first["a1"] == (True, "A1", None)  # the fast path decided it (2 characters)
    assert first[""] == (None, None, None)  # settled: the fast path's NULLs are the answer
    assert first["c333"] == (True, "C333!", None)  # Python decided it
    assert "e5" not in first
    assert {r[0] for r in general[1]} - set(first) == {"e5", "ffffff"}
    assert dict((r[0], r[1:]) for r in general[1])["ffffff"] == (True, "FFFFFF!", "py:ffffff")


@pytest.mark.parametrize("small", [True, False])
def test_map_distinct_statements(small: bool) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT x FROM (VALUES ('a'), ('b')) v(x)")
    sql: list[str] = []

    class Recording:
        def execute(self, query: str, *args: Any) -> Any:
            sql.append(query)
            return con.execute(query, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(con, name)

    ctx = PlanContext(Recording(), "t", small=small)  # type: ignore[arg-type]
    ctx.map_distinct("t.x", lambda v: (v * 2,), [("new", "VARCHAR")], ("double",))
    # creating the table, then two statements on a small table (read, insert), five otherwise
    assert len(sql) == (3 if small else 5)


def test_many_undecided_values_go_to_python_in_batches_and_give_the_same_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """From ARROW_FROM undecided values up, they reach Python MAP_BATCH at a time (a near-unique
    column at millions of rows): same tables as reading them all at once."""
    import crmtool.db as db

    whole = _maps(False)
    seen: list[int] = []
    real = db.map_in_batches

    def counting(*args: Any, **kwargs: Any) -> int:
        n = real(*args, **kwargs)
        seen.append(n)
        return n

    monkeypatch.setattr(db, "ARROW_FROM", 2)
    monkeypatch.setattr(db, "MAP_BATCH", 2)
    monkeypatch.setattr(db, "map_in_batches", counting)
    assert _maps(False) == whole
    assert seen and max(seen) >= 3  # the batched branch ran, over more values than one batch
