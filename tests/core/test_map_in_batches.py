"""map_in_batches: a function over many values, a batch at a time, gives the table a single batch gives."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

import crmtool.db as db

TYPES = {"raw": "VARCHAR", "norm": "VARCHAR", "ok": "BOOLEAN"}


def _run(con: duckdb.DuckDBPyConnection, n: int, seen: list[int]) -> tuple[int, list[tuple[Any, ...]]]:
    def func(values: list[str]) -> dict[str, list[Any]]:
        seen.append(len(values))
        return {"raw": values, "norm": [None if v.endswith("3") else v.upper() for v in values],
                "ok": [len(v) % 2 == 0 for v in values]}

    total = db.map_in_batches(con, f"SELECT 'v' || i || 'ñ' AS v FROM range({n}) r(i)", "m", func, TYPES)
    return total, con.execute("SELECT * FROM m ORDER BY raw").fetchall()


@pytest.mark.parametrize("n", [0, 1, 7, 20])
def test_batches_give_the_one_batch_table_and_hold_a_batch_at_most(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    whole: list[int] = []
    total, want = _run(con, n, whole)
    assert total == n and len(want) == n
    assert whole == ([n] if n else [])
    monkeypatch.setattr(db, "MAP_BATCH", 3)
    batches: list[int] = []
    assert _run(con, n, batches) == (n, want)
    assert sum(batches) == n and all(b <= 3 for b in batches)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'm__todo'").fetchone() == (0,)
    assert con.execute("SELECT typeof(ok) FROM m LIMIT 1").fetchall() in ([], [("BOOLEAN",)])
