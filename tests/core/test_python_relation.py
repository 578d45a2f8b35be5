"""Python lists travel to and from DuckDB as list parameters (small) or Arrow (large): same tables."""

from __future__ import annotations

import duckdb
import pytest

import crmtool.db as db

VALUES = ["a", "Ñandú", "", "x y", "ümlaut", "é" * 300, "O'Neill", "a\x00b"]


def _table(con: duckdb.DuckDBPyConnection, columns: dict[str, list[object]], types: dict[str, str]) -> list[tuple]:
    cols = ", ".join(f'CAST("{k}" AS {t}) AS "{k}"' for k, t in types.items())
    varchar = [k for k, t in types.items() if t == "VARCHAR"]
    with db.python_relation(con, columns, varchar) as (source, params):
        con.execute(f"CREATE OR REPLACE TEMP TABLE t AS SELECT {cols} FROM {source}", params)
    return con.execute("SELECT * FROM t").fetchall()


@pytest.mark.parametrize("size", [0, 1, 5, 1000])
def test_both_ways_give_the_same_table(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    values = [VALUES[i % len(VALUES)] + str(i) for i in range(size)]
    columns: dict[str, list[object]] = {
        "value": list(values),
        "ok": [None if i % 7 == 0 else i % 2 == 0 for i in range(size)],
        "new": [None if i % 3 == 0 else v.upper() for i, v in enumerate(values)],
        "all_null": [None] * size,
    }
    types = {"value": "VARCHAR", "ok": "BOOLEAN", "new": "VARCHAR", "all_null": "VARCHAR"}
    by_rows = _table(con, columns, types)
    monkeypatch.setattr(db, "ARROW_FROM", 0)  # the same lists through Arrow
    by_arrow = _table(con, columns, types)
    assert by_rows == by_arrow
    assert [r[0] for r in by_rows] == values
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__python%'").fetchone() == (0,)


def test_fetch_column_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT CASE WHEN i % 5 = 0 THEN NULL ELSE 'v' || i END AS x FROM range(200) t(i)")
    small = db.fetch_column(con, "SELECT x FROM v ORDER BY rowid")
    monkeypatch.setattr(db, "ARROW_FROM", 0)
    assert db.fetch_column(con, "SELECT x FROM v ORDER BY rowid") == small
    assert small[:3] == [None, "v1", "v2"]
