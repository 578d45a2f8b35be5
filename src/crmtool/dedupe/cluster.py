"""Clusters: connected components of the match graph, in SQL, with a guard against chaining.

Edges are the scored pairs at or above the threshold (not vetoed, not decided ``no-match``) plus
the pairs a person decided are a ``match``. Components come from label propagation with pointer
jumping (a handful of set-based rounds). The guard then scores *every* pair inside each cluster of
three or more records: a cluster holding a pair that clearly does not match (below ``split_below``,
stopped by the household veto, decided ``no-match``, or below the review band with birth dates that
clearly differ and nothing but the names for it) is split around its best-connected record,
and the cut pairs go to review; a cluster larger than ``max_cluster_size`` is dissolved and sent to review.

One code path on every engine: :func:`cluster_steps` runs the algorithm as named SELECT steps on a
:class:`~crmtool.backend.base.Backend`, the workspace's DuckDB (:func:`cluster_in_workspace`, the
default) or Spark (:mod:`crmtool.dedupe.on_spark`). Tables are versioned by name (``<prefix>edges1``,
...) rather than updated (Spark has no UPDATE or DELETE), and each step's input is dropped as soon as
the step that replaces it exists. Only the greedy keep of each suspect cluster runs in Python, over
the judged pairs of the suspect clusters (few and small), and goes back as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

    from crmtool.backend.base import Backend
    from crmtool.dedupe.spec import DedupeSpec

#: label propagation rounds at most, per components run
MAX_ROUNDS = 100
#: the guard's turns at most (components, dissolve or split, components again, ...)
GUARD_ROUNDS = 10
#: the cut tables' columns, typed as the workspace keeps them
CUT_COLUMNS = ("CAST(l AS INTEGER) AS l, CAST(r AS INTEGER) AS r, CAST(reason AS VARCHAR) AS reason, "
               "CAST(why AS VARCHAR) AS why, CAST(bad_l AS INTEGER) AS bad_l, CAST(bad_r AS INTEGER) AS bad_r")
#: ``keep_table(name, clusters, members)``: make table ``name(c INTEGER, v INTEGER)`` on the backend
KeepTable = Callable[[str, list[int], list[int]], None]
#: ``score_pairs(pairs, target)``: compare and score the pairs ``(l, r)`` of ``pairs`` into ``target``
ScorePairs = Callable[[str, str], None]


@dataclass
class ClusterStats:
    clusters: int = 0
    multi: int = 0
    records_in_multi: int = 0
    largest: int = 1
    propagation_rounds: int = 0
    split_clusters: int = 0
    dissolved_clusters: int = 0


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


def guard_options(spec: DedupeSpec) -> dict[str, Any]:
    """The options of :func:`cluster_steps` a dedupe section sets."""
    return {"threshold": spec.threshold, "review": spec.review, "max_cluster_size": spec.max_cluster_size,
            "split_below": spec.split_below}


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


def center_sql(ip: str) -> str:
    """Each suspect cluster's best-connected member: the highest sum of its good pairs' probabilities
    (a bad pair counts -1), ties to the lower id. The sum is in DECIMAL: a parallel sum of doubles
    depends on the order the rows arrive in, so two members with the same score could swap between
    reruns."""
    return f"""SELECT c, v AS center FROM (
            SELECT c, v, row_number() OVER (PARTITION BY c ORDER BY score DESC, v) AS k FROM (
                SELECT c, v, sum(CASE WHEN good THEN CAST(p AS DECIMAL(18, 12)) ELSE -1 END) AS score FROM (
                    SELECT c, l AS v, p, good FROM {ip} UNION ALL SELECT c, r, p, good FROM {ip}) u
                WHERE c IN (SELECT c FROM {ip} WHERE bad) GROUP BY c, v) s) t
        WHERE k = 1"""


#: the rows :func:`keep_groups` reads, over the judged pairs ``ip`` and the centres ``center``
KEEP_ROWS_SQL = """SELECT i.c, z.center, i.l, i.r, CASE WHEN i.decided THEN 2.0 ELSE i.p END, i.good, i.bad
        FROM {ip} i
        JOIN {center} z ON z.c = i.c ORDER BY i.c, i.l, i.r"""


def keep_groups(rows: list[tuple[Any, ...]]) -> tuple[list[int], list[int]]:
    """(clusters, members): the members each suspect cluster keeps around its centre, greedily, from
    the rows of :data:`KEEP_ROWS_SQL` (few clusters, few members each). Members join the centre's
    group in order of their probability with the centre, unless they clearly do not match someone
    already in it; a pair decided ``match`` always joins."""
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


def members_sql(records: str, labels: str, scored: str) -> str:
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


class _Steps:
    """The tables of one clustering on ``db``, named ``<prefix><name>``; ``live``: those that exist."""

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

    def replace(self, name: str, select_sql: str, old: str) -> str:
        """Table ``name`` from ``select_sql`` (which reads ``old``), then ``old`` dropped."""
        new = self.make(name, select_sql)
        self.drop(old)
        return new


def components_steps(steps: _Steps, edges: str) -> tuple[int, str]:
    """(rounds, table ``(v, c)``): for every vertex of ``edges(l, r)``, the smallest vertex of its
    component, by label propagation with pointer jumping until no label changes."""
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


class _Guard:
    """One clustering's state on ``steps``: the edges, the scored pairs and those scored since, the cuts."""

    def __init__(self, steps: _Steps, scored: str, score_pairs: ScorePairs, keep_table: KeepTable,
                 threshold: float, review: float, split_below: float) -> None:
        self.steps, self.scored, self.score_pairs, self.keep_table = steps, scored, score_pairs, keep_table
        self.threshold, self.review, self.split_below = threshold, review, split_below
        self.intras: list[str] = []
        self.cuts: list[str] = []
        self.edges = steps.make("edges0", f"""SELECT l, r FROM {scored}
            WHERE (decision = 'match') OR (decision IS NULL AND match_probability >= {threshold} AND NOT vetoed)""")

    def all_scored(self) -> str:
        return "(" + " UNION ALL ".join(f"SELECT * FROM {t}" for t in [self.scored, *self.intras]) + ")"

    def dissolve(self, turn: int, labels: str, sizes: str, max_cluster_size: int) -> None:
        """Clusters over ``max_cluster_size`` dissolved: their edges cut (to review)."""
        steps = self.steps
        self.cuts.append(steps.make(f"cut{len(self.cuts)}", f"""SELECT e.l, e.r, 'oversized_cluster' AS reason,
                'max_cluster_size' AS why, CAST(NULL AS INTEGER) AS bad_l, CAST(NULL AS INTEGER) AS bad_r
            FROM {self.edges} e JOIN {labels} x ON x.v = e.l JOIN {sizes} z ON z.c = x.c
            WHERE z.n > {max_cluster_size}"""))
        self.edges = steps.replace(f"edges{turn}", f"""SELECT e.l, e.r FROM {self.edges} e ANTI JOIN (
                SELECT x.v FROM {labels} x JOIN {sizes} z ON z.c = x.c WHERE z.n > {max_cluster_size}) d
            ON d.v = e.l""", self.edges)

    def judge(self, labels: str, sizes: str) -> tuple[str, int]:
        """(judged pairs ``ip``, clusters holding a bad pair): every pair inside clusters of 3+ records
        judged, those not scored yet scored first."""
        steps = self.steps
        allintra = steps.make("allintra", f"""SELECT a.v AS l, b.v AS r, a.c FROM {labels} a
            JOIN {labels} b ON a.c = b.c AND a.v < b.v WHERE a.c IN (SELECT c FROM {sizes} WHERE n >= 3)""")
        missing = steps.make("missing", f"""SELECT a.l, a.r FROM {allintra} a
            ANTI JOIN {self.all_scored()} k ON k.l = a.l AND k.r = a.r""")
        if steps.count(f"SELECT count(*) FROM {missing}"):
            self.intras.append(f"{steps.p}intra{len(self.intras)}")
            self.score_pairs(missing, self.intras[-1])
            steps.live.add(self.intras[-1])
        ip = steps.make("ip", judge_sql(allintra, self.all_scored(), threshold=self.threshold, review=self.review,
                                        split_below=self.split_below))
        return ip, steps.count(f"SELECT count(DISTINCT c) FROM {ip} WHERE bad")

    def split(self, turn: int, labels: str, ip: str) -> bool:
        """Each suspect cluster split around its best-connected member, the crossing edges cut; False:
        nothing to cut (only decided matches hold the cluster together: decisions win)."""
        steps, p = self.steps, self.steps.p
        center = steps.make("center", center_sql(ip))
        keep_c, keep_v = keep_groups(steps.db.fetch(KEEP_ROWS_SQL.format(ip=ip, center=center)))
        self.keep_table(p + "keep", keep_c, keep_v)
        steps.live.add(p + "keep")
        cross = steps.make("cross", f"""SELECT e.l, e.r, z.c FROM {self.edges} e JOIN {labels} x ON x.v = e.l
                JOIN {center} z ON z.c = x.c
                LEFT JOIN {p}keep kl ON kl.c = z.c AND kl.v = e.l
                LEFT JOIN {p}keep kr ON kr.c = z.c AND kr.v = e.r
            WHERE (kl.v IS NULL) <> (kr.v IS NULL)""")
        if not steps.count(f"SELECT count(*) FROM {cross}"):
            return False
        # each cut names what split its cluster: the cluster's first bad pair and why it is bad
        self.cuts.append(steps.make(f"cut{len(self.cuts)}", f"""SELECT x.l, x.r, 'chaining' AS reason, b.why,
                b.l AS bad_l, b.r AS bad_r FROM {cross} x
            JOIN (SELECT c, l, r, why FROM (SELECT c, l, r, why, row_number() OVER (PARTITION BY c ORDER BY l, r)
                  AS k FROM {ip} WHERE bad) f WHERE k = 1) b ON b.c = x.c"""))
        self.edges = steps.replace(f"edges{turn}", f"""SELECT e.l, e.r FROM {self.edges} e
            ANTI JOIN {cross} x ON x.l = e.l AND x.r = e.r""", self.edges)
        return True


