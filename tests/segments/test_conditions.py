"""Conditions at a fixed as_of: relative dates, comparisons with missing values, raw SQL, unknown names."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from crmtool.errors import ConfigError

AS_OF = date(2026, 11, 1)


@pytest.fixture
def data(ws, kit):  # type: ignore[no-untyped-def]
    # one order per customer on a day chosen around the window edges; C0 never ordered
    days = {"C1": 0, "C2": 29, "C3": 30, "C4": 31, "C5": 400}
    orders = [[cid, (AS_OF - timedelta(days=d)).strftime("%d/%m/%Y"), str(10 * (i + 1)), "web"]
              for i, (cid, d) in enumerate(days.items())]
    return kit.customers(["C0", *days]), orders


def members(ws, kit, data, when: str) -> set[str]:  # type: ignore[no-untyped-def]
    customers, orders = data
    kit.run(ws, f"segments:\n  - name: s\n    when: {when}\n", customers, orders)
    return {r[0] for r in ws.con.execute("SELECT customer_id FROM seg_members").fetchall()}


def test_within_last_30_days_includes_as_of_and_29_days_before(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    assert members(ws, kit, data, "{field: last_order_date, within: last 30 days}") == {"C1", "C2"}
    assert members(ws, kit, data, "{field: last_order_date, within: last 1 month}") == {"C1", "C2", "C3"}


def test_not_within_includes_missing_values(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    assert members(ws, kit, data, "{field: last_order_date, not_within: last 30 days}") == {"C0", "C3", "C4", "C5"}


def test_before_after_relative_and_iso(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    assert members(ws, kit, data, "{field: last_order_date, before: 30 days ago}") == {"C4", "C5"}
    assert members(ws, kit, data, "{field: last_order_date, after: '2026-10-02'}") == {"C1", "C2"}
    assert members(ws, kit, data, "{field: last_order_date, eq: as_of}") == {"C1"}


def test_comparisons_with_missing_values_and_not(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    assert members(ws, kit, data, "{field: recency_days, lt: 31}") == {"C1", "C2", "C3"}
    # C0 has no recency: the comparison is false, so its negation holds
    assert members(ws, kit, data, "{not: {field: recency_days, lt: 31}}") == {"C0", "C4", "C5"}
    assert members(ws, kit, data, "{field: recency_days, is_null: true}") == {"C0"}
    assert members(ws, kit, data, "{field: recency_days, between: [29, 31]}") == {"C2", "C3", "C4"}


def test_in_any_all_and_raw_sql(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    assert members(ws, kit, data, "{field: customer_id, in: [C1, C5]}") == {"C1", "C5"}
    assert members(ws, kit, data, "{field: customer_id, not_in: [C1, C5]}") == {"C0", "C2", "C3", "C4"}
    assert members(ws, kit, data, "{any: [{field: customer_id, eq: C0}, {all: [{field: frequency, eq: 1}, "
                                  "{field: monetary_total, gte: 40}]}]}") == {"C0", "C4", "C5"}
    assert members(ws, kit, data, "{sql: \"monetary_total > 30 AND customer_id <> 'C5'\"}") == {"C4"}


def test_unknown_field_reported_with_line(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    customers, orders = data
    with pytest.raises(ConfigError) as err:
        kit.run(ws, "segments:\n  - name: s\n    when: {any: [{field: frequency, gt: 1},\n"
                    "                 {field: freqency, gt: 1}]}\n", customers, orders)
    assert "segments.yaml:10: unknown feature or column 'freqency'" in str(err.value)


def test_raw_sql_that_does_not_bind_reported_with_line(ws, kit, data) -> None:  # type: ignore[no-untyped-def]
    customers, orders = data
    with pytest.raises(ConfigError) as err:
        kit.run(ws, "segments:\n  - name: s\n    when: \"nosuch > 1\"\n", customers, orders)
    assert str(err.value).startswith("segments.yaml:9: segment 's':")
