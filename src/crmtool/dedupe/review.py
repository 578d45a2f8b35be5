"""The review list: pairs a person should decide, grouped by cluster, most valuable first, capped.

Which pairs: those in the review band ``[review, threshold)``, pairs a veto kept apart although the model
would merge them (``veto`` or ``household``), and pairs the chaining guard cut (``chaining``,
``oversized_cluster``); decided pairs never come back.

Order: each pair's *expected value* of a decision is its uncertainty times the records it affects:
uncertainty ``1 - |2p - 1|`` for band pairs (1 at p = 0.5, 0 at p = 0 or 1) and 0.5 for pairs where
the model and a rule disagree (vetoed or cut); impact is the size of the two clusters the pair joins.
Pairs are grouped by the cluster of their left record, groups ordered by their best pair, pairs within a
group by value. Only the first ``limit`` pairs are written; the rest are counted by reason.
Each pair carries its top reasons: the three comparisons with the strongest weights, for or against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.dedupe.model import Model, household_raw_sql, weight_sql
from crmtool.dedupe.spec import DedupeSpec
from crmtool.dedupe.veto import veto_parts
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

#: pairs written to the review file by default; the rest are summarised
DEFAULT_LIMIT = 200
TOP_REASONS = 3


@dataclass
class ReviewSummary:
    pairs: int = 0
    written: int = 0
    clusters: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    omitted_by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reasons_sql(spec: DedupeSpec, model: Model, tf_columns: dict[int, str]) -> str:
    """``'name=level +w; ...'`` of the strongest comparisons (by absolute weight) over ``g0..gk``; the
    household group's agreements are one reason, ``home(email,phone)=+15.5``, as they are scored."""
    home = set(model.household) if model.household_cap is not None else set()
    items = []
    for i, c in enumerate(spec.comparisons):
        labels = " ".join(f"WHEN {k} THEN {sql_str(x)}" for k, x in enumerate(c.levels))
        w = f"CAST({weight_sql(model, i, tf_columns.get(i))} AS DOUBLE)"
        text = f"{sql_str(c.name + '=')} || (CASE g{i} {labels} END) || ' ' || printf('%+.1f', {w})"
        shown = f"g{i} IS NOT NULL" + (f" AND {w} < 0" if i in home else "")
        items.append(f"CASE WHEN {shown} THEN {{'k': -abs({w}), 'n': {i}, 's': {text}}} END")
    if home:
        raw = f"CAST({household_raw_sql(model, tf_columns)} AS DOUBLE)"
        counted = f"least({raw}, {model.household_cap})"
        names = ", ".join(
            f"CASE WHEN CAST({weight_sql(model, i, tf_columns.get(i))} AS DOUBLE) > 0 THEN "
            f"{sql_str(spec.comparisons[i].name)} END" for i in sorted(home))
        text = f"'home(' || concat_ws(',', {names}) || ')=' || printf('%+.1f', {counted})"
        items.append(f"CASE WHEN {raw} > 0 THEN {{'k': -{counted}, 'n': -1, 's': {text}}} END")
    listed = f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)"
    return f"array_to_string(list_transform(list_sort({listed})[1:{TOP_REASONS}], lambda x: x.s), '; ')"


def build_review(con: duckdb.DuckDBPyConnection, spec: DedupeSpec, model: Model, tf_columns: dict[int, str],
                 scored: str, cuts: str, members: str, out: str) -> None:
    """``out(l, r, match_probability, match_weight, reason, cluster, value, reasons)``: every pair to review."""
    parts = veto_parts(spec, model, tf_columns)
    vetoed = " ".join(f"WHEN {sql} THEN {sql_str('household' if label.startswith('household') else 'veto')}"
                      for label, sql in parts)
    veto_reason = f"CASE {vetoed} ELSE 'veto' END" if parts else "'veto'"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_rv0 AS
        SELECT k.*, CASE WHEN x.reason IS NOT NULL THEN x.reason
                         WHEN k.vetoed AND k.match_probability >= {spec.threshold} THEN {veto_reason}
                         ELSE 'review_band' END AS reason
        FROM {scored} k LEFT JOIN {ident(cuts)} x ON x.l = k.l AND x.r = k.r
        WHERE k.decision IS NULL AND (x.reason IS NOT NULL OR (k.match_probability >= {spec.review}
              AND (k.match_probability < {spec.threshold} OR k.vetoed)))""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS
        WITH sizes AS (SELECT cid, count(*) AS n FROM {members} GROUP BY cid)
        SELECT v.l, v.r, v.match_probability, v.match_weight, v.reason, ml.cid AS cluster,
               (CASE WHEN v.reason = 'review_band' THEN 1 - abs(2 * v.match_probability - 1) ELSE 0.5 END)
                 * (sl.n + CASE WHEN ml.cid = mr.cid THEN 0 ELSE sr.n END) AS value,
               {reasons_sql(spec, model, tf_columns)} AS reasons
        FROM __dd_rv0 v JOIN {members} ml ON ml.rid = v.l JOIN {members} mr ON mr.rid = v.r
        JOIN sizes sl ON sl.cid = ml.cid JOIN sizes sr ON sr.cid = mr.cid""")
    con.execute("DROP TABLE IF EXISTS __dd_rv0")


def ordered_sql(review: str) -> str:
    """The review pairs in reading order with their rank (groups by best value, then pairs by value)."""
    return f"""SELECT *, row_number() OVER (ORDER BY group_value DESC, cluster, value DESC, match_probability DESC,
            l, r) AS rank
        FROM (SELECT *, max(value) OVER (PARTITION BY cluster) AS group_value FROM {review})"""


def summarise(con: duckdb.DuckDBPyConnection, review: str, limit: int) -> ReviewSummary:
    rows = con.execute(f"""SELECT reason, count(*), count(*) FILTER (WHERE rank > {int(limit)}),
            count(DISTINCT cluster) FILTER (WHERE rank <= {int(limit)})
        FROM ({ordered_sql(review)}) GROUP BY reason ORDER BY reason""").fetchall()
    s = ReviewSummary()
    for reason, n, omitted, _ in rows:
        s.by_reason[reason] = int(n)
        if omitted:
            s.omitted_by_reason[reason] = int(omitted)
    s.pairs = sum(s.by_reason.values())
    s.written = s.pairs - sum(s.omitted_by_reason.values())
    s.clusters = int(con.execute(f"SELECT count(DISTINCT cluster) FROM ({ordered_sql(review)}) "
                                 f"WHERE rank <= {int(limit)}").fetchall()[0][0])
    return s
