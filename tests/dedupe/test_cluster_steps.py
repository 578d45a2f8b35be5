"""The clusters as named SELECT steps (cluster_steps, what Spark runs) against the workspace's loop
(cluster.cluster, what DuckDB runs), both on DuckDB: a chain the guard splits (with pairs blocking did
not make, scored on the way), an oversized cluster, decided pairs, a vetoed pair and a household veto."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from crmtool.backend.duckdb_backend import DuckDBBackend
from crmtool.dedupe.cluster import cluster
from crmtool.dedupe.cluster_steps import CUT_COLUMNS, cluster_steps

N = 40
#: (l, r, probability, vetoed, home_vetoed, split_vetoed, decision)
PAIRS = [
    (0, 1, 0.99, False, False, False, None), (1, 2, 0.99, False, False, False, None),
    (0, 2, 0.001, False, False, False, None),  # a chain: 0 and 2 clearly differ
    (2, 3, 0.95, False, False, False, None),
    *[(i, i + 1, 0.99, False, False, False, None) for i in range(10, 17)],  # 7 records: oversized
    (20, 21, 0.1, False, False, False, "match"), (22, 23, 0.99, False, False, False, "no-match"),
    (24, 25, 0.99, True, False, False, None),
    (26, 27, 0.99, False, False, False, None), (27, 28, 0.98, False, False, False, None),
    (26, 28, 0.9, True, True, False, None),  # the household veto splits this one
    (30, 31, 0.97, False, False, False, None), (31, 32, 0.97, False, False, False, None),
    (30, 32, 0.2, True, False, True, None),  # split veto below the band
    (33, 34, 0.99, False, False, False, None), (34, 35, 0.99, False, False, False, "match"),
    (33, 35, 0.001, False, False, False, "no-match"),
]
#: probabilities of the pairs blocking did not make, scored when the guard needs them
EXTRA = "CASE WHEN l = 0 AND r = 3 THEN 0.002 WHEN l = 1 AND r = 3 THEN 0.96 ELSE 0.97 END"


def _scored(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE scored (l INTEGER, r INTEGER, rule SMALLINT, match_weight DOUBLE, "
                "match_probability DOUBLE, vetoed BOOLEAN, home_vetoed BOOLEAN, split_vetoed BOOLEAN, "
                "decision VARCHAR)")
    for pair in PAIRS:
        con.execute("INSERT INTO scored VALUES ($1, $2, 0, 0.0, $3, $4, $5, $6, $7)", list(pair))
    con.execute("CREATE TABLE recs AS SELECT range::INTEGER AS __rid FROM range(?)", [N])


@pytest.mark.parametrize("max_size", [5, 50])
def test_steps_give_the_loops_clusters_cuts_and_intra_pairs(max_size: int) -> None:
    con = duckdb.connect()
    _scored(con)
    scored_now: list[str] = []

    def score_pairs(pairs: str, target: str) -> None:
        scored_now.append(pairs)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT l, r, CAST(-3 AS SMALLINT) AS rule, "
                    f"0.0::DOUBLE AS match_weight, ({EXTRA})::DOUBLE AS match_probability, false AS vetoed, "
                    f"false AS home_vetoed, false AS split_vetoed, CAST(NULL AS VARCHAR) AS decision FROM {pairs}")

    def keep_table(name: str, clusters: list[int], members: list[int]) -> None:
        keep = pa.table({"c": pa.array(clusters, pa.int32()), "v": pa.array(members, pa.int32())})
        con.register("__keep_arrow", keep)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __keep_arrow")
        con.unregister("__keep_arrow")

    options = {"threshold": 0.9, "review": 0.5, "max_cluster_size": max_size, "split_below": 0.01}
    loop = cluster(con, "scored", N, score_pairs=score_pairs, out="loop_members", **options)  # type: ignore[arg-type]
    steps = cluster_steps(DuckDBBackend(con), "scored", "recs", score_pairs=score_pairs, keep_table=keep_table,
                          **options)  # type: ignore[arg-type]
    assert steps.stats == loop
    assert loop.split_clusters >= 3 and loop.dissolved_clusters == (1 if max_size == 5 else 0)
    assert len(scored_now) >= 2  # both ran the guard's scoring of pairs blocking did not make

    def rows(sql: str) -> list[tuple[object, ...]]:
        return con.execute(sql).fetchall()

    assert rows(f"SELECT rid, cid, match_probability FROM {steps.members} ORDER BY rid") == rows(
        "SELECT rid, cid, match_probability FROM loop_members ORDER BY rid")
    assert sorted(r for t in steps.cuts for r in rows(f"SELECT {CUT_COLUMNS} FROM {t}")) == rows(
        "SELECT * FROM __dd_cut ORDER BY ALL")
    assert sorted(r for t in steps.intras for r in rows(f"SELECT * FROM {t}")) == rows(
        "SELECT * FROM __dd_intra ORDER BY ALL")
    clusters = dict(rows("SELECT rid, cid FROM loop_members"))
    assert clusters[0] != clusters[2] and clusters[26] != clusters[28] and clusters[20] == clusters[21]
    assert clusters[34] == clusters[35] != clusters[33]  # the decided match holds, the decided no-match splits
    assert (clusters[10] == clusters[16]) is (max_size == 50)
