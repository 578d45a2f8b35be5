"""The clv feature: inputs computed like pymc-marketing's rfm_summary, the model's outputs, the
historical-only mode, and the message when the optional library is missing."""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from crmtool.errors import ConfigError
from crmtool.segments import api
from crmtool.segments.spec import parse_segments_text
from crmtool.workspace import Workspace

AS_OF = date(2026, 11, 1)
HAS_PYMC_MARKETING = importlib.util.find_spec("pymc_marketing") is not None
needs_model = pytest.mark.skipif(not HAS_PYMC_MARKETING, reason="pymc-marketing (extra 'clv') is not installed")
# the model tests (marked slow) fit BG/NBD and Gamma-Gamma; PyTensor compiles them on first use


def _spec(clv: str, segment: str = "TRUE"):  # type: ignore[no-untyped-def]
    return parse_segments_text(f"""
inputs:
  customers: {{id: customer_id, consent: null}}
{clv}
segments:
  - {{name: everyone, when: "{segment}"}}
""")


def _orders(tmp_path: Path, customers: int = 400, seed: int = 5) -> tuple[Path, Path]:
    """Buy-till-you-die customers: a purchase rate each, and a dropout after any purchase."""
    rng = np.random.default_rng(seed)
    rows = []
    start = AS_OF - timedelta(days=720)
    for c in range(customers):  # test data of a few hundred customers, built once
        rate, p_drop = rng.gamma(0.8, 1 / 25), rng.beta(1.0, 4.0)
        day = float(rng.integers(0, 600))
        while day < 720:
            rows.append((f"K{c:04d}", start + timedelta(days=int(day)), round(float(rng.gamma(4, 12)), 2)))
            if rng.random() < p_drop:
                break
            day += rng.exponential(1 / rate)
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text("customer_id\n" + "".join(f"K{c:04d}\n" for c in range(customers + 5)))
    orders_csv = tmp_path / "orders.csv"
    orders_csv.write_text("customer_id,order_date,amount\n" + "".join(f"{c},{d.isoformat()},{a}\n" for c, d, a in rows))
    return customers_csv, orders_csv


def test_historical_only_needs_no_library(ws: Workspace, tmp_path: Path) -> None:
    customers, orders = _orders(tmp_path, 50)
    res = api.preview(ws, customers, _spec("clv: {model: historical}", "clv_historical > 100"), orders=orders,
                      as_of=AS_OF)
    got = ws.con.execute("SELECT count(*) FILTER (WHERE clv_historical <> monetary_total), count(clv_predicted), "
                         "count(churn_probability), count(*) FILTER (WHERE clv_historical > 100) FROM seg_features"
                         ).fetchall()
    assert got == [(0, 0, 0, res.segments[0].members)]


def test_clv_names_are_reserved_when_the_section_is_there() -> None:
    with pytest.raises(ConfigError, match="feature 'churn_probability' is built in"):
        parse_segments_text("clv: {}\nfeatures:\n  churn_probability: '1'\nsegments:\n  - {name: a, when: 'TRUE'}\n")
    with pytest.raises(ConfigError, match="model"):
        parse_segments_text("clv: {model: magic}\nsegments:\n  - {name: a, when: 'TRUE'}\n")


def test_missing_library_is_a_configuration_error_with_the_way_to_enable_it(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pymc_marketing" else real(name, *a))
    customers, orders = _orders(tmp_path, 30)
    with pytest.raises(ConfigError, match="needs pymc-marketing") as err:
        api.preview(ws, customers, _spec("clv: {model: bgnbd}"), orders=orders, as_of=AS_OF)
    assert "pip install 'crmtool[clv]'" in err.value.hint


@pytest.mark.slow
@needs_model
def test_model_inputs_are_rfm_summary(ws: Workspace, tmp_path: Path) -> None:
    import warnings

    import pandas as pd

    with warnings.catch_warnings():  # the library's stack warns on import (BLAS, arviz versions)
        warnings.simplefilter("ignore")
        from pymc_marketing.clv.utils import rfm_summary

    from crmtool.segments.clv import summary_sql

    customers, orders = _orders(tmp_path, 200)
    api.preview(ws, customers, _spec("clv: {model: historical}"), orders=orders, as_of=AS_OF)
    ours = ws.con.execute(f"SELECT * FROM ({summary_sql(AS_OF)}) ORDER BY customer_id").df()
    tx = pd.read_csv(orders, parse_dates=["order_date"])
    ref = rfm_summary(tx, "customer_id", "order_date", "amount", observation_period_end=pd.Timestamp(AS_OF),
                      time_unit="D").sort_values("customer_id").reset_index(drop=True)
    assert list(ours["customer_id"]) == list(ref["customer_id"])
    for col in ("frequency", "recency", "T", "monetary_value"):
        assert np.allclose(ours[col].to_numpy(), ref[col].to_numpy().astype(float)), col


@pytest.mark.slow
@needs_model
def test_bgnbd_predictions(ws: Workspace, tmp_path: Path) -> None:
    customers, orders = _orders(tmp_path, 400)
    spec = _spec("clv: {model: bgnbd, months: 12}", "churn_probability > 0.5 AND clv_predicted < 50")
    res = api.preview(ws, customers, spec, orders=orders, as_of=AS_OF)
    rows = ws.con.execute("SELECT frequency, recency_days, churn_probability, clv_predicted, clv_historical "
                          "FROM seg_features").fetchall()
    buyers = [r for r in rows if r[0] > 0]
    assert len(rows) == 405 and all(r[2] is None and r[3] is None for r in rows if r[0] == 0)
    assert all(0 <= r[2] <= 1 and r[3] >= 0 for r in buyers)
    repeat = [r for r in buyers if r[0] >= 3]
    recent = [r[2] for r in repeat if r[1] <= 30]
    gone = [r[2] for r in repeat if r[1] >= 365]
    # repeat buyers silent for a year are far more likely churned than those who bought this month
    assert recent and gone and np.mean(gone) > np.mean(recent) + 0.3
    assert 0 < res.segments[0].members < len(buyers)
