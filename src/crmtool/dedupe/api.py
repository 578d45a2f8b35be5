"""Public API of deduplication: :func:`dedupe` (a table in the workspace) and :func:`explain`.

A run is a pipeline of SQL steps on the workspace's DuckDB: prepare features -> blocking (pair
counts reported first) -> comparison levels -> model (EM or fixed) -> scores -> decisions ->
clusters (with the chaining guard) -> golden records -> outputs and audit entries. What a later
``explain`` or incremental run needs stays in the workspace, in tables prefixed ``dedupe_``:

* ``dedupe_prep``: prepared features of the last run's records;
* ``dedupe_pairs``: every scored pair (levels, weight, probability);
* ``dedupe_model``: the model of each run (JSON);
* ``dedupe_records``: record id -> cluster id and a hash of the row (incremental runs);
* ``dedupe_golden``: the golden records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.backend.base import ENGINES
from crmtool.dedupe.blocking import RuleCount, candidate_pairs
from crmtool.dedupe.cluster import ClusterStats, cluster_in_workspace, guard_options
from crmtool.dedupe.compare import compute_levels
from crmtool.dedupe.decisions import decision_table
from crmtool.dedupe.explain import ComparisonExplained, Explanation, explain
from crmtool.dedupe.health import ModelCheck, check_model
from crmtool.dedupe.model import Model, estimate, score_sql
from crmtool.dedupe.prepare import Prepared, prepare
from crmtool.dedupe.record import audit_merges, keep_for_next_run, record_metrics
from crmtool.dedupe.review import DEFAULT_LIMIT, ReviewSummary, build_review, ordered_sql, summarise
from crmtool.dedupe.spec import DedupeSpec
from crmtool.dedupe.survivorship import golden_query
from crmtool.dedupe.tables import CUTS, GOLDEN, MODEL, PAIRS, PREP, RECORDS
from crmtool.dedupe.veto import split_veto_sql, veto_parts, veto_sql
from crmtool.errors import UsageError
from crmtool.progress import Progress
from crmtool.sqltext import ident
from crmtool.status import Status
from crmtool.timing import Laps

if TYPE_CHECKING:
    import duckdb

    from crmtool.io.writers import OutputOptions
    from crmtool.workspace import Workspace

__all__ = ["ComparisonExplained", "DedupeResult", "Explanation", "dedupe", "explain"]


@dataclass
class DedupeResult:
    run_id: str
    rows: int
    candidate_pairs: int
    blocking: list[RuleCount]
    model: Model
    clusters: ClusterStats
    merges: int
    review_pairs: int
    decisions: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    incremental: bool = False
    fresh_records: int = 0
    audit_head: str = ""
    review: ReviewSummary = field(default_factory=ReviewSummary)
    normalised: list[str] = field(default_factory=list)  # fix rules applied to a work copy first
    model_check: ModelCheck = field(default_factory=lambda: ModelCheck(False, {}))  # crmtool.dedupe.health

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        c = self.clusters
        return {
            "run_id": self.run_id,
            "rows": self.rows,
            "candidate_pairs": self.candidate_pairs,
            "blocking": [b.as_dict() for b in self.blocking],
            "model": {
                "estimate": self.model.estimate,
                "prior": self.model.prior,
                "iterations": self.model.iterations,
                "check": self.model_check.as_dict(),
            },
            "clusters": c.clusters,
            "duplicate_clusters": c.multi,
            "records_in_duplicate_clusters": c.records_in_multi,
            "largest_cluster": c.largest,
            "split_clusters": c.split_clusters,
            "dissolved_clusters": c.dissolved_clusters,
            "merges": self.merges,
            "review_pairs": self.review_pairs,
            "review": self.review.as_dict(),
            "normalised_by": self.normalised,
            "decisions": self.decisions,
            "incremental": self.incremental,
            "fresh_records": self.fresh_records,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "timings": self.timings,
            "warnings": self.warnings,
        }


def _row_hash_sql(alias: str, columns: list[str]) -> str:
    """SQL of the SHA-256 (hex) of the input row ``alias``: its ``columns`` as text joined by U+001F, a
    missing value as U+0000 (an incremental run finds changed rows by it). The same on every engine,
    unlike ``hash()``; a run after one that stored DuckDB's ``hash()`` (a decimal number) matches every
    row again once (:func:`_prepare_records` warns)."""
    parts = ", ".join(f"coalesce(CAST({alias}.{ident(c)} AS VARCHAR), chr(0))" for c in columns)
    return f"sha256(concat_ws(chr(31), {parts}))"


def _previous_model(ws: Workspace, spec: DedupeSpec, incremental: bool,
                    warn: Callable[[str], None]) -> tuple[bool, Model | None]:
    """(incremental, the saved model to reuse): (False, None) when there is no previous run or its model is stale."""
    if not incremental:
        return False, None
    if not (ws.table_exists(RECORDS) and ws.table_exists(MODEL)):
        warn("incremental: no previous dedupe run in this workspace: deduplicating everything")
        return False, None
    prev_model = Model.from_json(
        ws.con.execute(f"SELECT model FROM {MODEL} ORDER BY created_at DESC LIMIT 1").fetchall()[0][0]
    )
    stale = prev_model.stale_for(spec)
    if stale:
        warn(f"incremental: the saved model is stale ({stale}): retraining it and deduplicating "
             "every record")
        return False, None
    return True, prev_model


def _prepare_records(con: duckdb.DuckDBPyConnection, table: str, spec: DedupeSpec,
                     incremental: bool, warn: Callable[[str], None]) -> tuple[Prepared, int]:
    """Features into ``dedupe_prep``, the input rows with their hash into ``__dd_src``; (prepared, fresh rows)."""
    prep = prepare(con, table, spec, PREP)
    idc = ident(spec.id_column)
    join_back = "p.__trow = t.rowid" if prep.row_join else f"p.__id = trim(CAST(t.{idc} AS VARCHAR))"
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_src AS SELECT p.__rid, p.__id,
        {_row_hash_sql("t", columns)} AS __hash,
        t.* FROM {ident(table)} t JOIN {PREP} p ON {join_back}""")
    fresh = prep.rows
    if incremental:  # dedupe_prep.__fresh: the rows that are new or changed since the last run
        old = con.execute(f"SELECT count(*) FROM {RECORDS} WHERE length(row_hash) <> 64").fetchall()[0][0]
        if old:
            warn(f"incremental: the previous run kept {old} row hashes of an older version (DuckDB's hash()): "
                 "those records are matched again this once")
        con.execute(f"ALTER TABLE {PREP} ADD COLUMN __fresh BOOLEAN DEFAULT true")
        con.execute(f"""UPDATE {PREP} SET __fresh = false FROM __dd_src s JOIN {RECORDS} o
            ON o.record_id = s.__id AND o.row_hash = s.__hash WHERE {PREP}.__rid = s.__rid""")
        fresh = int(con.execute(f"SELECT count(*) FROM {PREP} WHERE __fresh").fetchall()[0][0])
    return prep, fresh


