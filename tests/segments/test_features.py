"""Features against a data set computed by hand (as_of 2026-11-01), and the skipped-row counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crmtool.errors import ConfigError, InputError

BODY = """
features:
  big_orders: "value_per_order > 100"          # depends on a feature declared after it
  value_per_order: "monetary_total / nullif(frequency, 0)"
  opens_90d: {events: email_open, days: 90}
  clicks_90d: {events: [email_click], days: 90}
  visits_all: {events: web_visit}
segments:
  - {name: everyone, when: "TRUE"}
"""

ORDERS = [
    ["C1", "01/10/2026", "100,00", "web"],
    ["C1", "20/10/2026", "50,50", "store"],
    ["C2", "15/01/2026", "1.234,56", "app"],
    ["C4", "2026-10-30", "10", "web"],
    ["C4", "30/10/2026", "5,5", "store"],
    ["C5", "01/03/2024", "20,00", "phone"],
    # bad rows, one per reason
    ["C9", "01/10/2026", "10,00", "web"],  # unknown customer
    ["C1", "02/10/2026", "-5,00", "web"],  # negative amount
    ["C2", "03/10/2026", "", "web"],  # missing amount
    ["C4", "05/11/2026", "7,00", "web"],  # after as_of
    ["C5", "31/02/2026", "7,00", "web"],  # no such day
]
EVENTS = [
    ["C1", "email_open", "2026-10-15 10:00:00", "email"],
    ["C1", "email_open", "2026-07-01 10:00:00", "email"],  # outside 90 days
    ["C1", "email_click", "2026-10-31 23:00:00", "email"],
    ["C2", "email_open", "2026-08-04 08:00:00", "email"],  # first day inside the 90-day window
    ["C5", "email_open", "2026-08-03 08:00:00", "email"],  # last day outside it
    ["C3", "web_visit", "2026-10-25 12:00:00", "web"],
    ["C2", "email_open", "2026-12-01 08:00:00", "email"],  # future
    ["C8", "email_open", "2026-10-01 08:00:00", "email"],  # unknown customer
    ["C3", "web_visit", "yesterday", "web"],  # unparseable
]


@pytest.fixture
def result(ws, kit):  # type: ignore[no-untyped-def]
    customers = kit.customers(["C1", "C2", "C3", "C4", "C5"])
    return kit.run(ws, BODY, customers, ORDERS, EVENTS)


def test_rfm_inputs_match_hand_computation(ws, kit, result) -> None:  # type: ignore[no-untyped-def]
    got = kit.features(ws, "frequency", "monetary_total", "monetary_avg", "first_order_date", "last_order_date",
                       "recency_days", "tenure_days")
    assert got["C1"] == (2, Decimal("150.50"), Decimal("75.25"), date(2026, 10, 1), date(2026, 10, 20), 12, 304)
    assert got["C2"] == (1, Decimal("1234.56"), Decimal("1234.56"), date(2026, 1, 15), date(2026, 1, 15), 290, 304)
    assert got["C3"] == (0, Decimal("0"), None, None, None, None, 304)
    assert got["C4"] == (2, Decimal("15.50"), Decimal("7.75"), date(2026, 10, 30), date(2026, 10, 30), 2, 304)
    assert got["C5"] == (1, Decimal("20.00"), Decimal("20.00"), date(2024, 3, 1), date(2024, 3, 1), 975, 304)


def test_scores_and_rfm_segment(ws, kit, result) -> None:  # type: ignore[no-untyped-def]
    # n = 4 scored customers; score = 1 + 5 * (rank - 1) // 4 with ties sharing the first rank
    got = kit.features(ws, "r_score", "f_score", "m_score", "rfm_score", "rfm_segment")
    assert got["C5"] == (1, 1, 2, "112", "lost")
    assert got["C2"] == (2, 1, 4, "214", "hibernating")
    assert got["C1"] == (3, 3, 3, "333", "loyal")
    assert got["C4"] == (4, 3, 1, "431", "potential_loyalist")
    assert got["C3"] == (None, None, None, None, "no_orders")


def test_event_windows_and_last_contact(ws, kit, result) -> None:  # type: ignore[no-untyped-def]
    got = kit.features(ws, "opens_90d", "clicks_90d", "visits_all", "last_contact_channel", "last_contact_date")
    assert got["C1"] == (1, 1, 0, "email", date(2026, 10, 31))
    assert got["C2"] == (1, 0, 0, "email", date(2026, 8, 4))  # 2026-08-04 is inside, the order is older
    assert got["C5"] == (0, 0, 0, "email", date(2026, 8, 3))  # 2026-08-03 is outside the window
    assert got["C3"] == (0, 0, 1, "web", date(2026, 10, 25))
    assert got["C4"][3] == "web"  # two orders on one day: the channel that sorts last wins (deterministic)


def test_user_sql_features_in_dependency_order(ws, kit, result) -> None:  # type: ignore[no-untyped-def]
    got = kit.features(ws, "value_per_order", "big_orders")
    assert got["C2"] == (pytest.approx(1234.56), True)
    assert got["C4"] == (pytest.approx(7.75), False)
    assert got["C3"] == (None, None)


def test_bad_rows_are_counted_never_used(result) -> None:  # type: ignore[no-untyped-def]
    s = result.stats
    assert s.skipped["orders"] == {"unknown_customer": 1, "negative_amount": 1, "missing_amount": 1,
                                   "future_date": 1, "unparseable_date": 1}
    assert s.skipped["events"] == {"future_date": 1, "unknown_customer": 1, "unparseable_date": 1}
    assert (s.orders_read, s.orders_used, s.events_read, s.events_used) == (11, 6, 9, 6)


def test_duplicate_and_blank_customer_ids_reported(ws, kit) -> None:  # type: ignore[no-untyped-def]
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "consent", "signup"],
                         [[" C1 ", "a@x.es", "", "yes", ""], ["C1", "b@x.es", "", "yes", ""],
                          ["", "c@x.es", "", "yes", ""], ["C2", "d@x.es", "", "yes", ""]])
    r = kit.run(ws, "segments: [{name: all, when: 'TRUE'}]", path)
    assert (r.customers, r.stats.duplicate_ids, r.stats.blank_ids) == (2, 1, 1)
    # the first row of a duplicated id wins
    assert kit.features(ws, "email")["C1"] == ("a@x.es",)


def test_cycle_between_features_has_lines(kit) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        kit.spec("features:\n  a: \"b + 1\"\n  b: \"c + 1\"\n  c: \"a + 1\"\nsegments: [{name: s, when: 'TRUE'}]\n")
    assert "segments.yaml:8: cycle between features: a -> b -> c -> a" in str(err.value)


def test_feature_sql_that_does_not_bind_points_at_its_line(ws, kit) -> None:  # type: ignore[no-untyped-def]
    body = "features:\n  x: \"no_such_column * 2\"\nsegments: [{name: s, when: 'TRUE'}]\n"
    with pytest.raises(ConfigError) as err:
        kit.run(ws, body, kit.customers(["C1"]))
    assert str(err.value).startswith("segments.yaml:8: feature 'x':")
    assert "no_such_column" in str(err.value)


def test_missing_mapped_column_is_an_input_error(ws, kit) -> None:  # type: ignore[no-untyped-def]
    path = kit.write_csv("c.csv", ["id", "email"], [["C1", "a@x.es"]])
    with pytest.raises(InputError, match="no column 'customer_id'"):
        kit.run(ws, "segments: [{name: s, when: 'TRUE'}]", path)


def test_missing_consent_column_is_an_input_error_unless_null(ws, kit) -> None:  # type: ignore[no-untyped-def]
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "signup"], [["C1", "a@x.es", "", ""]])
    body = "segments: [{name: s, when: 'TRUE'}]\n"
    with pytest.raises(InputError, match="no consent column 'consent'"):
        kit.run(ws, body, path)
    from crmtool.segments import api
    from crmtool.segments.spec import parse_segments_text

    spec = parse_segments_text("version: 1\ninputs: {customers: {consent: null}}\n" + body, "s.yaml", kit.tmp)
    r = api.segment(ws, path, spec, out_dir=kit.tmp / "o", as_of=kit.as_of)
    assert r.segments[0].send == 1
    assert any("consent not checked" in n for n in r.notes)


def test_sql_that_fails_on_the_data_is_an_engine_error(ws, kit) -> None:  # type: ignore[no-untyped-def]
    from crmtool.errors import EngineError

    body = "features:\n  n: \"CAST(email AS INTEGER)\"\nsegments: [{name: s, when: {field: n, gt: 1}}]\n"
    with pytest.raises(EngineError, match=r"DuckDB refused a step built from segments\.yaml: Conversion Error"):
        kit.run(ws, body, kit.customers(["C1"]))


def test_ids_with_white_space_merge_into_the_same_features(ws, kit, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # ids written as kept skip the merge of raw-id groups; padded ids ("C1 " and "C1") are merged:
    # both give the same features and counts
    cols = ("frequency", "monetary_total", "monetary_avg", "last_order_date", "opens_90d", "clicks_90d",
            "last_contact_channel")
    customers = kit.customers(["C1", "C2", "C3", "C4", "C5"])
    plain = kit.run(ws, BODY, customers, ORDERS, EVENTS)
    want = kit.features(ws, *cols)
    padded_orders = [[f" {r[0]}" if i % 2 else f"{r[0]}\t", *r[1:]] for i, r in enumerate(ORDERS)]
    padded_events = [[f"{r[0]} " if i % 3 else r[0], *r[1:]] for i, r in enumerate(EVENTS)]
    padded = kit.run(ws, BODY, customers, padded_orders, padded_events, out="out2")
    assert kit.features(ws, *cols) == want
    assert padded.stats.skipped == plain.stats.skipped
    assert (padded.stats.orders_used, padded.stats.events_used) == (plain.stats.orders_used, plain.stats.events_used)
    assert want["C1"][:3] == (2, Decimal("150.50"), Decimal("75.25"))
