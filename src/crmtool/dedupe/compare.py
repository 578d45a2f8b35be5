"""Comparison levels of record pairs, computed in bulk by DuckDB (one SQL statement for all pairs).

Each comparison gives every pair a level: 0 is the best (exact), the last is ``else`` (disagree),
NULL when either side is missing. The levels of a method are named in
:func:`crmtool.dedupe.spec.level_labels`; string similarities are DuckDB's built-in
``jaro_winkler_similarity`` and ``levenshtein``, run vectorised and multi-threaded over every pair.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import TYPE_CHECKING

from crmtool.dedupe.prepare import Prepared
from crmtool.dedupe.spec import Comparison, DedupeSpec
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb


_PARTICLES = "('del', 'las', 'los', 'van', 'von', 'der', 'den', 'dos', 'das')"


def _shared_token(lv: str, rv: str) -> str:
    """The first two words of the two values share one (longer than 2 letters, not a particle):
    ``garcia lopez`` ~ ``lopez``; cheaper than list functions over every pair."""
    words = []
    for side in (lv, rv):
        words.append([f"split_part({side}, ' ', {k})" for k in (1, 2)])
    conds = []
    for a in words[0]:
        for b in words[1]:
            conds.append(f"({a} = {b} AND length({a}) > 2 AND {a} NOT IN {_PARTICLES})")
    return "(" + " OR ".join(conds) + ")"


def conditions(c: Comparison, prep: Prepared) -> tuple[str, list[str]]:
    """(null condition, [condition of each level but ``else``]) over pair aliases ``l`` and ``r``."""
    t = c.thresholds
    if c.method in ("date",):
        d = prep.f(c.column, "date")
        lv, rv = f"l.{d}", f"r.{d}"
        conds = [
            f"{lv} = {rv}",
            f"(day({lv}) = month({rv}) AND month({lv}) = day({rv}) AND year({lv}) = year({rv}))",
            f"levenshtein(strftime({lv}, '%Y%m%d'), strftime({rv}, '%Y%m%d')) <= 1",
            *(f"abs(date_diff('day', {lv}, {rv})) <= {int(x)}" for x in t),
        ]
        return f"{lv} IS NULL OR {rv} IS NULL", conds
    if c.method == "numeric":
        n = prep.f(c.column, "number")
        lv, rv = f"l.{n}", f"r.{n}"
        return f"{lv} IS NULL OR {rv} IS NULL", [f"{lv} = {rv}", *(f"abs({lv} - {rv}) <= {x}" for x in t)]
    if c.method == "email":
        # the fuzzy levels compare what the names do not explain (``xabier.diaz2941`` -> ``2941``): two
        # Xabier Díaz have similar local parts because both are built from one name, and the name
        # comparisons already count that agreement
        e, loc, rest = prep.f(c.column, "email"), prep.f(c.column, "email_local"), prep.f(c.column, "email_rest")
        return (
            f"l.{e} IS NULL OR r.{e} IS NULL",
            [
                f"l.{e} = r.{e}",
                f"l.{loc} = r.{loc}",
                *(f"(l.{rest} <> '' AND r.{rest} <> '' AND jaro_winkler_similarity(l.{rest}, r.{rest}) >= {x})"
                  for x in t),
            ],
        )
    if c.method == "phone":
        ph = prep.f(c.column, "phone")
        lv, rv = f"l.{ph}", f"r.{ph}"
        return (
            f"{lv} IS NULL OR {rv} IS NULL",
            [
                f"{lv} = {rv}",
                f"(length({lv}) = length({rv}) AND levenshtein({lv}, {rv}) <= 1)",
                *(f"right({lv}, {int(x)}) = right({rv}, {int(x)})" for x in t),
            ],
        )
    v = prep.f(c.column, "text")
    lv, rv = f"l.{v}", f"r.{v}"
    null = f"{lv} IS NULL OR {rv} IS NULL"
    conds = [f"{lv} = {rv}"]
    if c.swap_with:
        s = prep.f(c.swap_with, "text")
        # swapped, each side allowing a typo (jw >= 0.9): "Cabrra López, Antonio" ~ "Antonio, Cabrera López"
        conds.append(f"(jaro_winkler_similarity({lv}, r.{s}) >= 0.9 AND jaro_winkler_similarity(l.{s}, {rv}) >= 0.9)")
    jw = f"jaro_winkler_similarity({lv}, {rv})"
    if c.method == "name":
        n = prep.f(c.column, "nickname")
        p = prep.f(c.column, "phonetic")
        conds += [
            f"(l.{n} = r.{n} OR (l.{n}_1 = r.{n}_1 AND (strpos({lv}, ' ') = 0 OR strpos({rv}, ' ') = 0)))",
            f"{jw} >= {t[0]}",
            f"({jw} >= {t[1]} OR l.{p} = r.{p})",
        ]
    elif c.method == "surname":
        p = prep.f(c.column, "phonetic")
        conds += [
            _shared_token(lv, rv),
            f"{jw} >= {t[0]}",
            f"({jw} >= {t[1]} OR l.{p} = r.{p} OR split_part(l.{p}, ' ', 1) = split_part(r.{p}, ' ', 1))",
        ]
    elif c.method == "jaro_winkler":
        conds += [f"{jw} >= {x}" for x in t]
    elif c.method == "levenshtein":
        conds += [f"levenshtein({lv}, {rv}) <= {int(x)}" for x in t]
    elif c.method == "token_set":
        a, b = f"string_split({lv}, ' ')", f"string_split({rv}, ' ')"
        conds += [
            f"len(list_intersect({a}, {b})) / len(list_distinct(list_concat({a}, {b}))) >= {x}" for x in t
        ]
    elif c.method == "phonetic":
        p = prep.f(c.column, "phonetic")
        conds.append(f"l.{p} = r.{p}")
    return null, conds


_SIMILARITY = re.compile(r"(?:jaro_winkler_similarity|levenshtein)\([^()]*\)")


def _shared_similarity(conds: list[str]) -> tuple[str, int] | None:
    """The similarity call that several level conditions repeat (``jw >= 0.9``, ``jw >= 0.8``), and the
    first condition that uses it; None when no call is repeated."""
    calls = [m for cond in conds for m in _SIMILARITY.findall(cond)]
    best = max(set(calls), key=lambda x: (calls.count(x), x), default=None)
    if best is None or calls.count(best) < 2:
        return None
    return best, next(k for k, cond in enumerate(conds) if best in cond)


def level_sql(c: Comparison, prep: Prepared) -> str:
    """``CASE`` giving the level (TINYINT) of comparison ``c`` for the pair ``(l, r)``.

    A similarity that several levels test (``jw >= 0.9``, then ``jw >= 0.8``) is computed once per pair:
    the levels from its first use on are a ``CASE`` over a lambda's parameter (a one-element list), the
    same tests in the same order."""
    null, conds = conditions(c, prep)
    shared = _shared_similarity(conds)
    if shared is None:
        whens = " ".join(f"WHEN {cond} THEN {k}" for k, cond in enumerate(conds))
        return f"CAST(CASE WHEN {null} THEN NULL {whens} ELSE {len(conds)} END AS TINYINT)"
    sim, first = shared
    head = " ".join(f"WHEN {cond} THEN {k}" for k, cond in enumerate(conds[:first]))
    tail = " ".join(f"WHEN {cond.replace(sim, '__s')} THEN {k}" for k, cond in enumerate(conds) if k >= first)
    once = f"list_transform([{sim}], lambda __s: CASE {tail} ELSE {len(conds)} END)[1]"
    return f"CAST(CASE WHEN {null} THEN NULL {head} ELSE {once} END AS TINYINT)"


#: pairs compared per statement: more are compared in batches of records (ranges of ``l``), so that the
#: join of the pairs with both records and the similarity work stay this size whatever the pair count
BATCH_PAIRS = 2_000_000


def _batches(con: duckdb.DuckDBPyConnection, pairs: str) -> list[str]:
    """Conditions on ``q.l`` that cut ``pairs`` into batches of about :data:`BATCH_PAIRS` pairs."""
    n = int(con.execute(f"SELECT count(*) FROM {ident(pairs)}").fetchall()[0][0])
    parts = -(-n // BATCH_PAIRS)
    if parts <= 1:
        return ["true"]
    cuts = con.execute(f"SELECT quantile_disc(l, [{', '.join(str(k / parts) for k in range(1, parts))}]) "
                       f"FROM {ident(pairs)}").fetchall()[0][0]
    edges = sorted({int(x) for x in cuts})
    return ([f"q.l < {edges[0]}"] + [f"q.l >= {a} AND q.l < {b}" for a, b in pairwise(edges)]
            + [f"q.l >= {edges[-1]}"])


def compute_levels(
    con: duckdb.DuckDBPyConnection,
    prep: Prepared,
    spec: DedupeSpec,
    pairs: str,
    out: str,
    *,
    extra: str = "",
    temp: bool = False,
) -> None:
    """``out`` = ``pairs`` (with ``l``, ``r``) plus ``g0..gk``, the level of every comparison.

    More than :data:`BATCH_PAIRS` pairs are compared in batches (ranges of ``l``), one statement each:
    the same levels, but what DuckDB holds at once (the pairs joined with both records, the strings
    the similarities read) stays bounded; on 16.5M pairs of 1M records one statement peaked at
    2.19 GiB of RSS with a 1.5 GB cap on DuckDB."""
    levels = ", ".join(f"{level_sql(c, prep)} AS g{i}" for i, c in enumerate(spec.comparisons))
    tf = "".join(
        f", l.{prep.tf[c.name]} AS tf{i}" for i, c in enumerate(spec.comparisons) if c.name in prep.tf
    )
    p = ident(prep.table)
    select = (f"SELECT q.*, {levels}{tf}{extra} FROM {ident(pairs)} q "
              f"JOIN {p} l ON l.__rid = q.l JOIN {p} r ON r.__rid = q.r")
    for k, cond in enumerate(_batches(con, pairs)):
        if k == 0:
            con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {ident(out)} AS {select} WHERE {cond}")
        else:
            con.execute(f"INSERT INTO {ident(out)} {select} WHERE {cond}")
