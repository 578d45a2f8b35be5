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

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from crmtool.dedupe.blocking import RuleCount, candidate_pairs
from crmtool.dedupe.cluster import ClusterStats, cluster
from crmtool.dedupe.compare import compute_levels
from crmtool.dedupe.explain import ComparisonExplained, Explanation, explain
from crmtool.dedupe.model import Model, estimate, score_sql
from crmtool.dedupe.prepare import prepare
from crmtool.dedupe.review import DEFAULT_LIMIT, ReviewSummary, build_review, ordered_sql, summarise
from crmtool.dedupe.spec import DedupeSpec
from crmtool.dedupe.survivorship import golden_query
from crmtool.dedupe.veto import veto_parts, veto_sql
from crmtool.errors import InputError, UsageError
from crmtool.progress import Progress
from crmtool.sqltext import ident, sql_str
from crmtool.timing import Laps

if TYPE_CHECKING:
    import duckdb

    from crmtool.io.readers import ReadOptions
    from crmtool.io.writers import OutputOptions
    from crmtool.ruleset import RuleSet
    from crmtool.steps import Step
    from crmtool.workspace import Workspace

PREP, PAIRS, MODEL, RECORDS, GOLDEN, CUTS = (
    "dedupe_prep",
    "dedupe_pairs",
    "dedupe_model",
    "dedupe_records",
    "dedupe_golden",
    "dedupe_cuts",
)
__all__ = ["ComparisonExplained", "DedupeResult", "Explanation", "dedupe", "dedupe_file", "explain", "suggest_file"]
MATCH_WORDS = ("match", "yes", "y", "si", "sí", "same", "1", "true", "merge")
NO_MATCH_WORDS = (
    "no-match",
    "no_match",
    "nomatch",
    "no",
    "n",
    "different",
    "0",
    "false",
    "split",
    "distinct",
)


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


def _decision_table(
    con: duckdb.DuckDBPyConnection, path: Path, warn: Callable[[str], None]
) -> dict[str, int]:
    """Load a decisions file into ``__dd_dec(l, r, decision)`` (record ordinals, l < r)."""
    from crmtool.io.readers import load_file

    load_file(con, path, "__dd_decfile")
    cols = {c[0].lower(): c[0] for c in con.execute("DESCRIBE __dd_decfile").fetchall()}
    pick = [
        next((cols[c] for c in names if c in cols), None)
        for names in (
            ("id_l", "record_id_l", "id_1", "record_a", "left_id"),
            ("id_r", "record_id_r", "id_2", "record_b", "right_id"),
            ("decision",),
        )
    ]
    if None in pick:
        raise InputError(
            f"{path}: a decisions file needs columns id_l, id_r and decision",
            "fill the 'decision' column of review.csv with match or no-match and pass it back",
        )
    a, b, d = (ident(x or "") for x in pick)
    norm = f"lower(trim(CAST({d} AS VARCHAR)))"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_dec0 AS SELECT trim(CAST({a} AS VARCHAR)) AS a,
            trim(CAST({b} AS VARCHAR)) AS b,
            CASE WHEN {norm} IN ({", ".join(sql_str(x) for x in MATCH_WORDS)}) THEN 'match'
                 WHEN {norm} IN ({", ".join(sql_str(x) for x in NO_MATCH_WORDS)}) THEN 'no-match' END AS
                     decision,
            {norm} AS raw FROM __dd_decfile""")
    unknown_word = con.execute(
        "SELECT count(*) FROM __dd_dec0 WHERE decision IS NULL AND raw <> ''"
    ).fetchall()[0][0]
    if unknown_word:
        warn(f"decisions: {unknown_word} rows have a decision other than match / no-match: ignored")
    # the last line about a pair wins (a later decision overrides an earlier one)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_dec AS
        SELECT least(pa.__rid, pb.__rid) AS l, greatest(pa.__rid, pb.__rid) AS r,
               last(d.decision ORDER BY d.__row) AS decision
        FROM (SELECT *, row_number() OVER () AS __row FROM __dd_dec0 WHERE decision IS NOT NULL) d
        JOIN {PREP} pa ON pa.__id = d.a JOIN {PREP} pb ON pb.__id = d.b WHERE pa.__rid <> pb.__rid GROUP
            BY ALL""")
    total = con.execute("SELECT count(*) FROM __dd_dec0 WHERE decision IS NOT NULL").fetchall()[0][0]
    used = dict(con.execute("SELECT decision, count(*) FROM __dd_dec GROUP BY decision").fetchall())
    missing = int(total) - sum(used.values())
    if missing > 0:
        warn(f"decisions: {missing} decided pairs name ids that are not in this data: ignored")
    con.execute("DROP TABLE IF EXISTS __dd_decfile; DROP TABLE IF EXISTS __dd_dec0")
    return {
        "match": int(used.get("match", 0)),
        "no_match": int(used.get("no-match", 0)),
        "unknown_ids": max(missing, 0),
    }