def _keep_previous_clusters(con: duckdb.DuckDBPyConnection) -> None:
    """Previous clusters of unchanged records stand: an edge to their cluster's first record, decided ``match``."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_keep AS
        SELECT least(p.__rid, first_rid) AS l, greatest(p.__rid, first_rid) AS r FROM (
            SELECT p.__rid, o.cluster_id, min(p.__rid) OVER (PARTITION BY o.cluster_id) AS first_rid
            FROM {PREP} p JOIN {RECORDS} o ON o.record_id = p.__id WHERE NOT p.__fresh) p
        WHERE p.__rid <> first_rid""")
    con.execute(
        "INSERT INTO __dd_dec SELECT k.l, k.r, 'match' FROM __dd_keep k "
        "ANTI JOIN __dd_dec d ON d.l = k.l AND d.r = k.r"
    )
    con.execute("""INSERT INTO __dd_pairs SELECT k.l, k.r, -2, 0 FROM __dd_keep k
        ANTI JOIN __dd_pairs p ON p.l = k.l AND p.r = k.r""")


def _decided_pairs(con: duckdb.DuckDBPyConnection, decisions: Path | None,
                   warn: Callable[[str], None]) -> dict[str, int]:
    """The pairs a person decided into ``__dd_dec`` (empty without a file); what was read."""
    if decisions is not None:
        return decision_table(con, decisions, warn)
    con.execute("CREATE OR REPLACE TEMP TABLE __dd_dec (l INTEGER, r INTEGER, decision VARCHAR)")
    return {}


