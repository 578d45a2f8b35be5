"""Read a decisions file (pairs a person decided: ``id_l, id_r, decision``) into the run's ``__dd_dec`` table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.dedupe.tables import PREP
from crmtool.errors import InputError
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

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


def decision_table(
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
