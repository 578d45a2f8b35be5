"""The record step of a dedupe run: what the workspace keeps for the next run, the run's metrics and
its audit entries (one ``merge`` row per matched pair, ids as keyed hashes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.dedupe.tables import MODEL, PREP, RECORDS
from crmtool.sqltext import sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.dedupe.api import DedupeResult
    from crmtool.dedupe.model import Model
    from crmtool.dedupe.spec import DedupeSpec
    from crmtool.steps import Step
    from crmtool.workspace import Workspace


def keep_for_next_run(con: duckdb.DuckDBPyConnection, run_id: str, model: Model) -> None:
    """Keep this run's records (id, cluster, row hash) and model for ``explain`` and the next incremental run."""
    # replaced whole: a table left by an older version (another shape) must not stop the run
    con.execute(f"""CREATE OR REPLACE TABLE {RECORDS} AS SELECT CAST(s.__id AS VARCHAR) AS record_id,
        CAST(s.__cid AS VARCHAR) AS cluster_id, CAST(s.__hash AS VARCHAR) AS row_hash,
        {sql_str(run_id)} AS run_id FROM __dd_gsrc s""")
    con.execute(f"CREATE TABLE IF NOT EXISTS {MODEL} (run_id VARCHAR, created_at TIMESTAMP, model JSON)")
    con.execute(f"INSERT INTO {MODEL} VALUES (?, now()::TIMESTAMP, ?)", [run_id, model.to_json()])


def _label_sql(spec: DedupeSpec, i: int) -> str:
    """SQL naming the level of comparison ``i`` (``g<i>`` holds its index)."""
    labels = spec.comparisons[i].levels
    return "CASE g{} {} END".format(
        i, " ".join(f"WHEN {k} THEN {sql_str(x)}" for k, x in enumerate(labels))
    )


def record_metrics(step: Step, result: DedupeResult, *, files: bool = True) -> None:
    """Rows, pairs, clusters, merges, the duplicate rate (records that a golden record replaces,
    over all records) and, with ``files``, the files written (a staged run's are registered by
    the run that publishes them)."""
    c = result.clusters
    step.metric("rows_in", result.rows)
    step.metric("candidate_pairs", result.candidate_pairs)
    step.metric("duplicate_clusters", c.multi)
    step.metric("records_in_duplicate_clusters", c.records_in_multi)
    step.metric("largest_cluster", c.largest)
    step.metric("merges", result.merges)
    step.metric("review_pairs", result.review_pairs)
    step.metric("model_degenerate", int(result.model_check.degenerate))  # crmtool.dedupe.health
    step.share("duplicate_rate", c.records_in_multi - c.multi, result.rows)
    for kind, path in result.outputs.items() if files else ():
        if Path(path).is_file():
            step.output(kind, Path(path))


def audit_merges(ws: Workspace, spec: DedupeSpec, result: DedupeResult, path: Path) -> str:
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