def _label_sql(spec: DedupeSpec, i: int) -> str:
    labels = spec.comparisons[i].levels
    return "CASE g{} {} END".format(
        i, " ".join(f"WHEN {k} THEN {sql_str(x)}" for k, x in enumerate(labels))
    )


def _row_hash_sql(alias: str) -> str:
    return f"CAST(hash({alias}) AS VARCHAR)"


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
) -> DedupeResult:
    """Deduplicate ``table`` of the workspace by ``spec``; write clusters, golden and review to ``out_dir``.

    ``output`` says how the CSV files look (delimiter, decimal comma, encoding; see io.writers).

    ``decisions``: a file of pairs (``id_l, id_r, decision`` = match | no-match), always honoured.
    ``review_limit``: pairs written to the review file (best first); the rest are counted in the result.
    ``incremental``: match only new or changed rows against the records of the previous run
    (kept in the workspace) with the previous model; unchanged records keep their clusters.
    With ``out_dir`` None nothing is written (the tables stay in the workspace).
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
    run = ws.start_run(run_command)
    laps = Laps(digits=3)
    lap = laps.lap
    timings = laps.timings

    step("preparing records")
    prev_model = None
    if incremental:
        if not (ws.table_exists(RECORDS) and ws.table_exists(MODEL)):
            _warn("incremental: no previous dedupe run in this workspace: deduplicating everything")
            incremental = False
        else:
            prev_model = Model.from_json(
                con.execute(f"SELECT model FROM {MODEL} ORDER BY created_at DESC LIMIT 1").fetchall()[0][0]
            )
            stale = prev_model.stale_for(spec)
            if stale:
                _warn(f"incremental: the saved model is stale ({stale}): retraining it and deduplicating "
                      "every record")
                incremental, prev_model = False, None
    prep = prepare(con, table, spec, PREP)
    idc = ident(spec.id_column)
    join_back = "p.__trow = t.rowid" if prep.row_join else f"p.__id = trim(CAST(t.{idc} AS VARCHAR))"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_src AS SELECT p.__rid, p.__id, {_row_hash_sql("t")}
        AS __hash,
        t.* FROM {ident(table)} t JOIN {PREP} p ON {join_back}""")
    fresh = prep.rows
    if incremental:
        con.execute(f"ALTER TABLE {PREP} ADD COLUMN __fresh BOOLEAN DEFAULT true")
        con.execute(f"""UPDATE {PREP} SET __fresh = false FROM __dd_src s JOIN {RECORDS} o
            ON o.record_id = s.__id AND o.row_hash = s.__hash WHERE {PREP}.__rid = s.__rid""")
        fresh = int(con.execute(f"SELECT count(*) FROM {PREP} WHERE __fresh").fetchall()[0][0])
    lap("prepare")
    step("blocking")
    counts = candidate_pairs(con, prep, spec, "__dd_pairs", warn=_warn, fresh_only=incremental)
    dec_stats: dict[str, int] = {}
    if decisions is not None:
        dec_stats = _decision_table(con, decisions, _warn)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE __dd_dec (l INTEGER, r INTEGER, decision VARCHAR)")
    # decided pairs are scored (and explained) even when blocking did not make them
    con.execute("""INSERT INTO __dd_pairs SELECT d.l, d.r, -1, 0 FROM __dd_dec d
        ANTI JOIN __dd_pairs p ON p.l = d.l AND p.r = d.r""")
    if incremental:  # previous clusters of unchanged records stand: an edge to their cluster's first record
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
    n_pairs = int(con.execute("SELECT count(*) FROM __dd_pairs").fetchall()[0][0])
    lap("blocking")
    step(f"comparing {n_pairs} pairs")
    compute_levels(con, prep, spec, "__dd_pairs", "__dd_levels", temp=True)
    lap("compare")
    step("estimating the model")
    model = prev_model or estimate(con, prep, spec, "__dd_levels")
    lap("model")
    tf_cols = {i: f"tf{i}" for i, c in enumerate(spec.comparisons) if c.name in prep.tf}
    gcols = ", ".join(f"g{i}" for i in range(len(spec.comparisons)))
    scoring = score_sql(model, tf_cols)
    veto = veto_sql(spec, model, tf_cols)
    home_veto = " OR ".join(sql for label, sql in veto_parts(spec, model, tf_cols) if label.startswith("household"))
    tfsel = "".join(f", q.{t}" for t in tf_cols.values())

    def score_into(levels: str, target: str, temp: bool) -> None:
        con.execute(f"""CREATE OR REPLACE {"TEMP " if temp else ""}TABLE {target} AS
            SELECT q.l, q.r, q.rule, {gcols}{tfsel}, {scoring}, ({veto}) AS vetoed,
                   ({home_veto or "false"}) AS home_vetoed, d.decision
            FROM {levels} q LEFT JOIN __dd_dec d ON d.l = q.l AND d.r = q.r""")

    score_into("__dd_levels", PAIRS, False)
    con.execute("DROP TABLE IF EXISTS __dd_levels")

    def score_pairs(pairs: str, target: str) -> None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __dd_xp AS SELECT l, r, CAST(-3 AS SMALLINT) AS rule, "
            f"CAST(0 AS BIGINT) AS rules FROM {pairs}"
        )
        compute_levels(con, prep, spec, "__dd_xp", "__dd_xl", temp=True)
        score_into("__dd_xl", target, True)
        con.execute("DROP TABLE IF EXISTS __dd_xp; DROP TABLE IF EXISTS __dd_xl")

    lap("score")
    step("clustering")
    stats = cluster(
        con,
        PAIRS,
        prep.rows,
        threshold=spec.threshold,
        review=spec.review,
        max_cluster_size=spec.max_cluster_size, split_below=spec.split_below,
        score_pairs=score_pairs,
        out="__dd_members",
    )
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_merged AS
        SELECT k.*, m.cid FROM (SELECT * FROM {PAIRS} UNION ALL BY NAME SELECT * FROM __dd_intra) k
        JOIN __dd_members m ON m.rid = k.l JOIN __dd_members m2 ON m2.rid = k.r
        WHERE m.cid = m2.cid AND (k.decision = 'match' OR (k.decision IS NULL AND k.match_probability >=
            {spec.threshold}
              AND NOT k.vetoed))""")
    merges = int(con.execute("SELECT count(*) FROM __dd_merged").fetchall()[0][0])
    lap("cluster")
    step("golden records")
    columns = [c for c in (r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()) if c != "_row"]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_gsrc AS SELECT s.*, c.__id AS __cid, z.n AS __n FROM __dd_src s
        JOIN __dd_members m ON m.rid = s.__rid JOIN {PREP} c ON c.__rid = m.cid
        JOIN (SELECT cid, count(*) AS n FROM __dd_members GROUP BY cid) z ON z.cid = m.cid""")
    con.execute(f"CREATE OR REPLACE TABLE {GOLDEN} AS {golden_query(spec, '__dd_gsrc', columns)}")
    lap("golden")
    # review: the band, vetoed pairs, and pairs the chaining guard cut; decided pairs never come back
    con.execute(f"CREATE OR REPLACE TABLE {CUTS} AS SELECT l, r, min(reason) AS reason FROM __dd_cut GROUP BY l, r")
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
    clusters_query = f"""SELECT p.__id AS record_id, c.__id AS cluster_id, round(m.match_probability, 6)
            AS match_probability FROM __dd_members m JOIN {PREP} p ON p.__rid = m.rid
        JOIN {PREP} c ON c.__rid = m.cid ORDER BY p.__id"""
    outputs: dict[str, Path] = {}
    if out_dir is not None:
        from crmtool.io.writers import write_query

        step("writing outputs")
        for name, query in (
            ("clusters", clusters_query),
            ("golden", f"SELECT * FROM {GOLDEN}"),
            ("review", review_query),
        ):
            outputs[name] = out_dir / f"{name}.{fmt}"
            write_query(con, query, outputs[name], fmt, options=output)
    lap("write")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {RECORDS} (record_id VARCHAR, cluster_id VARCHAR,
        row_hash VARCHAR, run_id VARCHAR)""")
    con.execute(f"DELETE FROM {RECORDS}")
    con.execute(f"""INSERT INTO {RECORDS} SELECT s.__id, s.__cid, s.__hash, {sql_str(run.run_id)}
        FROM __dd_gsrc s""")
    con.execute(f"CREATE TABLE IF NOT EXISTS {MODEL} (run_id VARCHAR, created_at TIMESTAMP, model JSON)")
    con.execute(f"INSERT INTO {MODEL} VALUES (?, now()::TIMESTAMP, ?)", [run.run_id, model.to_json()])
    result = DedupeResult(
        run.run_id,
        prep.rows,
        n_pairs,
        counts,
        model,
        stats,
        merges,
        review.pairs,
        dec_stats,
        outputs,
        timings,
        warnings,
        incremental,
        fresh,
        review=review,
        normalised=list(normalised_by),
    )
    if audit_log is not None or out_dir is not None:
        step("audit log")
        from crmtool.audit import log_dir

        result.audit_head = _audit(ws, spec, result, log_dir(ws, out_dir, audit_log))
    lap("audit")
    for t in (
        "__dd_src",
        "__dd_gsrc",
        "__dd_members",
        "__dd_merged",
        "__dd_review",
        "__dd_cut",
        "__dd_intra",
        "__dd_pairs",
        "__dd_dec",
        "__dd_keep",
    ):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    _record_metrics(run.step, result)
    ws.finish_run(run, "pass", 0, result.as_dict())
    return result


def _record_metrics(step: Step, result: DedupeResult) -> None:
    """Rows, pairs, clusters, merges, the duplicate rate (records that a golden record replaces,
    over all records) and the files written."""
    c = result.clusters
    step.metric("rows_in", result.rows)
    step.metric("candidate_pairs", result.candidate_pairs)
    step.metric("duplicate_clusters", c.multi)
    step.metric("records_in_duplicate_clusters", c.records_in_multi)
    step.metric("largest_cluster", c.largest)
    step.metric("merges", result.merges)
    step.metric("review_pairs", result.review_pairs)
    step.share("duplicate_rate", c.records_in_multi - c.multi, result.rows)
    for kind, path in result.outputs.items():
        if Path(path).is_file():
            step.output(kind, Path(path))


def _audit(ws: Workspace, spec: DedupeSpec, result: DedupeResult, path: Path) -> str:
    """One ``merge`` row per matched pair inside a cluster, in the run's ``merges`` change set;
    ids as keyed hashes (``record``, ``other``, ``cluster``)."""
    from crmtool.audit import TOKEN_PREFIX, AuditWriter

    con = ws.con
    writer = AuditWriter(path, result.run_id, ws.hasher, command="dedupe", lock_timeout=ws.lock_timeout)
    try:
        writer.add(
            {
                "type": "run",
                "command": "dedupe",
                "rows": result.rows,
                "candidate_pairs": result.candidate_pairs,
                "threshold": spec.threshold,
                "review": spec.review,
                "model": result.model.estimate,
            }
        )
        levels = ", ".join(
            f"CASE WHEN ({_label_sql(spec, i)}) IS NOT NULL THEN {sql_str(json.dumps(c.name))} || ':' || "
            f"to_json(CAST(({_label_sql(spec, i)}) AS VARCHAR)) END"
            for i, c in enumerate(spec.comparisons)
        ) or "NULL"

        def token(alias: str) -> str:
            return f"'{TOKEN_PREFIX}' || crm_token({alias}.__id)"

        writer.add_set(con, "merges", f"""
            SELECT 'merge' AS type, {token('c')} AS cluster, {token('a')} AS record, {token('b')} AS other,
                   round(k.match_weight, 4) AS match_weight, round(k.match_probability, 6) AS match_probability,
                   coalesce(k.decision, 'model') AS decision, '{{' || concat_ws(',', {levels}) || '}}' AS levels
            FROM __dd_merged k JOIN {PREP} a ON a.__rid = k.l JOIN {PREP} b ON b.__rid = k.r
            JOIN {PREP} c ON c.__rid = k.cid
        """, order_by="record, other")
        return writer.seal({"merges": result.merges, "clusters": result.clusters.clusters})
    except BaseException:
        writer.abort()
        raise


class ApplyFixes(Protocol):
    """Runs the fixes of ``ruleset`` over ``table`` into the work copy ``work_table`` and leaves nothing
    else behind (:func:`crmtool.api.apply_fixes`). The engine that runs rules is a floor above the
    rule kinds, so the caller hands this function in rather than dedupe importing it."""

    def __call__(self, con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet, work_table: str) -> object: ...


def normalise_first(ws: Workspace, ruleset: RuleSet, spec: DedupeSpec, table: str, apply_fixes: ApplyFixes | None,
                    warn: Callable[[str], None] | None = None) -> tuple[str, list[str]]:
    """Run the rule set's fixes (``action: fix``) on the columns the dedupe section reads, with
    ``apply_fixes``, into a work copy; return (the table to deduplicate, the rules applied).

    Dedupe compares values as the normalisers leave them: a mojibake first name or ``16783115-S`` vs
    ``16783115S`` must not decide a match. Fixes of other columns are left to ``clean``; a fix naming a
    column the data lacks is skipped with a warning (``clean`` would refuse the file). Fixes to run and
    no ``apply_fixes`` is a usage error (never a silent skip)."""
    from crmtool.ruleset import RuleSet as RuleSetType

    have = {r[0] for r in ws.con.execute(f"DESCRIBE {ident(table)}").fetchall()}
    wanted = set(spec.columns())
    fixes = [r for r in ruleset.rules if r.action == "fix" and set(r.columns) & wanted]
    usable = [r for r in fixes if set(r.columns) <= have]
    skipped = [r.name for r in fixes if r not in usable]
    if skipped and warn:
        warn(f"normalisers skipped (they name columns this file lacks): {', '.join(skipped)}")
    if not usable:
        return table, []
    if apply_fixes is None:
        raise UsageError(
            f"dedupe: the rules fix compared columns ({', '.join(r.name for r in usable)}) but no function "
            "to apply them was given",
            "pass apply_fixes=crmtool.api.apply_fixes, or normalise=False to compare the values as they are",
        )
    work = f"dedupe_norm_{table}"
    apply_fixes(ws.con, table, RuleSetType(files=ruleset.files, dataset=ruleset.dataset, rules=usable), work)
    return work, [r.name for r in usable]


def dedupe_file(
    ws: Workspace,
    input_path: Path,
    rules: list[Path],
    out_dir: Path | None,
    *,
    fmt: str | None = None,
    read: ReadOptions | None = None,
    normalise: bool = True,
    apply_fixes: ApplyFixes | None = None,
    **kwargs: Any,
) -> DedupeResult:
    """Load ``input_path`` into the workspace and deduplicate it with the ``dedupe`` section of ``rules``
    (``read`` overrides the detected delimiter, encoding or xlsx sheet).

    Every file of ``rules`` is read (a folder whole): with ``normalise`` (the default) the fixes its
    ``rules:`` declare run first on the compared columns of a work copy, by ``apply_fixes``
    (:func:`crmtool.api.apply_fixes`; see :func:`normalise_first`)."""
    from crmtool.dedupe.spec import spec_from_ruleset
    from crmtool.identity.load import load_without_erased
    from crmtool.rulefile import load_rules
    from crmtool.workspace import dataset_name

    ruleset = load_rules(rules)  # configuration errors before any data is read
    spec = spec_from_ruleset(ruleset)
    if spec is None:
        from crmtool.errors import ConfigError, Location

        raise ConfigError([(Location(str(f)), "no 'dedupe' section") for f in ruleset.files[:1]],
                          "add a dedupe section (see rules/30-dedupe.yaml, or 'crmtool dedupe FILE --suggest')")
    table = f"data_{dataset_name(input_path)}"
    loaded = load_without_erased(ws, input_path, table, read=read)  # erased people never reach the workspace
    if loaded.parse_rejects and kwargs.get("warn"):
        kwargs["warn"](f"{len(loaded.parse_rejects)} unparseable lines skipped")
    out_fmt = fmt or ("parquet" if loaded.format == "parquet" else "csv")
    applied: list[str] = []
    if normalise:
        table, applied = normalise_first(ws, ruleset, spec, table, apply_fixes, kwargs.get("warn"))
    try:
        return dedupe(ws, table, spec, out_dir, fmt=out_fmt, normalised_by=tuple(applied), **kwargs)
    finally:
        if applied:  # the work copy: the run's outputs and dedupe_* tables hold what later steps read
            ws.con.execute(f"DROP TABLE IF EXISTS {ident(table)}")


def suggest_file(ws: Workspace, input_path: Path) -> dict[str, Any]:
    """Load ``input_path`` and return :func:`crmtool.dedupe.suggest.suggest_dedupe_section` of it."""
    from crmtool.dedupe.suggest import suggest_dedupe_section
    from crmtool.io.readers import load_file
    from crmtool.workspace import dataset_name

    table = f"data_{dataset_name(input_path)}"
    load_file(ws.con, input_path, table)
    return suggest_dedupe_section(ws.con, table)


def dedupe_ruleset(
    ws: Workspace, ruleset: RuleSet, table: str, out_dir: Path | None, **kwargs: Any
) -> DedupeResult | None:
    """Deduplicate ``table`` when the loaded rule files have a ``dedupe`` section, else return None.

    The hook for ``clean``: call it after the rules ran and the clean table was written (and after the
    clean run's audit entries were sealed, so that the dedupe run continues the same hash chain), with
    ``table`` the cleaned table (``clean_<dataset>``) and the same ``fmt`` / ``audit_log`` as ``clean``.
    """
    from crmtool.dedupe.spec import spec_from_ruleset

    spec = spec_from_ruleset(ruleset)
    if spec is None:
        return None
    return dedupe(ws, table, spec, out_dir, **kwargs)