def cluster_steps(
    db: Backend,
    scored: str,
    records: str,
    *,
    threshold: float,
    review: float,
    max_cluster_size: int,
    split_below: float = 0.01,
    score_pairs: ScorePairs,
    keep_table: KeepTable,
    prefix: str = "dd_c_",
) -> Clustered:
    """The clusters of the scored pairs ``scored`` (``l, r, match_probability, vetoed, home_vetoed,
    split_vetoed, decision``) over the records ``records`` (``__rid`` dense 0..n-1), as named SELECT
    steps on ``db``.

    A cluster is split when it holds a pair decided ``no-match``, a pair below ``split_below``, a pair
    the household veto stopped (people sharing a home, no person-level agreement), or a
    ``split_vetoed`` pair below the review band (birth dates that clearly differ, nothing but the
    names for it: :func:`crmtool.dedupe.veto.split_veto_sql`); a pair stopped by a first-name veto
    alone does not split a cluster its records joined through other strong pairs. Each cut names
    the guard that cut it, and for the chaining guard the cluster's first bad pair (``bad_l``,
    ``bad_r``) and why (``no-match``, ``split_below``, ``household``, ``veto``).

    ``score_pairs(pairs, target)`` compares and scores the pairs ``(l, r)`` of ``pairs`` (inside a
    cluster, not made by blocking) into table ``target`` on ``db`` (the scored pairs' columns);
    ``keep_table(name, clusters, members)`` makes table ``name(c INTEGER, v INTEGER)`` on ``db``.
    """
    steps = _Steps(db, prefix)
    stats = ClusterStats()
    guard = _Guard(steps, scored, score_pairs, keep_table, threshold, review, split_below)

    def relabel(old: str) -> str:
        """The components of the guard's edges now (``old``, the labels before, dropped)."""
        if old:
            steps.drop(old)
        rounds, labels = components_steps(steps, guard.edges)
        stats.propagation_rounds += rounds
        return labels

    labels = ""
    for turn in range(1, GUARD_ROUNDS + 1):
        labels = relabel(labels)
        sizes = steps.make("sizes", f"SELECT c, count(*) AS n FROM {labels} GROUP BY c")
        big = steps.count(f"SELECT count(*) FROM {sizes} WHERE n > {max_cluster_size}")
        if big:  # oversized clusters: dissolve, their edges go to review
            stats.dissolved_clusters += big
            guard.dissolve(turn, labels, sizes, max_cluster_size)
            continue
        ip, bad = guard.judge(labels, sizes)
        if not bad:
            break
        stats.split_clusters += bad
        if not guard.split(turn, labels, ip):
            break
    else:  # the rounds ran out right after a dissolve or a split: the labels predate its cuts
        labels = relabel(labels)
    members = steps.make("members", members_sql(records, labels, guard.all_scored()))
    row = db.fetch(f"""SELECT count(*), sum(CASE WHEN n > 1 THEN 1 ELSE 0 END),
            coalesce(sum(CASE WHEN n > 1 THEN n END), 0), coalesce(max(n), 1)
        FROM (SELECT cid, count(*) AS n FROM {members} GROUP BY cid) z""")[0]
    stats.clusters, stats.multi, stats.records_in_multi, stats.largest = (int(x or 0) for x in row)
    keep = {members, *guard.cuts, *guard.intras}
    for table in sorted(steps.live - keep):
        steps.drop(table)
    return Clustered(stats, members, guard.cuts, guard.intras, sorted(keep))


