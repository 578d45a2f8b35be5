"""The Python Jaro-Winkler Spark runs per distinct pair gives DuckDB's value to the last bit."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.dedupe.similarity import jaro_winkler_of_pair, jaro_winkler_similarity, pair_value_sql

# short words over small alphabets make matches, transpositions and the > 0.7 boost common
WORD = st.text(alphabet=st.sampled_from("abcd"), max_size=12)
NAMES = st.text(alphabet=st.sampled_from("abcdefghijklmnñopqrstuvwxyzé 漢"), max_size=24)
LONG = st.text(alphabet=st.sampled_from("ab"), max_size=90)  # past one 64-bit word of DuckDB's bit-parallel path
ANY = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=16)


def _duckdb(pairs: list[tuple[str, str]]) -> list[float]:
    con = duckdb.connect()
    con.execute("CREATE TABLE p (i INTEGER, a VARCHAR, b VARCHAR)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?)", [(i, a, b) for i, (a, b) in enumerate(pairs)])
    return [r[0] for r in con.execute("SELECT jaro_winkler_similarity(a, b) FROM p ORDER BY i").fetchall()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.tuples(WORD, WORD), st.tuples(NAMES, NAMES), st.tuples(LONG, LONG),
                          st.tuples(ANY, ANY)), min_size=1, max_size=200))
def test_jaro_winkler_equals_duckdbs_bit_for_bit(pairs: list[tuple[str, str]]) -> None:
    assert [jaro_winkler_similarity(a, b) for a, b in pairs] == _duckdb(pairs)


def test_known_values_and_the_pair_value() -> None:
    assert jaro_winkler_similarity("martha", "marhta") == _duckdb([("martha", "marhta")])[0]
    assert jaro_winkler_similarity("", "") == 0.0 == _duckdb([("", "")])[0]
    con = duckdb.connect()
    for a, b in [("ab:c", "d"), ("", "x"), ("漢字", "ab")]:
        value = con.execute(f"SELECT {pair_value_sql('$1', '$2')}", [a, b]).fetchall()[0][0]
        assert jaro_winkler_of_pair(value) == (jaro_winkler_similarity(a, b),)
    assert con.execute(f"SELECT {pair_value_sql('NULL', chr(39) + 'x' + chr(39))}").fetchall()[0][0] is None