def _candidate_pairs(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec, decisions: Path | None,
                     incremental: bool, warn: Callable[[str], None]) -> tuple[list[RuleCount], dict[str, int], int]:
    """Blocking into ``__dd_pairs`` plus every decided pair; (pairs per blocking rule, decisions read, pairs)."""
    from crmtool.backend.duckdb_backend import DuckDBBackend

    counts = candidate_pairs(DuckDBBackend(con), prep, spec, "__dd_pairs", warn=warn, fresh_only=incremental)
    dec_stats = _decided_pairs(con, decisions, warn)
    # decided pairs are scored (and explained) even when blocking did not make them
    con.execute("""INSERT INTO __dd_pairs SELECT d.l, d.r, -1, 0 FROM __dd_dec d
        ANTI JOIN __dd_pairs p ON p.l = d.l AND p.r = d.r""")
    if incremental:
        _keep_previous_clusters(con)
    n_pairs = int(con.execute("SELECT count(*) FROM __dd_pairs").fetchall()[0][0])
    return counts, dec_stats, n_pairs


class _Scoring:
    """How this run scores pairs (model weight and probability, vetoes, decisions) as SQL over comparison levels."""

    def __init__(self, con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec, model: Model) -> None:
        self.con, self.prep, self.spec = con, prep, spec
        self.tf_cols = {i: f"tf{i}" for i, c in enumerate(spec.comparisons) if c.name in prep.tf}
        tf = self.tf_cols
        self.gcols = ", ".join(f"g{i}" for i in range(len(spec.comparisons)))
        self.scoring = score_sql(model, tf)
        self.veto = veto_sql(spec, model, tf)
        self.home_veto = " OR ".join(sql for label, sql in veto_parts(spec, model, tf) if label.startswith("household"))
        self.split_veto = split_veto_sql(spec, model, tf)
        self.tfsel = "".join(f", q.{t}" for t in tf.values())

    def select_sql(self, levels: str, decided: str = "__dd_dec") -> str:
        """SELECT scoring the pairs of ``levels`` (their decision joined from ``decided``): a named
        step on any backend."""
        return f"""SELECT q.l, q.r, q.rule, {self.gcols}{self.tfsel}, {self.scoring}, ({self.veto}) AS vetoed,
                   ({self.home_veto or "false"}) AS home_vetoed, ({self.split_veto}) AS split_vetoed, d.decision
            FROM {levels} q LEFT JOIN {decided} d ON d.l = q.l AND d.r = q.r"""

    def score_into(self, levels: str, target: str, temp: bool) -> None:
        """Score the pairs of ``levels`` into ``target`` (their decision joined from ``__dd_dec``)."""
        self.con.execute(f"""CREATE OR REPLACE {"TEMP " if temp else ""}TABLE {target} AS {self.select_sql(levels)}""")

    def score_pairs(self, pairs: str, target: str) -> None:
        """Compare and score the pairs ``(l, r)`` of ``pairs`` (blocking did not make them) into ``target``."""
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __dd_xp AS SELECT l, r, CAST(-3 AS SMALLINT) AS rule, "
            f"CAST(0 AS BIGINT) AS rules FROM {pairs}"
        )
        compute_levels(con, self.prep, self.spec, "__dd_xp", "__dd_xl", temp=True)
        self.score_into("__dd_xl", target, True)
        con.execute("DROP TABLE IF EXISTS __dd_xp; DROP TABLE IF EXISTS __dd_xl")


