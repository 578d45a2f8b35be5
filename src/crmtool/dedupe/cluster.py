"""Clusters: connected components of the match graph, in SQL, with a guard against chaining.

Edges are the scored pairs at or above the threshold (not vetoed, not decided ``no-match``) plus
the pairs a person decided are a ``match``. Components come from label propagation with pointer
jumping (a handful of set-based rounds). The guard then scores *every* pair inside each cluster of
three or more records: a cluster holding a pair that clearly does not match (below ``split_below``,
stopped by the household veto, decided ``no-match``, or below the review band with birth dates that
clearly differ and nothing but the names for it) is split around its best-connected record,
and the cut pairs go to review; a cluster larger than ``max_cluster_size`` is dissolved and sent to review.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

MAX_ROUNDS = 100


@dataclass
class ClusterStats:
    clusters: int = 0
    multi: int = 0
    records_in_multi: int = 0
    largest: int = 1
    propagation_rounds: int = 0
    split_clusters: int = 0
    dissolved_clusters: int = 0


def both_ways_sql(edges: str) -> str:
    """SELECT of the edges ``(l, r)`` of ``edges`` in both directions, as ``(a, b)``."""
    return f"SELECT l AS a, r AS b FROM {edges} UNION ALL SELECT r, l FROM {edges}"


def start_labels_sql(both: str) -> str:
    """SELECT of each vertex of ``both(a, b)`` with the smallest of itself and its neighbours."""
    return f"SELECT a AS v, least(a, min(b)) AS c FROM {both} GROUP BY a"


def propagate_sql(labels: str, both: str) -> str:
    """One round of label propagation: each vertex takes the smallest label among its neighbours'."""
    return f"""SELECT x.v, least(x.c, min(y.c)) AS c FROM {labels} x JOIN {both} e ON e.a = x.v
            JOIN {labels} y ON y.v = e.b GROUP BY x.v, x.c"""


def jump_sql(labels: str) -> str:
    """Pointer jumping: each vertex adopts the label of its label."""
    return f"""SELECT x.v, least(x.c, coalesce(y.c, x.c)) AS c FROM {labels} x LEFT JOIN {labels} y ON y.v
                = x.c"""


def changed_sql(new: str, old: str) -> str:
    """SELECT of how many vertices have another label in ``new`` than in ``old``."""
    return f"SELECT count(*) FROM {new} n JOIN {old} o ON o.v = n.v WHERE n.c <> o.c"


