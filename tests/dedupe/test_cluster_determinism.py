"""The chaining guard picks the same centre on every run, whatever order the rows arrive in."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from crmtool.dedupe.cluster import _split_suspects

# member 1 and member 5 have the same score, 0.6, but summed as doubles 0.1 + 0.2 + 0.3 is
# 0.6000000000000001 while 0.3 + 0.2 + 0.1 is 0.6: the tie must go to the lower id either way
GOOD = [(1, 6, 0.6), (2, 5, 0.1), (3, 5, 0.2), (4, 5, 0.3)]
BAD = (2, 6, 0.001)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_centre_of_a_tied_cluster_does_not_depend_on_row_order(order: tuple[int, ...]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE __dd_ip (l INTEGER, r INTEGER, c INTEGER, p DOUBLE, bad BOOLEAN, "
                "good BOOLEAN, decided BOOLEAN)")
    for i in order:
        left, right, p = GOOD[i]
        con.execute("INSERT INTO __dd_ip VALUES (?, ?, 1, ?, false, true, false)", [left, right, p])
    con.execute("INSERT INTO __dd_ip VALUES (?, ?, 1, ?, true, false, false)", list(BAD))
    con.execute("CREATE TEMP TABLE __dd_edges AS SELECT l, r FROM __dd_ip WHERE good")
    con.execute("CREATE TEMP TABLE __dd_cc AS SELECT range::INTEGER AS v, 1 AS c FROM range(1, 7)")
    con.execute("CREATE TEMP TABLE __dd_cut (l INTEGER, r INTEGER, reason VARCHAR)")
    _split_suspects(con)
    assert con.execute("SELECT center FROM __dd_center").fetchall() == [(1,)]
    kept = sorted(v for (v,) in con.execute("SELECT v FROM __dd_keep").fetchall())
    assert kept == [1, 6]