def _scored_pairs(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec, decisions: Path | None,
                  incremental: bool, prev_model: Model | None, engine: str, spark_master: str | None,
                  warn: Callable[[str], None], step: Callable[[str], None],
                  lap: Callable[[str], object]
                  ) -> tuple[list[RuleCount], dict[str, int], int, Model, _Scoring, ClusterStats | None]:
    """Blocking, comparison levels, the model and the scores into ``PAIRS``, on DuckDB or Spark:
    the blocking counts, the decisions' stats, the number of pairs, the model, its scorer and, on
    Spark, the clusters (made there: :func:`crmtool.dedupe.on_spark.clustered_on_spark`)."""
    if engine == "spark":
        from crmtool.dedupe.on_spark import clustered_on_spark

        dec_stats = _decided_pairs(con, decisions, warn)
        counts, n_pairs, model, stats = clustered_on_spark(
            con, prep, spec, spark_master, warn=warn, step=step, lap=lap,
            score_select=lambda m, levels, decided: _Scoring(con, prep, spec, m).select_sql(levels, decided))
        return counts, dec_stats, n_pairs, model, _Scoring(con, prep, spec, model), stats
    step("blocking")
    counts, dec_stats, n_pairs = _candidate_pairs(con, prep, spec, decisions, incremental, warn)
    lap("blocking")
    step(f"comparing {n_pairs} pairs")
    compute_levels(con, prep, spec, "__dd_pairs", "__dd_levels", temp=True)
    lap("compare")
    step("estimating the model")
    model = prev_model or estimate(con, prep, spec, "__dd_levels")
    lap("model")
    scoring = _Scoring(con, prep, spec, model)
    scoring.score_into("__dd_levels", PAIRS, False)
    con.execute("DROP TABLE IF EXISTS __dd_levels")
    lap("score")
    return counts, dec_stats, n_pairs, model, scoring, None


def _cluster_records(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec,
                     scoring: _Scoring, made: ClusterStats | None = None) -> tuple[ClusterStats, int]:
    """Clusters into ``__dd_members`` (``made``: already there, from Spark) and the matched pairs inside
    them into ``__dd_merged``; (stats, merges)."""
    stats = made if made is not None else cluster_in_workspace(con, PAIRS, prep.table, score_pairs=scoring.score_pairs,
                                                               **guard_options(spec))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_merged AS
        SELECT k.*, m.cid FROM (SELECT * FROM {PAIRS} UNION ALL BY NAME SELECT * FROM __dd_intra) k
        JOIN __dd_members m ON m.rid = k.l JOIN __dd_members m2 ON m2.rid = k.r
        WHERE m.cid = m2.cid AND (k.decision = 'match' OR (k.decision IS NULL AND k.match_probability >=
            {spec.threshold}
              AND NOT k.vetoed))""")
    merges = int(con.execute("SELECT count(*) FROM __dd_merged").fetchall()[0][0])
    return stats, merges


def _golden_records(con: duckdb.DuckDBPyConnection, table: str, spec: DedupeSpec) -> None:
    """The rows with their cluster into ``__dd_gsrc``, one golden record per cluster into ``dedupe_golden``."""
    columns = [c for c in (r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()) if c != "_row"]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_gsrc AS SELECT s.*, c.__id AS __cid, z.n AS __n FROM __dd_src s
        JOIN __dd_members m ON m.rid = s.__rid JOIN {PREP} c ON c.__rid = m.cid
        JOIN (SELECT cid, count(*) AS n FROM __dd_members GROUP BY cid) z ON z.cid = m.cid""")
    con.execute(f"CREATE OR REPLACE TABLE {GOLDEN} AS {golden_query(spec, '__dd_gsrc', columns)}")