def components(con: duckdb.DuckDBPyConnection, edges: str, out: str) -> int:
    """``out(v, c)``: for every vertex of ``edges(l, r)``, the smallest vertex of its component."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_e AS {both_ways_sql(edges)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS {start_labels_sql('__dd_e')}")
    rounds = 0
    for rounds in range(1, MAX_ROUNDS + 1):  # noqa: B007 - reported
        con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_lab2 AS {propagate_sql(out, '__dd_e')}")
        # pointer jumping: adopt the label of your label
        con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_lab3 AS {jump_sql('__dd_lab2')}")
        changed = con.execute(changed_sql("__dd_lab3", out)).fetchall()
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM __dd_lab3")
        if changed[0][0] == 0:
            break
    con.execute("DROP TABLE IF EXISTS __dd_lab2; DROP TABLE IF EXISTS __dd_lab3; DROP TABLE IF EXISTS __dd_e")
    return rounds


#: the rows :func:`keep_groups` reads, over the judged pairs ``ip`` and the centres ``center``
KEEP_ROWS_SQL = """SELECT i.c, z.center, i.l, i.r, CASE WHEN i.decided THEN 2.0 ELSE i.p END, i.good, i.bad
        FROM {ip} i
        JOIN {center} z ON z.c = i.c ORDER BY i.c, i.l, i.r"""


def keep_groups(rows: list[tuple[Any, ...]]) -> tuple[list[int], list[int]]:
    """(clusters, members): the members each suspect cluster keeps around its centre, greedily, from
    the rows of :data:`KEEP_ROWS_SQL` (few clusters, few members each)."""
    by_cluster: dict[int, list[tuple[int, int, int, float, bool, bool]]] = {}
    for c, center, left, right, p, good, bad in rows:
        by_cluster.setdefault(c, []).append((center, left, right, p or 0.0, bool(good), bool(bad)))
    keep_c: list[int] = []
    keep_v: list[int] = []
    for c, pairs in by_cluster.items():
        center = pairs[0][0]
        bad = {(a, b) for _, a, b, _, _, x in pairs if x}
        cands = sorted((-p, b if a == center else a) for _, a, b, p, g, _ in pairs if g and center in (a, b))
        group = [center]
        for neg_p, v in cands:  # a pair decided 'match' (p = 2) always joins: decisions are honoured
            if neg_p <= -2 or all((min(v, k), max(v, k)) not in bad for k in group):
                group.append(v)
        keep_c.extend([c] * len(group))
        keep_v.extend(group)
    return keep_c, keep_v


def _keep_groups(con: duckdb.DuckDBPyConnection) -> None:
    """``__dd_keep(c, v)``: the members each suspect cluster keeps around its centre (greedy, in Python per cluster)."""
    import pyarrow as pa

    keep_c, keep_v = keep_groups(con.execute(KEEP_ROWS_SQL.format(ip="__dd_ip", center="__dd_center")).fetchall())
    keep = pa.table({"c": pa.array(keep_c, pa.int32()), "v": pa.array(keep_v, pa.int32())})
    con.register("__dd_keep_arrow", keep)
    con.execute("CREATE OR REPLACE TEMP TABLE __dd_keep AS SELECT * FROM __dd_keep_arrow")
    con.unregister("__dd_keep_arrow")


def _dissolve_oversized(con: duckdb.DuckDBPyConnection, max_cluster_size: int) -> int:
    """Dissolve clusters over ``max_cluster_size``: their edges go to review; return how many."""
    big = con.execute(f"SELECT count(*) FROM __dd_sizes WHERE n > {max_cluster_size}").fetchall()[0][0]
    if big:
        con.execute(f"""INSERT INTO __dd_cut SELECT e.l, e.r, 'oversized_cluster', 'max_cluster_size', NULL, NULL
            FROM __dd_edges e
            JOIN __dd_cc x ON x.v = e.l JOIN __dd_sizes z ON z.c = x.c WHERE z.n > {max_cluster_size}""")
        con.execute(f"""DELETE FROM __dd_edges WHERE l IN (SELECT x.v FROM __dd_cc x JOIN __dd_sizes
            z USING (c)
            WHERE z.n > {max_cluster_size})""")
    return int(big)


def _score_intra_pairs(con: duckdb.DuckDBPyConnection, s: str, score_pairs: Callable[[str, str], None]) -> None:
    """Every pair inside clusters of 3+ records into ``__dd_allintra``; those not scored yet are scored now."""
    con.execute("""CREATE OR REPLACE TEMP TABLE __dd_allintra AS
        SELECT a.v AS l, b.v AS r, a.c FROM __dd_cc a JOIN __dd_cc b ON a.c = b.c AND a.v < b.v
        WHERE a.c IN (SELECT c FROM __dd_sizes WHERE n >= 3)""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_missing AS SELECT l, r FROM __dd_allintra
        ANTI JOIN (SELECT l, r FROM {s} UNION ALL SELECT l, r FROM __dd_intra) k USING (l, r)""")
    if con.execute("SELECT count(*) FROM __dd_missing").fetchall()[0][0]:
        score_pairs("__dd_missing", "__dd_newintra")
        con.execute("INSERT INTO __dd_intra SELECT * FROM __dd_newintra")
        con.execute("DROP TABLE IF EXISTS __dd_newintra")


def judge_sql(allintra: str, scored: str, *, threshold: float, review: float, split_below: float) -> str:
    """SELECT marking each intra-cluster pair of ``allintra(l, r, c)`` good or bad (and why), its scores
    from ``scored`` (the scored pairs and the intra-cluster pairs scored since)."""
    return f"""SELECT a.l, a.r, a.c, k.match_probability AS p,
               (k.decision = 'no-match' OR (k.decision IS NULL AND (k.match_probability < {split_below}
                OR (k.home_vetoed AND k.match_probability >= {review})
                OR (k.split_vetoed AND k.match_probability < {review})))) AS bad,
               (k.decision = 'match' OR (k.decision IS NULL AND k.match_probability >= {threshold}
                AND NOT k.vetoed)) AS good, coalesce(k.decision = 'match', false) AS decided,
               CASE WHEN k.decision = 'no-match' THEN 'no-match' WHEN k.decision IS NOT NULL THEN NULL
                    WHEN k.match_probability < {split_below} THEN 'split_below'
                    WHEN k.home_vetoed AND k.match_probability >= {review} THEN 'household'
                    WHEN k.split_vetoed AND k.match_probability < {review} THEN 'veto' END AS why
        FROM {allintra} a JOIN {scored} k ON k.l = a.l AND k.r = a.r"""


def _judge_intra_pairs(con: duckdb.DuckDBPyConnection, s: str, *, threshold: float, review: float,
                       split_below: float) -> int:
    """Mark each intra-cluster pair good or bad in ``__dd_ip``; return the clusters holding a bad pair."""
    scored = f"(SELECT * FROM {s} UNION ALL SELECT * FROM __dd_intra)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_ip AS "
                f"{judge_sql('__dd_allintra', scored, threshold=threshold, review=review, split_below=split_below)}")
    return int(con.execute("SELECT count(DISTINCT c) FROM __dd_ip WHERE bad").fetchall()[0][0])


def _split_suspects(con: duckdb.DuckDBPyConnection) -> bool:
    """Split each suspect cluster around its best-connected member, cutting the crossing edges; False: none to cut."""
    # split each suspect cluster around its best-connected member: keep the members that match it.
    # The score is summed in DECIMAL: a parallel sum of doubles depends on the order the rows arrive in,
    # so two members with the same score (a tie broken by the lower id) could swap between reruns.
    con.execute("""CREATE OR REPLACE TEMP TABLE __dd_center AS
        SELECT c, arg_max(v, (score, -v)) AS center FROM (
            SELECT c, v, sum(CASE WHEN good THEN CAST(p AS DECIMAL(18, 12)) ELSE -1 END) AS score FROM (
                SELECT c, l AS v, p, good FROM __dd_ip UNION ALL SELECT c, r, p, good FROM __dd_ip)
            WHERE c IN (SELECT c FROM __dd_ip WHERE bad) GROUP BY c, v) GROUP BY c""")
    # greedy, per suspect cluster (few and small): members join the centre's group in order of their
    # probability with the centre, unless they clearly do not match someone already in it
    _keep_groups(con)
    con.execute("""CREATE OR REPLACE TEMP TABLE __dd_cross AS
        SELECT e.l, e.r, z.c FROM __dd_edges e JOIN __dd_cc x ON x.v = e.l JOIN __dd_center z ON z.c = x.c
        WHERE ((e.l IN (SELECT v FROM __dd_keep k WHERE k.c = z.c))
               <> (e.r IN (SELECT v FROM __dd_keep k WHERE k.c = z.c)))""")
    if not con.execute("SELECT count(*) FROM __dd_cross").fetchall()[0][0]:
        return False  # only decided matches hold the cluster together: decisions win
    # each cut names what split its cluster: the cluster's first bad pair and why it is bad
    con.execute("""INSERT INTO __dd_cut SELECT x.l, x.r, 'chaining', b.why, b.l, b.r FROM __dd_cross x
        JOIN (SELECT c, arg_min(l, (l, r)) AS l, arg_min(r, (l, r)) AS r, arg_min(why, (l, r)) AS why
              FROM __dd_ip WHERE bad GROUP BY c) b ON b.c = x.c""")
    con.execute("DELETE FROM __dd_edges e USING __dd_cross x WHERE e.l = x.l AND e.r = x.r")
    return True


def _write_members(con: duckdb.DuckDBPyConnection, s: str, n_records: int, out: str, stats: ClusterStats) -> None:
    """``out(rid, cid, match_probability)`` for every record from the final components; counts into ``stats``."""
    con.execute(f"""CREATE OR REPLACE TABLE {ident(out)} AS
        WITH members AS (SELECT r.range::INTEGER AS rid, coalesce(c.c, r.range::INTEGER) AS cid
                         FROM range({n_records}) r LEFT JOIN __dd_cc c ON c.v = r.range),
        probs AS (SELECT v, max(p) AS p FROM (
            SELECT k.l AS v, k.match_probability AS p, k.l, k.r FROM (SELECT * FROM {s} UNION ALL
                SELECT * FROM __dd_intra) k
            UNION ALL SELECT k.r, k.match_probability, k.l, k.r FROM (SELECT * FROM {s} UNION ALL
                SELECT * FROM __dd_intra) k) x
            JOIN members ml ON ml.rid = x.l JOIN members mr ON mr.rid = x.r WHERE ml.cid = mr.cid GROUP BY v)
        SELECT m.rid, m.cid, coalesce(p.p, 1.0) AS match_probability FROM members m LEFT JOIN probs p ON
            p.v = m.rid
        ORDER BY m.rid""")
    row = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE n > 1), coalesce(sum(n) FILTER (WHERE n
        > 1), 0),
        coalesce(max(n), 1) FROM (SELECT cid, count(*) AS n FROM {ident(out)} GROUP BY cid)""").fetchall()[0]
    stats.clusters, stats.multi, stats.records_in_multi, stats.largest = (int(x) for x in row)


