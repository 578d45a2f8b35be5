"""campaign results: orders in the window per arm (DuckDB), comparisons against the holdout."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from crmtool.campaigns.api import campaign_results, start_campaign
from crmtool.errors import UsageError
from crmtool.status import Status
from crmtool.workspace import Workspace

from .conftest import record_segment_run

START = date(2026, 9, 1)


def _members(ws: Workspace, arm: str) -> list[str]:
    return [r[0] for r in ws.con.execute(
        "SELECT customer_id FROM crm_campaign_members WHERE arm = ? ORDER BY 1", [arm]).fetchall()]


def test_small_campaign_counts_by_hand(ws: Workspace, tmp_path: Path) -> None:
    record_segment_run(ws, "r1", "vip", range(1, 401))
    start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, holdout=25, cost=100.0, start_date=START)
    send, hold = _members(ws, "send"), _members(ws, "holdout")
    lines = ["order_id;customer_id;order_date;amount"]
    # two sent customers buy (one twice, with a space in the id), one holdout customer buys nothing
    # in the window (before it, after it, a negative amount), and an unknown customer buys
    lines += [f"1;{send[0]};02/09/2026;10,00", f"2; {send[0]} ;15/09/2026;30,00", f"3;{send[1]};30/09/2026;60,00",
              f"4;{hold[0]};31/08/2026;99,00", f"5;{hold[0]};01/10/2026;99,00", f"6;{hold[0]};05/09/2026;-5,00",
              "7;C9999999;05/09/2026;70,00"]
    orders = tmp_path / "orders.csv"
    orders.write_text("\n".join(lines) + "\n")
    res = campaign_results(ws, "spring", orders=orders, window_days=30)
    g = res.groups[0]
    arms = {a.arm: a for a in g.arms}
    assert (arms["send"].customers, arms["send"].conversions, arms["send"].orders) == (len(send), 2, 3)
    assert arms["send"].revenue == pytest.approx(100.0)
    assert arms["send"].aov == pytest.approx(100 / 3)
    assert arms["send"].revenue_per_customer == pytest.approx(100 / len(send))
    assert (arms["holdout"].conversions, arms["holdout"].revenue, arms["holdout"].aov) == (0, 0.0, None)
    (c,) = g.comparisons
    assert c.relative_uplift is None and c.relative_low is None  # no holdout conversion: no ratio
    ref = confint_proportions_2indep(2, len(send), 0, len(hold), method="newcomb", compare="diff")
    assert (c.uplift_low, c.uplift_high) == pytest.approx(tuple(ref))
    assert c.incremental_revenue == pytest.approx(100.0)  # holdout spent nothing in the window
    assert c.roi == pytest.approx(0.0)
    assert res.status is Status.WARN and "holdout too small to conclude" in res.warnings[0]
    assert res.inputs == {"orders_read": 7, "orders_in_window": 4}  # the unknown customer too
    metrics = dict(ws.con.execute("SELECT name || ' ' || dimension, value FROM crm_metrics "
                                  "WHERE step = 'campaign' AND run_id = ?", [res.run_id]).fetchall())
    assert metrics["customers spring/send"] == len(send)
    assert metrics["uplift spring/send"] == pytest.approx(c.uplift)
    assert ws.con.execute("SELECT status, exit_code FROM crm_runs WHERE run_id = ?", [res.run_id]).fetchall() == [
        ("warn", 0)]


def _generated(ws: Workspace, tmp_path: Path, rates: dict[str, float], customers: int = 40_000) -> Path:
    """A campaign whose arms convert at known rates; orders generated in DuckDB from id hashes."""
    record_segment_run(ws, "r1", "vip", range(1, customers + 1))
    start_campaign(ws, "ab", segment="vip", out_dir=tmp_path, variants=[("A", 0.3), ("B", 0.7)], holdout=20,
                   global_control=5, cost=5000.0, start_date=START)
    cases = " ".join(f"WHEN '{a}' THEN {r}" for a, r in rates.items())
    orders = tmp_path / "orders.parquet"
    # the workspace session is walled (no file access outside its sandbox): the fixture is written
    # by a plain connection attached to the same data
    members = ws.con.sql("SELECT customer_id, arm FROM crm_campaign_members").to_arrow_table()  # noqa: F841
    duckdb.execute(f"""
        COPY (SELECT customer_id, DATE '2026-09-01' + CAST(hash(customer_id, 1) % 30 AS INTEGER) AS order_date,
                     CAST(20 + hash(customer_id, 2) % 8000 / 100.0 AS DECIMAL(18,2)) AS amount
              FROM members
              WHERE hash(customer_id, 3) % 100000 < 100000 * CASE arm {cases} END)
        TO '{orders}' (FORMAT parquet)""")
    return orders


def test_known_effect_matches_statsmodels_and_is_found(ws: Workspace, tmp_path: Path) -> None:
    orders = _generated(ws, tmp_path, {"A": 0.09, "B": 0.06, "holdout": 0.05, "global_control": 0.05})
    res = campaign_results(ws, "ab", orders=orders, window_days=30)
    g = res.groups[0]
    arms = {a.arm: a for a in g.arms}
    h = arms["holdout"]
    comps = {c.arm: c for c in g.comparisons}
    assert set(comps) == {"A", "B", "all_variants"}
    for name, truth in (("A", 0.04), ("B", 0.01)):
        a = arms[name]
        ref = confint_proportions_2indep(a.conversions, a.customers, h.conversions, h.customers,
                                         method="newcomb", compare="diff")
        c = comps[name]
        assert (c.uplift_low, c.uplift_high) == pytest.approx(tuple(ref), abs=1e-12)
        assert c.uplift_low <= truth <= c.uplift_high
    assert comps["A"].significant and comps["A"].uplift_low > 0
    assert g.winner == "A"  # A beats B with the interval above 0
    assert comps["all_variants"].cost == 5000.0
    assert comps["A"].cost + comps["B"].cost == pytest.approx(5000.0)
    assert res.status is Status.PASS and res.warnings == []


def test_no_winner_when_intervals_overlap(ws: Workspace, tmp_path: Path) -> None:
    orders = _generated(ws, tmp_path, {"A": 0.06, "B": 0.06, "holdout": 0.05, "global_control": 0.05},
                        customers=6000)
    res = campaign_results(ws, "ab", orders=orders, window_days=30)
    assert res.groups[0].winner is None


def test_breakdown_by_segment_and_by_column(ws: Workspace, tmp_path: Path) -> None:
    orders = _generated(ws, tmp_path, {"A": 0.2, "B": 0.2, "holdout": 0.1, "global_control": 0.1}, customers=2000)
    ws.con.execute("INSERT INTO segments_membership SELECT 'r1', 'other', customer_id, 'send', NULL "
                   "FROM segments_membership WHERE run_id = 'r1' AND customer_id < 'C0000500'")
    res = campaign_results(ws, "ab", orders=orders, window_days=30, by="segment")
    groups = {g.value: g for g in res.groups}
    assert set(groups) == {None, "vip", "other"}
    total = sum(a.customers for a in groups[None].arms)
    assert sum(a.customers for a in groups["vip"].arms) == total
    assert sum(a.customers for a in groups["other"].arms) == 499
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,city\n" + "".join(
        f"C{i:07d},{'Bilbao' if i % 3 else 'Vigo'}\n" for i in range(1, 2001)))
    res = campaign_results(ws, "ab", orders=orders, window_days=30, by="city", customers=customers)
    groups = {g.value: g for g in res.groups}
    assert set(groups) == {None, "Bilbao", "Vigo"}
    assert sum(a.customers for a in groups["Vigo"].arms) == 666


def test_events_count_as_conversions(ws: Workspace, tmp_path: Path) -> None:
    record_segment_run(ws, "r1", "vip", range(1, 201))
    start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, start_date=START)
    send = _members(ws, "send")
    orders = tmp_path / "orders.csv"
    orders.write_text(f"customer_id,order_date,amount\n{send[0]},2026-09-03,10.5\n")
    events = tmp_path / "events.csv"
    events.write_text("customer_id,event_type,occurred_at\n"
                      f"{send[1]},Signup ,2026-09-02 10:00:00\n{send[2]},signup,2026-11-02 10:00:00\n"
                      f"{send[3]},email_open,2026-09-02 10:00:00\n")
    res = campaign_results(ws, "spring", orders=orders, window_days=30, events=events, conversion_event="signup")
    arms = {a.arm: a for a in res.groups[0].arms}
    assert arms["send"].conversions == 2 and arms["send"].orders == 1
    with pytest.raises(UsageError, match="conversion-event"):
        campaign_results(ws, "spring", orders=orders, window_days=30, events=events)
    with pytest.raises(UsageError, match="no campaign named"):
        campaign_results(ws, "nope", orders=orders, window_days=30)
