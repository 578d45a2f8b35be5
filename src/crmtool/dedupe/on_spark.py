"""Dedupe's pair work on Apache Spark: blocking, comparison levels, the model's counts and the
scoring run there as named SELECT steps through :class:`~crmtool.backend.spark_backend.SparkBackend`.

The clusters are made there too, by the steps DuckDB runs (:func:`crmtool.dedupe.cluster.cluster_steps`:
connected components, oversized clusters dissolved, the chaining guard with its intra-cluster pairs
compared and scored there; only the greedy keep of the few suspect clusters runs here and goes back
as a table).

What stays in the workspace in this slice: reading the input, the preparation (normalised names,
phones and e-mails: DuckDB SQL with Python once per distinct value for phonetic keys), the pairs a
person decided, and what follows the clusters (golden records, review, outputs, audit). The
prepared records and the decided pairs go to Spark as Parquet; what comes back, as Parquet parts
read through :mod:`crmtool.io.gate`: every record's cluster (``__dd_members``), the guard's cuts, and
of the scored pairs (``dedupe_pairs``, and the guard's intra-cluster pairs) those decided or at or
above the review band: the review file, the audit's merges and ``explain``'s verdicts read no
others (see :data:`KEPT_PAIRS`). Spark 4.0 has no Jaro-Winkler: it is mapped in Python once per
distinct pair of values (:mod:`crmtool.dedupe.similarity`, DuckDB's value to the last bit); Spark's
``levenshtein`` counts code points as DuckDB's does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.dedupe.blocking import RuleCount, candidate_pairs
from crmtool.dedupe.compare import conditions
from crmtool.dedupe.prepare import Prepared
from crmtool.dedupe.similarity import jaro_winkler_of_pair, pair_value_sql
from crmtool.dedupe.spec import DedupeSpec
from crmtool.errors import ConfigError, UsageError
from crmtool.io.stage import private_scratch
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

    from crmtool.backend.spark_backend import SparkBackend
    from crmtool.dedupe.cluster import ClusterStats
    from crmtool.dedupe.model import Model
    from crmtool.errors import Location

#: comparison methods whose SQL has no Spark form yet (list functions)
UNPORTED_METHODS = ("token_set",)
#: the tables staged on Spark
PREP, DECIDED = "dd_prep", "dd_dec"
_JW = re.compile(r"jaro_winkler_similarity\(([^(),]+), ([^(),]+)\)")
#: the scored pairs that come back from Spark: decided, or at or above the review band (a pair in
#: the review file, a merge, a cut edge, an ``explain`` neighbour worth reading); ``{review}``
KEPT_PAIRS = "decision IS NOT NULL OR match_probability >= {review}"


def unported_problems(spec: DedupeSpec) -> list[tuple[Location, str]]:
    """Parts of the dedupe section that cannot run on Spark yet, each with its place."""
    return [(c.loc, f"dedupe: comparison '{c.name}': method {c.method} does not run on Spark yet")
            for c in spec.comparisons if c.method in UNPORTED_METHODS]


def refuse_unported(spec: DedupeSpec, *, incremental: bool) -> None:
    """Raise (exit 2) for what does not run on Spark yet, before a JVM is started for nothing."""
    if incremental:
        raise UsageError("dedupe --incremental does not run on Spark yet",
                         "leave --engine out to run it on DuckDB (the default)")
    problems = unported_problems(spec)
    if problems:
        raise ConfigError(problems, "run this dedupe section on --engine duckdb (the default)")


def levels_select(prep: Prepared, spec: DedupeSpec, pairs: str, source: str, sims: str) -> tuple[str, str]:
    """(SELECT of ``pairs`` with the level ``g<i>`` of every comparison and the tf columns, SELECT of
    the distinct pair values whose Jaro-Winkler the levels read from table ``sims``).

    The conditions are the DuckDB engine's (:func:`crmtool.dedupe.compare.conditions`); each
    ``jaro_winkler_similarity(a, b)`` in them becomes a column of ``sims`` joined on the pair's value."""
    calls: dict[tuple[str, str], int] = {}

    def column(m: re.Match[str]) -> str:
        k = calls.setdefault((m.group(1), m.group(2)), len(calls))
        return f"jw{k}.s"

    levels = []
    for i, c in enumerate(spec.comparisons):
        null, conds = conditions(c, prep)
        whens = " ".join(f"WHEN {_JW.sub(column, cond)} THEN {k}" for k, cond in enumerate(conds))
        levels.append(f"CAST(CASE WHEN {null} THEN NULL {whens} ELSE {len(conds)} END AS TINYINT) AS g{i}")
    tf = "".join(f", l.{prep.tf[c.name]} AS tf{i}" for i, c in enumerate(spec.comparisons) if c.name in prep.tf)
    joins = f"FROM {pairs} q JOIN {source} l ON l.__rid = q.l JOIN {source} r ON r.__rid = q.r"
    sim_joins = "".join(f" LEFT JOIN {sims} jw{k} ON jw{k}.value = {pair_value_sql(a, b)}"
                        for (a, b), k in calls.items())
    select = f"SELECT q.*, {', '.join(levels)}{tf} {joins}{sim_joins}"
    values = " UNION ".join(f"SELECT {pair_value_sql(a, b)} AS v {joins}" for a, b in calls)
    return select, (f"SELECT v FROM ({values}) u WHERE v IS NOT NULL" if calls else "")


