"""Golden records: one row per cluster, each field chosen by its survivorship rule, in one SQL query.

Rules: ``most_recent`` (by a timestamp column), ``most_frequent``, ``most_complete`` (the value of
the record that fills most fields), ``longest``, ``source_priority``, ``first`` (smallest id),
``sql`` (any aggregate expression) and ``most_restrictive`` for consent (denied < unknown < granted;
a blank consent is unknown, so it wins over granted). Empty values never survive except for consent.
Ties always break on the record id, so reruns are identical.
"""

from __future__ import annotations

from crmtool.dedupe.prepare import feature_sql
from crmtool.dedupe.spec import DedupeSpec, FieldRule
from crmtool.sqltext import ident, sql_str


def consent_rank_sql(column_sql: str) -> str:
    """0 denied, 1 unknown, 2 granted (the privacy feature's reading of consent values)."""
    from crmtool.privacy.consent import normalise_consent_sql

    norm = normalise_consent_sql(column_sql)
    return f"(CASE {norm} WHEN 'denied' THEN 0 WHEN 'granted' THEN 2 ELSE 1 END)"


def _ts(spec: DedupeSpec, column: str) -> str:
    v = f"CAST(s.{ident(column)} AS VARCHAR)"
    date = feature_sql(v, "date", spec.date_formats)
    return f"coalesce(try_cast(trim({v}) AS TIMESTAMP), CAST({date} AS TIMESTAMP))"


def _agg(spec: DedupeSpec, column: str, rule: FieldRule, i: int) -> tuple[str, str | None]:
    """(aggregate expression, optional helper column over the source alias ``s``).

    ``arg_max``/``arg_min`` with a (key, record ordinal) tuple: one pass, no sort per cluster; the record
    ordinal follows the id order, so ties go to the smallest id."""
    c = f"s.{ident(column)}"
    present = f"FILTER (WHERE {c} IS NOT NULL AND trim(CAST({c} AS VARCHAR)) <> '')"
    if rule.rule == "sql":
        return f"({rule.sql})", None
    if rule.rule == "most_restrictive":
        return f"arg_min_null({c}, ({consent_rank_sql(c)}, s.__rid))", None  # a blank consent counts
    if rule.rule == "most_recent":
        by = rule.by or spec.survivorship.recency or ""
        return f"arg_max({c}, (coalesce({_ts(spec, by)}, TIMESTAMP '0001-01-01'), -s.__rid)) {present}", None
    if rule.rule == "most_frequent":
        helper = f"count(*) OVER (PARTITION BY x.__cid, x.{ident(column)}) AS __freq{i}"
        return f"arg_max({c}, (s.__freq{i}, -s.__rid)) {present}", helper
    if rule.rule == "longest":
        return f"arg_max({c}, (length(CAST({c} AS VARCHAR)), -s.__rid)) {present}", None
    if rule.rule == "source_priority":
        src = f"CAST(s.{ident(spec.survivorship.source_column or '')} AS VARCHAR)"
        prio = spec.survivorship.source_priority
        whens = " ".join(f"WHEN {src} = {sql_str(p)} THEN {k}" for k, p in enumerate(prio))
        rank = f"CASE {whens} ELSE {len(prio)} END" if prio else "0"
        return f"arg_min({c}, ({rank}, s.__rid)) {present}", None
    if rule.rule == "first":
        return f"arg_min({c}, s.__rid) {present}", None
    return f"arg_max({c}, (s.__complete, -s.__rid)) {present}", None


def golden_query(spec: DedupeSpec, source: str, columns: list[str], size_column: str = "__n") -> str:
    """SQL of the golden records over ``source`` (input columns, ``__id`` and ``__cid`` the cluster id)."""
    complete = (
        " + ".join(
            f"CAST(({ident(c)} IS NOT NULL AND trim(CAST({ident(c)} AS VARCHAR)) <> '') AS INTEGER)"
            for c in columns
        )
        or "0"
    )
    aggs: list[str] = []
    helpers: list[str] = []
    for i, col in enumerate(columns):
        if col == spec.id_column:
            aggs.append(f"min(s.__id) AS {ident(col)}")
            continue
        agg, helper = _agg(spec, col, spec.survivorship.rule_for(col), i)
        aggs.append(f"{agg} AS {ident(col)}")
        if helper:
            helpers.append(helper)
    helper_sql = "".join(f", {h}" for h in helpers)
    multi = f"""SELECT s.__cid AS cluster_id, array_to_string(list_sort(list(s.__id)), ';') AS record_ids,
            count(*) AS n_records, {", ".join(aggs)}
        FROM (SELECT x.*{helper_sql} FROM (SELECT *, {complete} AS __complete FROM {source}
              WHERE {size_column} > 1) x) s
        GROUP BY s.__cid"""
    rules = [spec.survivorship.rule_for(c) for c in columns if c != spec.id_column]
    if any(r.rule == "sql" for r in rules):  # an aggregate expression may change a lone value: no shortcut
        return multi.replace(f"WHERE {size_column} > 1", "") + " ORDER BY cluster_id"
    # a record alone in its cluster is its own golden record (blank values become NULL as above)
    singles = []
    for col in columns:
        c = f"s.{ident(col)}"
        if col == spec.id_column:
            singles.append(f"s.__id AS {ident(col)}")
        elif spec.survivorship.rule_for(col).rule == "most_restrictive":
            singles.append(f"{c} AS {ident(col)}")
        else:
            singles.append(f"CASE WHEN trim(CAST({c} AS VARCHAR)) <> '' THEN {c} END AS {ident(col)}")
    single = (f"SELECT s.__cid AS cluster_id, s.__id AS record_ids, CAST(1 AS BIGINT) AS n_records, "
              f"{', '.join(singles)} FROM {source} s WHERE s.{size_column} = 1")
    return f"SELECT * FROM ({multi} UNION ALL {single}) ORDER BY cluster_id"