def _review_pairs(con: duckdb.DuckDBPyConnection, spec: DedupeSpec, model: Model, tf_cols: dict[int, str],
                  review_limit: int) -> tuple[ReviewSummary, str]:
    """Pairs to review into ``__dd_review``, the guard's cuts into ``dedupe_cuts``; (summary, review file query)."""
    # review: the band, vetoed pairs, and pairs the chaining guard cut; decided pairs never come back
    first = "(reason, why, coalesce(bad_l, -1), coalesce(bad_r, -1))"  # one cut per pair, the same on every rerun
    con.execute(f"""CREATE OR REPLACE TABLE {CUTS} AS SELECT l, r, min(reason) AS reason, arg_min(why, {first}) AS why,
        arg_min(bad_l, {first}) AS bad_l, arg_min(bad_r, {first}) AS bad_r FROM __dd_cut GROUP BY l, r""")
    build_review(con, spec, model, tf_cols, f"(SELECT * FROM {PAIRS} UNION ALL BY NAME SELECT * FROM __dd_intra)",
                 CUTS, "__dd_members", "__dd_review")
    review = summarise(con, "__dd_review", review_limit)
    compared = list(dict.fromkeys(c.column for c in spec.comparisons))
    side = ", ".join(
        f"a.{ident(c)} AS {ident(c + '_l')}, b.{ident(c)} AS {ident(c + '_r')}" for c in compared
    )
    review_query = f"""SELECT v.rank, g.__id AS cluster, a.__id AS id_l, b.__id AS id_r,
            round(v.match_probability, 6) AS match_probability, round(v.match_weight, 4) AS match_weight,
            round(v.value, 4) AS value, v.reason, v.reasons AS top_reasons, {side},
            CAST(NULL AS VARCHAR) AS decision
        FROM ({ordered_sql("__dd_review")}) v JOIN __dd_src a ON a.__rid = v.l JOIN __dd_src b ON b.__rid = v.r
        JOIN {PREP} g ON g.__rid = v.cluster
        WHERE v.rank <= {int(review_limit)} ORDER BY v.rank"""
    return review, review_query


def _write_outputs(con: duckdb.DuckDBPyConnection, out_dir: Path, fmt: str, output: OutputOptions | None,
                   review_query: str) -> dict[str, Path]:
    """Write clusters, golden records and the review file to ``out_dir``; kind -> path."""
    from crmtool.io.writers import write_query

    clusters_query = f"""SELECT p.__id AS record_id, c.__id AS cluster_id, round(m.match_probability, 6)
            AS match_probability FROM __dd_members m JOIN {PREP} p ON p.__rid = m.rid
        JOIN {PREP} c ON c.__rid = m.cid ORDER BY p.__id"""
    outputs: dict[str, Path] = {}
    for name, query in (
        ("clusters", clusters_query),
        ("golden", f"SELECT * FROM {GOLDEN}"),
        ("review", review_query),
    ):
        outputs[name] = out_dir / f"{name}.{fmt}"
        write_query(con, query, outputs[name], fmt, options=output)
    return outputs


def _write_outputs_together(con: duckdb.DuckDBPyConnection, out_dir: Path, fmt: str, output: OutputOptions | None,
                            review_query: str) -> dict[str, Path]:
    """:func:`_write_outputs` into a staging folder of ``out_dir``, then every file moved into place: a
    failure while writing leaves the previous clusters, golden and review files together."""
    from crmtool.io.stage import staged

    with staged(out_dir) as stage:
        written = {kind: out_dir / path.name for kind, path in _write_outputs(con, stage.path, fmt, output,
                                                                               review_query).items()}
        stage.publish(written.values())
    return written


#: the run's working tables, dropped at its end
RUN_TABLES = ("__dd_src", "__dd_gsrc", "__dd_members", "__dd_merged", "__dd_review", "__dd_cut", "__dd_intra",
              "__dd_pairs", "__dd_dec", "__dd_keep")