@dataclass
class SparkPairs:
    """The prepared records (and decided pairs) staged on a Spark session, and the steps run there."""

    spark: SparkBackend
    con: duckdb.DuckDBPyConnection
    prep: Prepared
    spec: DedupeSpec
    tmp: Path
    made: list[str] = field(default_factory=list)
    #: the scoring step, ``score_select(model, levels, decided)``, once the model is known
    score_select: Callable[[Model, str, str], str] | None = None
    model: Model | None = None

    def stage(self, select_sql: str, name: str) -> None:
        from crmtool.backend.duckdb_backend import DuckDBBackend

        path = self.tmp / f"{name}-{len(self.made)}.parquet"  # a table staged again gets a new file
        DuckDBBackend(self.con).write_parquet(select_sql, path)
        self.spark.read_parquet(path, name)
        self.made.append(name)

    def _create(self, name: str, select_sql: str) -> None:
        self.spark.create_table(name, select_sql, keep=True)
        self.made.append(name)

    def candidate_pairs(self, decided: str, warn: Callable[[str], None]) -> tuple[list[RuleCount], int]:
        """Blocking into ``dd_pairs`` plus the decided pairs of the workspace table ``decided`` (staged
        as :data:`DECIDED`); (pairs per blocking rule, pairs)."""
        self.stage(f"SELECT * FROM {ident(decided)}", DECIDED)
        counts = candidate_pairs(self.spark, self.prep, self.spec, "dd_blocked", warn=warn, source=PREP)
        self.made.append("dd_blocked")
        self._create("dd_pairs", f"""SELECT * FROM dd_blocked UNION ALL
            SELECT d.l, d.r, CAST(-1 AS SMALLINT) AS rule, CAST(0 AS BIGINT) AS rules FROM {DECIDED} d
            ANTI JOIN dd_blocked p ON p.l = d.l AND p.r = d.r""")
        return counts, int(self.spark.fetch("SELECT count(*) FROM dd_pairs")[0][0])

    def levels(self, pairs: str, out: str) -> None:
        """``out``: ``pairs`` with every comparison's level (Jaro-Winkler once per distinct value pair)."""
        sims = f"{out}_jw"
        select, values = levels_select(self.prep, self.spec, pairs, PREP, sims)
        if values:
            self.spark.map_values(sims, values, jaro_winkler_of_pair, [("s", "DOUBLE")])
            self.made.append(sims)
        self._create(out, select)

    def estimate(self) -> Model:
        """The model from counts made on Spark: u over the random pairs, EM over the level patterns."""
        from crmtool.dedupe.model import (
            estimate_from,
            fixed_model,
            patterns_sql,
            u_from_counts,
            u_level_counts_sql,
            u_pairs_sql,
        )

        if self.spec.model.estimate == "fixed":
            return fixed_model(self.spec)
        self._create("dd_upairs", u_pairs_sql(self.prep.rows, self.spec, "spark"))
        self.levels("dd_upairs", "dd_ulevels")
        counts = [{int(k): int(v) for k, v in self.spark.fetch(u_level_counts_sql("dd_ulevels", i))}
                  for i in range(len(self.spec.comparisons))]
        rows = self.spark.fetch(patterns_sql("dd_levels", len(self.spec.comparisons)))
        return estimate_from(u_from_counts(self.spec, counts), rows, self.prep, self.spec)

    def score(self, model: Model, score_select: Callable[[Model, str, str], str]) -> None:
        """Every candidate pair scored into ``dd_scored`` (on Spark)."""
        self.model, self.score_select = model, score_select
        self._create("dd_scored", score_select(model, "dd_levels", DECIDED))

    def score_extra(self, pairs: str, target: str) -> None:
        """Compare and score the pairs ``(l, r)`` of ``pairs`` (the chaining guard's, which blocking did
        not make) into ``target``, as :meth:`score` does."""
        assert self.model is not None and self.score_select is not None, "score() first"
        self._create(f"{target}_q", f"SELECT l, r, CAST(-3 AS SMALLINT) AS rule, CAST(0 AS BIGINT) AS rules "
                                    f"FROM {pairs}")
        self.levels(f"{target}_q", f"{target}_lv")
        self._create(target, self.score_select(self.model, f"{target}_lv", DECIDED))

    def keep_table(self, name: str, clusters: list[int], members: list[int]) -> None:
        """Table ``name(c, v)`` on Spark: the members the guard's greedy keep chose (few)."""
        from crmtool.dedupe.cluster import keep_view

        with keep_view(self.con, clusters, members) as view:
            self.stage(f"SELECT * FROM {view}", name)

    def cluster(self) -> ClusterStats:
        """The clusters of ``dd_scored`` on Spark; into the workspace: ``__dd_members`` (every record),
        ``__dd_cut``, and of the scored pairs (``dedupe_pairs``) and the guard's (``__dd_intra``) the
        :data:`KEPT_PAIRS`."""
        from crmtool.backend.on_spark import pull
        from crmtool.dedupe.cluster import CUT_COLUMNS, cluster_steps, gather, guard_options
        from crmtool.dedupe.tables import PAIRS

        spec = self.spec
        done = cluster_steps(self.spark, "dd_scored", PREP, score_pairs=self.score_extra, keep_table=self.keep_table,
                             **guard_options(spec))
        self.made.extend(done.made)
        kept = KEPT_PAIRS.format(review=float(spec.review))
        self.pull_scores(f"SELECT * FROM dd_scored WHERE {kept}", PAIRS, temp=False)
        members = "CAST(rid AS INTEGER) AS rid, CAST(cid AS INTEGER) AS cid, CAST(match_probability AS DOUBLE) " \
                  "AS match_probability"
        pull(self.spark, self.con, f"SELECT * FROM {done.members}", self.tmp / "members", "__dd_members", members,
             temp=False, order="rid")
        for k, table in enumerate(done.intras):
            self.pull_scores(f"SELECT * FROM {table} WHERE {kept}", f"__dd_intra{k}", temp=True)
        for k, table in enumerate(done.cuts):
            pull(self.spark, self.con, f"SELECT * FROM {table}", self.tmp / table, f"__dd_cut{k}", CUT_COLUMNS)
        gather(self.con, [f"__dd_intra{k}" for k in range(len(done.intras))],
               [f"__dd_cut{k}" for k in range(len(done.cuts))], PAIRS)
        return done.stats

    def pull_scores(self, select_sql: str, target: str, *, temp: bool) -> None:
        """The scored pairs (``select_sql`` on Spark) into the workspace table ``target``, typed as the
        DuckDB engine makes them."""
        from crmtool.backend.on_spark import pull

        n = len(self.spec.comparisons)
        typed = ["CAST(l AS INTEGER) AS l", "CAST(r AS INTEGER) AS r", "CAST(rule AS SMALLINT) AS rule",
                 *(f"CAST(g{i} AS TINYINT) AS g{i}" for i in range(n)),
                 *(f"CAST(tf{i} AS DOUBLE) AS tf{i}" for i, c in enumerate(self.spec.comparisons)
                   if c.name in self.prep.tf),
                 "match_weight", "match_probability", "vetoed", "home_vetoed", "split_vetoed", "decision"]
        pull(self.spark, self.con, f"SELECT * FROM ({select_sql}) s", self.tmp / target, "__dd_scored")
        try:
            self.con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {ident(target)} AS "
                             f"SELECT {', '.join(typed)} FROM __dd_scored ORDER BY l, r")
        finally:
            self.con.execute("DROP TABLE IF EXISTS __dd_scored")

    def drop(self) -> None:
        for name in reversed(self.made):
            self.spark.drop_table(name)