def cluster(
    con: duckdb.DuckDBPyConnection,
    scored: str,
    n_records: int,
    *,
    threshold: float,
    review: float,
    max_cluster_size: int,
    split_below: float = 0.01,
    score_pairs: Callable[[str, str], None],
    out: str,
) -> ClusterStats:
    """Create ``out(rid, cid, match_probability)`` for every record and ``__dd_cut(l, r, reason, why, bad_l,
    bad_r)``: each cut pair, the guard that cut it, and for the chaining guard the pair that made its cluster
    suspect (``bad_l``, ``bad_r``) and why (``no-match``, ``split_below``, ``household``, ``veto``).

    ``scored`` has ``l, r, match_probability, vetoed, home_vetoed, split_vetoed, decision``. A cluster is
    split when it holds a pair decided ``no-match``, a pair below ``split_below``, a pair the household
    veto stopped (people sharing a home, no person-level agreement), or a ``split_vetoed`` pair below the
    review band (birth dates that clearly differ, nothing but the names for it:
    :func:`crmtool.dedupe.veto.split_veto_sql`); a pair stopped by a first-name veto alone does not
    split a cluster its records joined through other strong pairs.
    ``score_pairs(pairs, target)`` scores extra pairs (intra-cluster pairs that blocking did not make)
    into a table with the same columns.
    """
    stats = ClusterStats()
    s = ident(scored)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_edges AS SELECT l, r FROM {s}
        WHERE (decision = 'match') OR (decision IS NULL AND match_probability >= {threshold} AND NOT
            vetoed)""")
    con.execute("CREATE OR REPLACE TEMP TABLE __dd_cut (l INTEGER, r INTEGER, reason VARCHAR, why VARCHAR, "
                "bad_l INTEGER, bad_r INTEGER)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_intra AS SELECT * FROM {s} LIMIT 0")
    for _ in range(10):
        stats.propagation_rounds += components(con, "__dd_edges", "__dd_cc")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __dd_sizes AS SELECT c, count(*) AS n FROM __dd_cc GROUP BY c"
        )
        # oversized clusters: dissolve, their edges go to review
        dissolved = _dissolve_oversized(con, max_cluster_size)
        if dissolved:
            stats.dissolved_clusters += dissolved
            continue
        _score_intra_pairs(con, s, score_pairs)
        bad = _judge_intra_pairs(con, s, threshold=threshold, review=review, split_below=split_below)
        if not bad:
            break
        stats.split_clusters += bad
        if not _split_suspects(con):
            break
    _write_members(con, s, n_records, out, stats)
    for t in (
        "__dd_edges",
        "__dd_cc",
        "__dd_sizes",
        "__dd_allintra",
        "__dd_missing",
        "__dd_ip",
        "__dd_center",
        "__dd_keep",
        "__dd_cross",
    ):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return stats
