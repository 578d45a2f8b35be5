"""DuckDB's ``jaro_winkler_similarity`` in Python, for engines that lack it (Spark before 4.3).

Spark runs it once per distinct pair of values (``map_values``), never per record pair, and it must
give DuckDB's value to the last bit, because a level boundary (``jw >= 0.9``) may sit on it. DuckDB
(its vendored ``duckdb_jaro_winkler``, after rapidfuzz) compares code points; a match window of
``max(len) // 2 - 1``; empty strings score 0; ``(m/|a| + m/|b| + (m - t//2)/m) / 3`` summed in that
order; the Winkler boost (prefix up to 4, weight 0.1) only above 0.7, and its build computes the boost
``sim + prefix * 0.1 * (1 - sim)`` as one fused multiply-add (one rounding), which is what
:func:`_fma` reproduces (tests/dedupe/test_similarity.py holds the two equal under hypothesis).
"""

from __future__ import annotations

from fractions import Fraction

#: separates nothing: a pair travels as ``<len(a)>:<a><b>`` (see :func:`pair_value_sql`)
PAIR_SEPARATOR = ":"


def _fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once (Python 3.11 has no math.fma)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def jaro(p: str, t: str) -> float:
    """Jaro similarity as DuckDB computes it."""
    lp, lt = len(p), len(t)
    if not lp or not lt:
        return 0.0
    if lp == 1 and lt == 1:
        return float(p == t)
    bound = max(max(lp, lt) // 2 - 1, 0)
    p_flag = [False] * lp
    t_flag = [False] * lt
    common = 0
    for i, ch in enumerate(t):
        for j in range(max(0, i - bound), min(lp, i + bound + 1)):
            if not p_flag[j] and p[j] == ch:
                p_flag[j] = t_flag[i] = True
                common += 1
                break
    if not common:
        return 0.0
    transpositions, k = 0, 0
    for i in range(lt):
        if t_flag[i]:
            while not p_flag[k]:
                k += 1
            transpositions += t[i] != p[k]
            k += 1
    sim = 0.0
    sim += common / lp
    sim += common / lt
    sim += (common - transpositions // 2) / common
    return sim / 3.0


def jaro_winkler_similarity(a: str, b: str) -> float:
    """DuckDB's ``jaro_winkler_similarity(a, b)`` (prefix weight 0.1), to the last bit."""
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    sim = jaro(a, b)
    if sim > 0.7:
        sim = _fma(prefix * 0.1, 1.0 - sim, sim)
    return sim


def pair_value_sql(a: str, b: str) -> str:
    """SQL of one text value that carries the pair ``(a, b)`` (NULL when either is): the length of
    ``a`` in characters, ``:``, then ``a`` and ``b`` (any text, no separator to escape)."""
    return f"CAST(length({a}) AS VARCHAR) || '{PAIR_SEPARATOR}' || {a} || {b}"


def jaro_winkler_of_pair(value: str) -> tuple[float]:
    """The per-value function of a pair value (:func:`pair_value_sql`): (similarity,)."""
    head, _, rest = value.partition(PAIR_SEPARATOR)
    n = int(head)
    return (jaro_winkler_similarity(rest[:n], rest[n:]),)