def dedupe(
    ws: Workspace,
    table: str,
    spec: DedupeSpec,
    out_dir: Path | None,
    *,
    fmt: str = "csv",
    decisions: Path | None = None,
    audit_log: Path | None = None,
    incremental: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    run_command: str = "dedupe",
    output: OutputOptions | None = None,
    review_limit: int = DEFAULT_LIMIT,
    normalised_by: tuple[str, ...] = (),
    staged_in: Path | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> DedupeResult:
    """Deduplicate ``table`` of the workspace by ``spec``; write clusters, golden and review to ``out_dir``.

    ``engine="spark"``: blocking, comparison levels, the model's counts, the scoring and the clusters
    run on Spark (``spark_master``, else ``SPARK_REMOTE``, else local[2]); ``dedupe_pairs`` then keeps
    the pairs decided or at or above the review band; see :mod:`crmtool.dedupe.on_spark`.

    ``output`` says how the CSV files look (delimiter, decimal comma, encoding; see io.writers).

    ``decisions``: a file of pairs (``id_l, id_r, decision`` = match | no-match), always honoured.
    ``review_limit``: pairs written to the review file (best first); the rest are counted in the result.
    ``incremental``: match only new or changed rows against the records of the previous run
    (kept in the workspace) with the previous model; unchanged records keep their clusters.
    With ``out_dir`` None nothing is written (the tables stay in the workspace).
    ``staged_in``: write the files into this folder under the names they get in ``out_dir``; the
    caller (``clean``) moves them into place once its whole run succeeded, and registers them.
    """
    con = ws.con
    warnings: list[str] = []

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    def step(name: str) -> None:
        if progress:
            progress(name)

    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, expected a folder")
    if engine not in ENGINES:
        raise UsageError(f"engine must be duckdb or spark, not {engine!r}")
    if engine == "spark":
        from crmtool.dedupe.on_spark import refuse_unported

        refuse_unported(spec, incremental=incremental)  # before a run is started or a JVM for nothing
    run = ws.start_run(run_command)
    laps = Laps(digits=3)
    lap = laps.lap

    step("preparing records")
    incremental, prev_model = _previous_model(ws, spec, incremental, _warn)
    prep, fresh = _prepare_records(con, table, spec, incremental, _warn)
    lap("prepare")
    counts, dec_stats, n_pairs, model, scoring, made = _scored_pairs(
        con, prep, spec, decisions, incremental, prev_model, engine, spark_master, _warn, step, lap)
    model_check = check_model(model, spec)
    if model_check.degenerate:
        _warn(model_check.warning())
    if made is None:  # on Spark the clusters were made there (and said so)
        step("clustering")
    stats, merges = _cluster_records(con, prep, spec, scoring, made)
    lap("cluster")
    step("golden records")
    _golden_records(con, table, spec)
    lap("golden")
    review, review_query = _review_pairs(con, spec, model, scoring.tf_cols, review_limit)
    outputs: dict[str, Path] = {}
    if out_dir is not None:
        step("writing outputs")
        if staged_in is not None:
            written = _write_outputs(con, staged_in, fmt, output, review_query)
        else:
            written = _write_outputs_together(con, out_dir, fmt, output, review_query)
        outputs = {kind: out_dir / path.name for kind, path in written.items()}
    lap("write")
    keep_for_next_run(con, run.run_id, model)
    result = DedupeResult(run.run_id, prep.rows, n_pairs, counts, model, stats, merges, review.pairs, dec_stats,
                          outputs, laps.timings, warnings, incremental, fresh, review=review,
                          normalised=list(normalised_by), model_check=model_check)
    if audit_log is not None or out_dir is not None:
        step("audit log")
        from crmtool.audit import log_dir

        result.audit_head = audit_merges(ws, spec, result, log_dir(ws, out_dir, audit_log))
    lap("audit")
    for t in RUN_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    record_metrics(run.step, result, files=staged_in is None)
    ws.finish_run(run, "pass", 0, result.as_dict())
    return result