def clustered_on_spark(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec, spark_master: str | None,
                       *, warn: Callable[[str], None], step: Callable[[str], None], lap: Callable[[str], object],
                       score_select: Callable[[Model, str, str], str]
                       ) -> tuple[list[RuleCount], int, Model, ClusterStats]:
    """Blocking, levels, the model, the scores and the clusters on Spark; into the workspace what
    :meth:`SparkPairs.cluster` brings back. The decided pairs are the workspace's ``__dd_dec``;
    ``score_select(model, levels, decided)`` is the scoring step (the DuckDB engine's). (pairs per
    blocking rule, pairs, model, cluster stats)."""
    step("starting Spark")
    with pairs_on_spark(con, prep, spec, spark_master) as work:
        step("blocking")
        counts, n_pairs = work.candidate_pairs("__dd_dec", warn)
        lap("blocking")
        step(f"comparing {n_pairs} pairs")
        work.levels("dd_pairs", "dd_levels")
        lap("compare")
        step("estimating the model")
        model = work.estimate()
        lap("model")
        work.score(model, score_select)
        lap("score")
        step("clustering")
        stats = work.cluster()
    return counts, n_pairs, model, stats


@contextmanager
def pairs_on_spark(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec,
                   spark_master: str | None) -> Iterator[SparkPairs]:
    """A Spark session with the prepared table ``prep`` staged as :data:`PREP`; the tables made there
    and the private folder of what travels are gone when the block ends."""
    from crmtool.backend.spark_backend import SparkBackend

    spark = SparkBackend.start(spark_master)
    try:
        with private_scratch() as tmp:
            work = SparkPairs(spark, con, prep, spec, Path(tmp))
            try:
                work.stage(f"SELECT * FROM {ident(prep.table)}", PREP)
                yield work
            finally:
                work.drop()
    finally:
        spark.close()

