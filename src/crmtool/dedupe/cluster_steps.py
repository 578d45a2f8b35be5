"""Clusters as named SELECT steps on any :class:`~crmtool.backend.base.Backend` (Spark for
``dedupe --engine spark``): the same algorithm as :func:`crmtool.dedupe.cluster.cluster`, which
runs on the workspace's DuckDB, with the same SQL where it is a plain SELECT.

Connected components by label propagation with pointer jumping (rounds until no label changes,
one count per round comes back), oversized clusters dissolved, and the chaining guard: every pair
inside clusters of three or more records is judged, those blocking did not make are compared and
scored there first. Only the greedy keep of each suspect cluster runs in Python, over the judged
pairs of the suspect clusters (few and small), and goes back as a table. Tables are versioned by
name (``<prefix>edges1``, ...) rather than updated: Spark has no UPDATE or DELETE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.dedupe.cluster import (
    KEEP_ROWS_SQL,
    MAX_ROUNDS,
    ClusterStats,
    both_ways_sql,
    changed_sql,
    judge_sql,
    jump_sql,
    keep_groups,
    propagate_sql,
    start_labels_sql,
)

if TYPE_CHECKING:
    from crmtool.backend.base import Backend

#: the guard's rounds, as in :func:`crmtool.dedupe.cluster.cluster`
GUARD_ROUNDS = 10
CUT_COLUMNS = ("CAST(l AS INTEGER) AS l, CAST(r AS INTEGER) AS r, CAST(reason AS VARCHAR) AS reason, "
               "CAST(why AS VARCHAR) AS why, CAST(bad_l AS INTEGER) AS bad_l, CAST(bad_r AS INTEGER) AS bad_r")


@dataclass
class Clustered:
    """What :func:`cluster_steps` leaves on the backend: ``members(rid, cid, match_probability)`` for
    every record, the tables of cut pairs ``(l, r, reason, why, bad_l, bad_r)`` and of the pairs
    scored for the guard (the scored pairs' columns). The tables stay apart: Spark 4.0 failed to
    plan a UNION of the locally checkpointed cut tables (``key not found: l#...``)."""

    stats: ClusterStats
    members: str
    cuts: list[str]
    intras: list[str]
    made: list[str] = field(default_factory=list)


class _Steps:
    def __init__(self, db: Backend, prefix: str) -> None:
        self.db, self.p = db, prefix
        self.live: set[str] = set()

    def make(self, name: str, select_sql: str) -> str:
        table = self.p + name
        self.db.create_table(table, select_sql, keep=True)  # each is read again: materialised
        self.live.add(table)
        return table

    def count(self, select_sql: str) -> int:
        return int(self.db.fetch(select_sql)[0][0])

    def drop(self, table: str) -> None:
        self.db.drop_table(table)
        self.live.discard(table)


def components_steps(steps: _Steps, edges: str) -> tuple[int, str]:
    """(rounds, table ``(v, c)``): for every vertex of ``edges(l, r)``, the smallest vertex of its
    component (:func:`crmtool.dedupe.cluster.components` as steps)."""
    both = steps.make("e", both_ways_sql(edges))
    labels = steps.make("cc0", start_labels_sql(both))
    rounds = 0
    for rounds in range(1, MAX_ROUNDS + 1):
        moved = steps.make("lab", propagate_sql(labels, both))
        jumped = steps.make(f"cc{rounds}", jump_sql(moved))
        changed = steps.count(changed_sql(jumped, labels))
        steps.drop(labels)
        labels = jumped
        if changed == 0:
            break
    steps.drop(steps.p + "lab")
    steps.drop(both)
    return rounds, labels


def _center_sql(ip: str) -> str:
    """Each suspect cluster's best-connected member (the highest sum of its good pairs' probabilities,
    in DECIMAL as on DuckDB, ties to the lower id): ``arg_max(v, (score, -v))`` as a row number."""
    return f"""SELECT c, v AS center FROM (
            SELECT c, v, row_number() OVER (PARTITION BY c ORDER BY score DESC, v) AS k FROM (
                SELECT c, v, sum(CASE WHEN good THEN CAST(p AS DECIMAL(18, 12)) ELSE -1 END) AS score FROM (
                    SELECT c, l AS v, p, good FROM {ip} UNION ALL SELECT c, r, p, good FROM {ip}) u
                WHERE c IN (SELECT c FROM {ip} WHERE bad) GROUP BY c, v) s) t
        WHERE k = 1"""


def _members_sql(records: str, labels: str, scored: str) -> str:
    """``(rid, cid, match_probability)``: every record of ``records(__rid)`` with its cluster and its
    best probability with a member of it (1.0 alone)."""
    return f"""WITH members AS (SELECT p.__rid AS rid, coalesce(c.c, p.__rid) AS cid
                         FROM {records} p LEFT JOIN {labels} c ON c.v = p.__rid),
        probs AS (SELECT v, max(x.p) AS p FROM (
            SELECT k.l AS v, k.match_probability AS p, k.l, k.r FROM {scored} k
            UNION ALL SELECT k.r, k.match_probability, k.l, k.r FROM {scored} k) x
            JOIN members ml ON ml.rid = x.l JOIN members mr ON mr.rid = x.r WHERE ml.cid = mr.cid GROUP BY v)
        SELECT m.rid, m.cid, coalesce(p.p, 1.0) AS match_probability FROM members m LEFT JOIN probs p ON
            p.v = m.rid"""


def cluster_steps(
    db: Backend,
    scored: str,
    records: str,
    *,
    threshold: float,
    review: float,
    max_cluster_size: int,
    split_below: float = 0.01,
    score_pairs: Callable[[str, str], None],
    keep_table: Callable[[str, list[int], list[int]], None],
    prefix: str = "dd_c_",
) -> Clustered:
    """:func:`crmtool.dedupe.cluster.cluster` as named SELECT steps on ``db``, over the scored pairs
    ``scored`` and the records ``records`` (``__rid`` dense 0..n-1). ``score_pairs(pairs, target)``
    compares and scores the pairs ``(l, r)`` of ``pairs`` into table ``target`` on ``db`` (the scored
    pairs' columns); ``keep_table(name, clusters, members)`` makes table ``name(c INTEGER, v
    INTEGER)`` on ``db``."""
    steps = _Steps(db, prefix)
    stats = ClusterStats()
    intras: list[str] = []
    cuts: list[str] = []

    def all_scored() -> str:
        return "(" + " UNION ALL ".join(f"SELECT * FROM {t}" for t in [scored, *intras]) + ")"

    edges = steps.make("edges0", f"""SELECT l, r FROM {scored}
        WHERE (decision = 'match') OR (decision IS NULL AND match_probability >= {threshold} AND NOT vetoed)""")
    labels = ""
    for turn in range(1, GUARD_ROUNDS + 1):
        if labels:
            steps.drop(labels)
        rounds, labels = components_steps(steps, edges)
        stats.propagation_rounds += rounds
        sizes = steps.make("sizes", f"SELECT c, count(*) AS n FROM {labels} GROUP BY c")
        big = steps.count(f"SELECT count(*) FROM {sizes} WHERE n > {max_cluster_size}")
        if big:  # oversized clusters: dissolve, their edges go to review
            stats.dissolved_clusters += big
            cuts.append(steps.make(f"cut{len(cuts)}", f"""SELECT e.l, e.r, 'oversized_cluster' AS reason,
                    'max_cluster_size' AS why, CAST(NULL AS INTEGER) AS bad_l, CAST(NULL AS INTEGER) AS bad_r
                FROM {edges} e JOIN {labels} x ON x.v = e.l JOIN {sizes} z ON z.c = x.c
                WHERE z.n > {max_cluster_size}"""))
            edges, old = steps.make(f"edges{turn}", f"""SELECT e.l, e.r FROM {edges} e ANTI JOIN (
                    SELECT x.v FROM {labels} x JOIN {sizes} z ON z.c = x.c WHERE z.n > {max_cluster_size}) d
                ON d.v = e.l"""), edges
            steps.drop(old)
            continue
        allintra = steps.make("allintra", f"""SELECT a.v AS l, b.v AS r, a.c FROM {labels} a
            JOIN {labels} b ON a.c = b.c AND a.v < b.v WHERE a.c IN (SELECT c FROM {sizes} WHERE n >= 3)""")
        missing = steps.make("missing", f"""SELECT a.l, a.r FROM {allintra} a
            ANTI JOIN {all_scored()} k ON k.l = a.l AND k.r = a.r""")
        if steps.count(f"SELECT count(*) FROM {missing}"):
            intras.append(f"{prefix}intra{len(intras)}")
            score_pairs(missing, intras[-1])
            steps.live.add(intras[-1])
        ip = steps.make("ip", judge_sql(allintra, all_scored(), threshold=threshold, review=review,
                                        split_below=split_below))
        bad = steps.count(f"SELECT count(DISTINCT c) FROM {ip} WHERE bad")
        if not bad:
            break
        stats.split_clusters += bad
        # greedy, per suspect cluster (few and small), in Python: see cluster._split_suspects
        center = steps.make("center", _center_sql(ip))
        keep_c, keep_v = keep_groups(db.fetch(KEEP_ROWS_SQL.format(ip=ip, center=center)))
        keep_table(prefix + "keep", keep_c, keep_v)
        steps.live.add(prefix + "keep")
        cross = steps.make("cross", f"""SELECT e.l, e.r, z.c FROM {edges} e JOIN {labels} x ON x.v = e.l
                JOIN {center} z ON z.c = x.c
                LEFT JOIN {prefix}keep kl ON kl.c = z.c AND kl.v = e.l
                LEFT JOIN {prefix}keep kr ON kr.c = z.c AND kr.v = e.r
            WHERE (kl.v IS NULL) <> (kr.v IS NULL)""")
        if not steps.count(f"SELECT count(*) FROM {cross}"):
            break  # only decided matches hold the cluster together: decisions win
        # each cut names what split its cluster: the cluster's first bad pair and why it is bad
        cuts.append(steps.make(f"cut{len(cuts)}", f"""SELECT x.l, x.r, 'chaining' AS reason, b.why,
                b.l AS bad_l, b.r AS bad_r FROM {cross} x
            JOIN (SELECT c, l, r, why FROM (SELECT c, l, r, why, row_number() OVER (PARTITION BY c ORDER BY l, r)
                  AS k FROM {ip} WHERE bad) f WHERE k = 1) b ON b.c = x.c"""))
        edges, old = steps.make(f"edges{turn}", f"""SELECT e.l, e.r FROM {edges} e
            ANTI JOIN {cross} x ON x.l = e.l AND x.r = e.r"""), edges
        steps.drop(old)
    members = steps.make("members", _members_sql(records, labels, all_scored()))
    row = db.fetch(f"""SELECT count(*), sum(CASE WHEN n > 1 THEN 1 ELSE 0 END),
            coalesce(sum(CASE WHEN n > 1 THEN n END), 0), coalesce(max(n), 1)
        FROM (SELECT cid, count(*) AS n FROM {members} GROUP BY cid) z""")[0]
    stats.clusters, stats.multi, stats.records_in_multi, stats.largest = (int(x or 0) for x in row)
    keep = {members, *cuts, *intras}
    for table in sorted(steps.live - keep):
        steps.drop(table)
    return Clustered(stats, members, cuts, intras, sorted(keep))
