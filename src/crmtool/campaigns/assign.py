"""Who is in a campaign and in which arm: read a segment run's membership, assign newcomers, export.

Source: a segment run's membership, either from the workspace history (``segments_membership``,
the latest run by default or a given run id) or from a segment output folder (its registered
``memberships`` file, else ``memberships.csv|parquet`` as ``crmtool segment`` names it).

Arms, in order of precedence, for a segment member the campaign has not seen yet:

1. excluded by the segment run's protections (no consent, suppressed, ...): not in the campaign;
2. ``global_control``: held out by the segment run's global holdout, or bucket under the
   workspace's global control percent with the global salt (the same customers for every campaign);
3. ``holdout``: held out by the segment run for this segment or for this campaign, or bucket under
   the campaign's holdout percent with the campaign's salt;
4. ``other_holdout``: held out by the segment run for another campaign (never sent, not analysed);
5. a variant, by a third bucket (salt ``<campaign salt>:variants``) cut by the cumulative weights.

Buckets are :func:`crmtool.segments.holdout.bucket_sql`: stable whatever else changes in the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.campaigns.store import GLOBAL_CONTROL, HOLDOUT, OTHER_HOLDOUT, Campaign
from crmtool.errors import InputError, UsageError
from crmtool.segments.holdout import BUCKETS, bucket_sql, id_sql
from crmtool.sqltext import sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.workspace import Workspace

SOURCE = "cmp_source"


def _latest_segment_run(con: duckdb.DuckDBPyConnection) -> str:
    from crmtool.segments.membership import ensure_history, previous_run

    ensure_history(con)
    run = previous_run(con)
    if run is None:
        raise UsageError("no segment run recorded in this workspace",
                         "run 'crmtool segment ...' with the same --workspace first, or give --from OUT_DIR")
    return run


def memberships_file(ws: Workspace, folder: Path) -> Path:
    base = folder.resolve()
    registered = [o.path for o in ws.outputs(kinds=("memberships",)) if base in o.path.parents]
    if registered:
        return registered[-1]
    for fmt in ("parquet", "csv"):
        candidate = folder / f"memberships.{fmt}"
        if candidate.exists():
            return candidate
    raise InputError(f"{folder}: no memberships file of a segment run",
                     "give the --out folder of 'crmtool segment', or a segment run id")


def load_source(ws: Workspace, segment: str, source: str | None) -> str | None:
    """Fill ``cmp_source(customer_id, status, holdout)`` with the segment's members; returns the run id
    when the source is the workspace history (None for a folder)."""
    con = ws.con
    run_id: str | None = None
    if source is not None and Path(source).is_dir():
        from crmtool.io.readers import ensure_readable, file_format, load_file

        path = memberships_file(ws, Path(source))
        ensure_readable(path)
        if file_format(path) == "parquet":
            from crmtool.io.gate import readable

            con.execute("CREATE OR REPLACE TEMP VIEW cmp_in_members AS "
                        f"SELECT * FROM read_parquet({sql_str(readable(con, path))})")
        else:
            load_file(con, path, "cmp_in_members")
        cols = {r[0] for r in con.execute("DESCRIBE cmp_in_members").fetchall()}
        missing = {"customer_id", "segment", "status", "holdout"} - cols
        if missing:
            raise InputError(f"{path}: not a memberships file (no column {', '.join(sorted(missing))})")
        # a CSV id that looked like a formula was written with a leading apostrophe: undo it
        cid = "CAST(customer_id AS VARCHAR)"
        unneutral = (f"CASE WHEN regexp_matches({cid}, '^''[=+\\-@\\t\\r]') THEN substr({cid}, 2) ELSE {cid} END")
        select = (f"SELECT {id_sql(unneutral)} AS customer_id, CAST(status AS VARCHAR) AS status, "
                  f"nullif(CAST(holdout AS VARCHAR), '') AS holdout FROM cmp_in_members "
                  f"WHERE CAST(segment AS VARCHAR) = {sql_str(segment)}")
    else:
        from crmtool.segments.membership import ensure_history

        ensure_history(con)
        run_id = source or _latest_segment_run(con)
        if not con.execute("SELECT 1 FROM segments_runs WHERE run_id = ?", [run_id]).fetchall():
            raise UsageError(f"--from {run_id!r} is neither a folder nor a segment run of this workspace",
                             "list runs with 'crmtool segment diff --list-runs'")
        select = (f"SELECT customer_id, status, holdout FROM segments_membership "
                  f"WHERE run_id = {sql_str(run_id)} AND segment = {sql_str(segment)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SOURCE} AS {select}")
    for (kind,) in con.execute("SELECT 'VIEW' FROM duckdb_views() WHERE view_name = 'cmp_in_members' UNION ALL "
                               "SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = 'cmp_in_members'").fetchall():
        con.execute(f"DROP {kind} cmp_in_members")
    if not con.execute(f"SELECT count(*) FROM {SOURCE}").fetchall()[0][0]:
        where = f"segment run {run_id}" if run_id else str(source)
        raise InputError(f"segment {segment!r} has no members in {where}",
                         "check the segment name, or run 'crmtool segment' again")
    return run_id


def arm_sql(c: Campaign, global_salt: str) -> str:
    """SQL of the arm of a row of ``cmp_source`` (columns customer_id, holdout)."""
    gc_bp, h_bp = round(c.global_control_percent * 100), round(c.holdout_percent * 100)
    cuts, acc = [], 0.0
    for i, (name, weight) in enumerate(c.arms):
        acc += weight
        edge = BUCKETS if i == len(c.arms) - 1 else round(acc * BUCKETS)
        cuts.append(f"WHEN {bucket_sql('customer_id', c.salt + ':variants')} < {edge} THEN {sql_str(name)}")
    own = sql_str("campaign:" + c.name)
    return f"""CASE
        WHEN holdout = 'global' OR {bucket_sql('customer_id', global_salt)} < {gc_bp} THEN {sql_str(GLOBAL_CONTROL)}
        WHEN holdout IN ('segment', {own}) OR {bucket_sql('customer_id', c.salt)} < {h_bp} THEN {sql_str(HOLDOUT)}
        WHEN holdout IS NOT NULL THEN {sql_str(OTHER_HOLDOUT)}
        {' '.join(cuts[:-1])} ELSE {sql_str(c.arms[-1][0])} END"""


def assign_newcomers(con: duckdb.DuckDBPyConnection, c: Campaign, run_id: str, global_salt: str) -> int:
    """Add the eligible members of ``cmp_source`` the campaign has not seen; returns how many."""
    before = int(con.execute("SELECT count(*) FROM crm_campaign_members WHERE campaign = ?", [c.name]).fetchall()[0][0])
    con.execute(f"""
        INSERT INTO crm_campaign_members
        SELECT {sql_str(c.name)}, customer_id, {arm_sql(c, global_salt)}, {sql_str(run_id)}, status
        FROM {SOURCE} s
        WHERE status <> 'excluded'
          AND NOT EXISTS (SELECT 1 FROM crm_campaign_members m
                          WHERE m.campaign = {sql_str(c.name)} AND m.customer_id = s.customer_id)""")
    after = int(con.execute("SELECT count(*) FROM crm_campaign_members WHERE campaign = ?", [c.name]).fetchall()[0][0])
    return after - before


def send_query(c: Campaign) -> str:
    """Members in a variant who are sendable in the current source (``cmp_source``), by id."""
    arms = ", ".join(sql_str(a) for a in c.variant_names)
    return (f"SELECT m.customer_id, m.arm FROM crm_campaign_members m JOIN {SOURCE} s USING (customer_id) "
            f"WHERE m.campaign = {sql_str(c.name)} AND m.arm IN ({arms}) AND s.status = 'send' "
            f"ORDER BY m.customer_id")


def holdout_query(c: Campaign) -> str:
    """Every member who must not receive the campaign (holdout and global control), by id."""
    return (f"SELECT customer_id, arm FROM crm_campaign_members WHERE campaign = {sql_str(c.name)} "
            f"AND arm IN ({sql_str(HOLDOUT)}, {sql_str(GLOBAL_CONTROL)}) ORDER BY customer_id")
