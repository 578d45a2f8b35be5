"""The quintile tie rule at its edges: score = 1 + floor(5 * (rank - 1) / n), ties share the first rank."""

from __future__ import annotations

import pytest


def f_scores(ws, kit, freqs: list[int]) -> dict[int, set[int]]:  # type: ignore[no-untyped-def]
    """Run customers with the given order counts; frequency -> the F scores seen for it."""
    ids = [f"C{i:02d}" for i in range(len(freqs))]
    orders = [[cid, f"{1 + k:02d}/10/2026", "10,00", "web"]
              for cid, f in zip(ids, freqs, strict=True) for k in range(f)]
    kit.run(ws, "segments: [{name: all, when: 'TRUE'}]", kit.customers(ids), orders)
    out: dict[int, set[int]] = {}
    for freq, score in ws.con.execute("SELECT frequency, f_score FROM seg_features").fetchall():
        out.setdefault(int(freq), set()).add(score)
    return out


def test_distinct_values_split_into_even_fifths(ws, kit) -> None:  # type: ignore[no-untyped-def]
    got = f_scores(ws, kit, list(range(1, 11)))
    assert [next(iter(got[f])) for f in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_a_large_tie_shares_the_score_of_its_first_member_and_skips_scores(ws, kit) -> None:  # type: ignore[no-untyped-def]
    # 6 of 10 customers with one order: ranks 1..6 tie at rank 1 -> F=1; the next value has rank 7 -> F=4
    got = f_scores(ws, kit, [1, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    assert got == {1: {1}, 2: {4}, 3: {4}, 4: {5}, 5: {5}}


def test_everyone_equal_scores_one_and_no_orders_scores_nothing(ws, kit) -> None:  # type: ignore[no-untyped-def]
    got = f_scores(ws, kit, [3, 3, 3, 3, 0])
    assert got == {3: {1}, 0: {None}}


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_small_groups_stay_within_1_to_5(ws, kit, n: int) -> None:  # type: ignore[no-untyped-def]
    got = f_scores(ws, kit, list(range(1, n + 1)))
    scores = [next(iter(got[f])) for f in range(1, n + 1)]
    assert scores == sorted(scores) and scores[0] == 1 and max(scores) <= 5
    assert scores == [1 + 5 * i // n for i in range(n)]


def test_ranks_over_distinct_values_give_the_window_ranks() -> None:
    """Spark scores RFM through scores_by_distinct_sql (a window over distinct values, not one task
    over every customer); it must give rank()'s scores, ties and NULLs (last) included."""
    import datetime

    import duckdb
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from crmtool.segments.features import scores_by_distinct_sql, scores_sql

    con = duckdb.connect()
    dates = st.none() | st.dates(datetime.date(2025, 1, 1), datetime.date(2025, 1, 20))
    counts = st.none() | st.integers(1, 6)
    totals = st.none() | st.decimals("0", "50", places=2)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(dates, counts, totals), max_size=80))
    def same(rows: list[tuple[object, object, object]]) -> None:
        con.execute("CREATE OR REPLACE TABLE seg_order_agg (customer_id VARCHAR, last_order_date DATE, "
                    "frequency BIGINT, monetary_total DECIMAL(18,2))")
        if rows:
            con.executemany("INSERT INTO seg_order_agg VALUES (?, ?, ?, ?)",
                            [(f"C{i}", *row) for i, row in enumerate(rows)])
        window = con.execute(f"SELECT * FROM ({scores_sql(len(rows))}) ORDER BY 1").fetchall()
        distinct = con.execute(f"SELECT * FROM ({scores_by_distinct_sql(len(rows))}) ORDER BY 1").fetchall()
        assert distinct == window

    same()
