"""The clusters (cluster.cluster_steps, run on the workspace's DuckDB by cluster_in_workspace) against
hand-computed answers: components of a chain, a star and two islands, the oversized dissolve, and the
chaining guard's splits (a pair below split_below, a household veto, a decided no-match, with the pairs
blocking did not make scored on the way), and a cluster only decided matches hold together."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from crmtool.dedupe.cluster import ClusterStats, cluster_in_workspace

N = 40
#: (l, r, probability, vetoed, home_vetoed, split_vetoed, decision)
PAIRS = [
    # a chain 0-1-2-3 where 0 and 2 clearly differ; 0-3 and 1-3 blocking did not make (scored below)
    (0, 1, 0.99, False, False, False, None), (1, 2, 0.99, False, False, False, None),
    (0, 2, 0.001, False, False, False, None), (2, 3, 0.95, False, False, False, None),
    # a star around 5: its leaves' pairs are not made by blocking, all score 0.97 (good)
    *[(5, leaf, 0.99, False, False, False, None) for leaf in (6, 7, 8, 9)],
    # a chain of 7 records: oversized when max_cluster_size is 5
    *[(i, i + 1, 0.99, False, False, False, None) for i in range(10, 16)],
    # two islands, a vetoed pair, a pair below the threshold
    (20, 21, 0.99, False, False, False, None), (22, 23, 0.96, False, False, False, None),
    (24, 25, 0.99, True, False, False, None), (25, 26, 0.6, False, False, False, None),
    # the household veto splits this one
    (27, 28, 0.99, False, False, False, None), (28, 29, 0.98, False, False, False, None),
    (27, 29, 0.9, True, True, False, None),
    # a decided match holds, a decided no-match splits
    (33, 34, 0.99, False, False, False, None), (34, 35, 0.4, False, False, False, "match"),
    (33, 35, 0.001, False, False, False, "no-match"),
]
#: probabilities of the pairs blocking did not make, scored when the guard needs them
EXTRA = "CASE WHEN l = 0 AND r = 3 THEN 0.002 WHEN l = 1 AND r = 3 THEN 0.96 ELSE 0.97 END"


def _run(pairs: list[tuple[Any, ...]], max_size: int) -> tuple[duckdb.DuckDBPyConnection, ClusterStats, list[str]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE scored (l INTEGER, r INTEGER, rule SMALLINT, match_weight DOUBLE, "
                "match_probability DOUBLE, vetoed BOOLEAN, home_vetoed BOOLEAN, split_vetoed BOOLEAN, "
                "decision VARCHAR)")
    for pair in pairs:
        con.execute("INSERT INTO scored VALUES ($1, $2, 0, 0.0, $3, $4, $5, $6, $7)", list(pair))
    con.execute("CREATE TABLE recs AS SELECT range::INTEGER AS __rid FROM range(?)", [N])
    scored_now: list[str] = []

    def score_pairs(missing: str, target: str) -> None:
        scored_now.extend(f"{a}-{b}" for a, b in con.execute(f"SELECT l, r FROM {missing} ORDER BY l, r").fetchall())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT l, r, CAST(-3 AS SMALLINT) AS rule, "
                    f"0.0::DOUBLE AS match_weight, ({EXTRA})::DOUBLE AS match_probability, false AS vetoed, "
                    f"false AS home_vetoed, false AS split_vetoed, CAST(NULL AS VARCHAR) AS decision FROM {missing}")

    stats = cluster_in_workspace(con, "scored", "recs", score_pairs=score_pairs, threshold=0.9, review=0.5,
                                 max_cluster_size=max_size, split_below=0.01)
    return con, stats, scored_now


def _groups(con: duckdb.DuckDBPyConnection) -> list[list[int]]:
    """The clusters of two or more records, each as its sorted members; checks cid is the smallest member."""
    rows = con.execute("SELECT cid, list(rid ORDER BY rid) FROM __dd_members GROUP BY cid HAVING count(*) > 1 "
                       "ORDER BY cid").fetchall()
    assert all(cid == members[0] for cid, members in rows)
    return [members for _cid, members in rows]


@pytest.mark.parametrize("max_size", [5, 50])
def test_components_dissolve_and_guard_splits(max_size: int) -> None:
    con, stats, scored_now = _run(PAIRS, max_size)
    long_chain = [] if max_size == 5 else [list(range(10, 17))]
    assert _groups(con) == [[0, 1], [2, 3], [5, 6, 7, 8, 9], *long_chain, [20, 21], [22, 23], [27, 28], [34, 35]]
    assert [rid for (rid,) in con.execute("SELECT rid FROM __dd_members").fetchall()] == list(range(N))  # in order
    # each record's best probability with a member of its final cluster (1.0 alone)
    probs = dict(con.execute("SELECT rid, match_probability FROM __dd_members").fetchall())
    assert (probs[0], probs[3], probs[6], probs[22], probs[29], probs[34], probs[24]) == (
        0.99, 0.95, 0.99, 0.96, 1.0, 0.4, 1.0)
    # the guard: the chain around 1 (1-0 kept, 2 differs from 0), the home around 28, 33 apart from 34-35
    cuts = con.execute("SELECT * FROM __dd_cut ORDER BY ALL").fetchall()
    oversized = [(i, i + 1, "oversized_cluster", "max_cluster_size", None, None) for i in range(10, 16)]
    assert cuts == sorted([(1, 2, "chaining", "split_below", 0, 2), (28, 29, "chaining", "household", 27, 29),
                           (33, 34, "chaining", "no-match", 33, 35), *(oversized if max_size == 5 else [])])
    leaves = [f"{a}-{b}" for a in (6, 7, 8, 9) for b in (6, 7, 8, 9) if a < b]
    chain_of_7 = [] if max_size == 5 else [f"{a}-{b}" for a in range(10, 17) for b in range(10, 17) if b > a + 1]
    assert sorted(scored_now) == sorted(["0-3", "1-3", *leaves, *chain_of_7])
    assert sorted(con.execute("SELECT l || '-' || r FROM __dd_intra").fetchall()) == sorted((p,) for p in scored_now)
    assert (stats.split_clusters, stats.dissolved_clusters) == (3, 1 if max_size == 5 else 0)
    if max_size == 5:  # 7 clusters of 2+ records (17 records), 23 alone
        assert (stats.clusters, stats.multi, stats.records_in_multi, stats.largest) == (30, 7, 17, 5)
    else:  # and the chain of 7 together
        assert (stats.clusters, stats.multi, stats.records_in_multi, stats.largest) == (24, 8, 24, 7)
    assert stats.propagation_rounds >= 2
    # nothing of the steps is left in the workspace but what the later steps read
    left = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert left == {"scored", "recs", "__dd_members", "__dd_cut", "__dd_intra"}


def test_a_cluster_held_by_decided_matches_stays_whole() -> None:
    pairs = [(36, 37, 0.5, False, False, False, "match"), (37, 38, 0.5, False, False, False, "match"),
             (36, 38, 0.001, False, False, False, "no-match")]
    con, stats, scored_now = _run(pairs, 50)
    assert _groups(con) == [[36, 37, 38]]
    assert con.execute("SELECT count(*) FROM __dd_cut").fetchall() == [(0,)]
    assert scored_now == [] and stats.split_clusters == 1


def test_no_pairs_every_record_alone() -> None:
    con, stats, scored_now = _run([], 50)
    assert _groups(con) == [] and scored_now == []
    assert (stats.clusters, stats.multi, stats.largest) == (N, 0, 1)
    assert con.execute("SELECT count(*), min(match_probability) FROM __dd_members").fetchall() == [(N, 1.0)]


def test_a_long_path_is_one_component_in_few_rounds() -> None:
    """Pointer jumping: a path of 32 records takes a handful of propagation rounds, not one per record."""
    path = [(i, i + 1, 0.99, False, False, False, None) for i in range(4, 35)]
    con, stats, scored_now = _run(path, 50)
    assert _groups(con) == [list(range(4, 36))]
    assert len(scored_now) == 32 * 31 // 2 - 31 and stats.split_clusters == 0
    assert stats.propagation_rounds <= 8


@pytest.mark.parametrize("rounds", [1, 2])
def test_the_last_rounds_cuts_are_in_the_members(monkeypatch: pytest.MonkeyPatch, rounds: int) -> None:
    """When the guard's rounds run out right after a dissolve (1 round) or a split (2 rounds: the
    oversized chain goes first), the clusters are those of the edges after it, not before: no
    cluster above max_cluster_size and none holding a pair the guard cut."""
    from crmtool.dedupe import cluster

    monkeypatch.setattr(cluster, "GUARD_ROUNDS", rounds)
    con, _stats, _scored = _run(PAIRS, 5)
    groups = _groups(con)
    assert max(len(g) for g in groups) <= 5
    assert [10, 11] not in groups and all(10 not in g for g in groups)  # the oversized chain: dissolved
    cut = con.execute("SELECT l, r FROM __dd_cut").fetchall()
    cid = dict(con.execute("SELECT rid, cid FROM __dd_members").fetchall())
    assert cut and all(cid[left] != cid[right] for left, right in cut)
    if rounds == 2:  # the split of the first round's suspects happened in the last round
        assert [0, 1] in groups and [2, 3] in groups