@contextmanager
def keep_view(con: duckdb.DuckDBPyConnection, clusters: list[int], members: list[int]) -> Iterator[str]:
    """The members the guard's greedy keep chose as the view ``__dd_keep_arrow(c INTEGER, v INTEGER)``
    of the workspace while the block runs."""
    import pyarrow as pa

    keep = pa.table({"c": pa.array(clusters, pa.int32()), "v": pa.array(members, pa.int32())})
    con.register("__dd_keep_arrow", keep)
    try:
        yield "__dd_keep_arrow"
    finally:
        con.unregister("__dd_keep_arrow")


def gather(con: duckdb.DuckDBPyConnection, intras: list[str], cuts: list[str], pairs: str) -> None:
    """The workspace tables the later steps read (golden, review, explain): ``__dd_intra``, the rows
    of the tables ``intras`` (none: ``pairs``' columns, no rows), and ``__dd_cut``, those of ``cuts``
    (:data:`CUT_COLUMNS`); the parts are dropped."""
    empty_cut = "(SELECT 0 AS l, 0 AS r, '' AS reason, '' AS why, 0 AS bad_l, 0 AS bad_r) WHERE false"
    for name, tables, columns in (("__dd_intra", intras or [f"{ident(pairs)} LIMIT 0"], "*"),
                                  ("__dd_cut", cuts or [empty_cut], CUT_COLUMNS)):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS "
                    + " UNION ALL ".join(f"SELECT {columns} FROM {t}" for t in tables))
    for table in (*intras, *cuts):
        con.execute(f"DROP TABLE IF EXISTS {ident(table)}")


def cluster_in_workspace(con: duckdb.DuckDBPyConnection, scored: str, records: str, *, score_pairs: ScorePairs,
                         **guard: Any) -> ClusterStats:
    """:func:`cluster_steps` on the workspace's DuckDB (``guard``: its options, :func:`guard_options`):
    ``__dd_members(rid, cid, match_probability)`` for every record in ``rid`` order, and what
    :func:`gather` makes (``__dd_intra``, ``__dd_cut``)."""
    from crmtool.backend.duckdb_backend import DuckDBBackend

    def keep_table(name: str, clusters: list[int], members: list[int]) -> None:
        with keep_view(con, clusters, members) as view:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS SELECT * FROM {view}")

    done = cluster_steps(DuckDBBackend(con), ident(scored), ident(records), score_pairs=score_pairs,
                         keep_table=keep_table, prefix="__dd_c_", **guard)
    con.execute(f"CREATE OR REPLACE TABLE __dd_members AS SELECT * FROM {done.members} ORDER BY rid")
    con.execute(f"DROP TABLE {done.members}")
    gather(con, done.intras, done.cuts, scored)
    return done.stats
