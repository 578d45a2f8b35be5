"""The chaining guard picks the same centre on every run, whatever order the rows arrive in."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from crmtool.dedupe.cluster import KEEP_ROWS_SQL, center_sql, keep_groups

# member 1 and member 5 have the same score, 0.6, but summed as doubles 0.1 + 0.2 + 0.3 is
# 0.6000000000000001 while 0.3 + 0.2 + 0.1 is 0.6: the tie must go to the lower id either way
GOOD = [(1, 6, 0.6), (2, 5, 0.1), (3, 5, 0.2), (4, 5, 0.3)]
BAD = (2, 6, 0.001)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_centre_of_a_tied_cluster_does_not_depend_on_row_order(order: tuple[int, ...]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE ip (l INTEGER, r INTEGER, c INTEGER, p DOUBLE, bad BOOLEAN, "
                "good BOOLEAN, decided BOOLEAN)")
    for i in order:
        left, right, p = GOOD[i]
        con.execute("INSERT INTO ip VALUES (?, ?, 1, ?, false, true, false)", [left, right, p])
    con.execute("INSERT INTO ip VALUES (?, ?, 1, ?, true, false, false)", list(BAD))
    con.execute(f"CREATE TEMP TABLE center AS {center_sql('ip')}")
    assert con.execute("SELECT c, center FROM center").fetchall() == [(1, 1)]
    clusters, kept = keep_groups(con.execute(KEEP_ROWS_SQL.format(ip="ip", center="center")).fetchall())
    assert (clusters, sorted(kept)) == ([1, 1], [1, 6])
