"""Typed orders and events (Parquet with DATE, TIMESTAMP and DECIMAL columns) take the two-pass
aggregation of crmtool.segments.features (usable rows alone, skipped rows counted apart): the same
features, counts and skip reasons as the one-pass aggregation that text inputs take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from crmtool.segments import features

BODY = """
features:
  opens_90d: {events: email_open, days: 90}
  visits_all: {events: web_visit}
segments:
  - {name: everyone, when: "TRUE"}
  - {name: buyers, when: "frequency >= 1"}
"""

ORDERS = """VALUES
    ('C1', DATE '2026-10-01', 100.00, 'web'), ('C1', DATE '2026-10-20', 50.50, 'store'),
    ('C1 ', DATE '2026-10-21', 1.00, NULL),             -- padded id: merged into C1
    ('C2', DATE '2026-01-15', 1234.56, 'app'),
    ('C3', DATE '2026-12-24', 9.00, 'web'),               -- C3 has only a skipped order (future)
    ('C9', DATE '2026-10-01', 10.00, 'web'),              -- unknown customer
    ('C1', DATE '2026-10-02', -5.00, 'web'),              -- negative amount
    ('C2', DATE '2026-10-03', NULL, 'web'),               -- missing amount
    ('C4', NULL, 7.00, 'web'),                            -- no date
    ('C4', DATE '2026-10-30', 10.00, 'web'), ('C4', DATE '2026-10-30', 5.50, 'store')"""
EVENTS = """VALUES
    ('C1', 'email_open', TIMESTAMP '2026-10-15 10:00:00', 'email'),
    ('C1', 'Email_Open ', TIMESTAMP '2026-10-16 10:00:00', 'email'),
    ('C2', 'email_open', TIMESTAMP '2026-12-01 08:00:00', 'email'),   -- future
    ('C5', 'web_visit', NULL, 'web'),                                 -- C5: only an unparseable event
    ('C8', 'email_open', TIMESTAMP '2026-10-01 08:00:00', 'email'),   -- unknown customer
    ('C3 ', 'web_visit', TIMESTAMP '2026-10-25 12:00:00', NULL)"""


def _parquet(tmp: Path, name: str, values: str, columns: str) -> Path:
    path = tmp / f"{name}.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM ({values}) v({columns})) TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def _run(ws: Any, kit: Any, orders: Path, events: Path, out: str) -> tuple[Any, list[tuple[Any, ...]]]:
    from crmtool.segments import api

    customers = kit.customers(["C1", "C2", "C3", "C4", "C5"])
    result = api.segment(ws, customers, kit.spec(BODY), out_dir=kit.tmp / out, orders=orders, events=events,
                         as_of=kit.as_of)
    rows = ws.con.execute("SELECT * FROM seg_features ORDER BY customer_id").fetchall()
    return result, rows


@pytest.mark.parametrize("clean", [False, True], ids=["with skipped rows", "nothing skipped"])
def test_typed_inputs_give_what_the_one_pass_aggregation_gives(ws, kit, monkeypatch, clean) -> None:  # type: ignore[no-untyped-def]
    orders, events = ORDERS, EVENTS
    if clean:  # no row to skip: the skipped-rows pass finds nothing and the join is left out
        orders = "VALUES ('C1', DATE '2026-10-01', 100.00, 'web'), ('C2 ', DATE '2026-01-15', 12.00, NULL)"
        events = "VALUES ('C1', 'email_open', TIMESTAMP '2026-10-15 10:00:00', 'email')"
    o = _parquet(kit.tmp, "orders", orders, "customer_id, order_date, amount, channel")
    e = _parquet(kit.tmp, "events", events, "customer_id, event_type, occurred_at, channel")
    passes = []
    real = features._raw_typed
    monkeypatch.setattr(features, "_raw_typed", lambda *a, **k: passes.append(a[-1]) or real(*a, **k))
    typed, typed_rows = _run(ws, kit, o, e, "typed")
    assert passes == ["seg_order_agg_raw", "seg_event_agg_raw"]  # both inputs took the two-pass way
    monkeypatch.setattr(features, "_is_date", lambda ctype: False)  # as text inputs: one pass
    one, one_rows = _run(ws, kit, o, e, "one")
    assert passes == ["seg_order_agg_raw", "seg_event_agg_raw"]
    assert typed_rows == one_rows
    assert typed.stats.as_dict() == one.stats.as_dict()
    counts = ("name", "matched", "members", "holdout", "excluded", "send")
    assert [[getattr(c, k) for k in counts] for c in typed.segments] == \
        [[getattr(c, k) for k in counts] for c in one.segments]
    assert kit.rows("typed/memberships.csv") == kit.rows("one/memberships.csv")
    if not clean:
        assert typed.stats.skipped == {
            "orders": {"future_date": 1, "missing_amount": 1, "negative_amount": 1, "unknown_customer": 1,
                       "unparseable_date": 1},
            "events": {"future_date": 1, "unknown_customer": 1, "unparseable_date": 1},
        }
        by_id = {r[0]: r for r in typed_rows}
        assert set(by_id) == {"C1", "C2", "C3", "C4", "C5"}
