"""Customer value features: ``clv_historical``, ``clv_predicted`` and ``churn_probability``.

``clv_historical`` is the sum of the customer's valid orders. The two others come from the
BG/NBD purchase model (Fader, Hardie & Lee 2005) and the Gamma-Gamma spend model (Fader, Hardie &
Lee 2005, "RFM and CLV"), as implemented and maintained in ``pymc-marketing`` (an optional
dependency: ``pip install 'crmtool[clv]'``), fitted by maximum a posteriori. Their documented
assumptions (see docs/decisions/0011-campaign-stats.md):

- while active, a customer buys following a Poisson process; purchase rates vary between customers
  following a gamma distribution;
- after any purchase a customer becomes inactive for good with probability p; p varies between
  customers following a beta distribution; dropout and purchase rate are independent;
- the value of a customer's purchases varies around their own mean (gamma), the means vary between
  customers (gamma), and spend is independent of purchase frequency.

Inputs per customer are computed in DuckDB exactly as ``pymc_marketing.clv.utils.rfm_summary``
does with a daily time unit (purchases on the same day count as one, whose value is their sum):
``frequency`` (repeat purchase days), ``recency`` (days from the first to the last purchase day),
``T`` (days from the first purchase to as_of) and ``monetary_value`` (mean value of the repeat
purchase days). Customers without orders, or whose first order is on as_of, get NULL predictions.
The model is fitted on at most :data:`FIT_SAMPLE` customers (a fixed pseudo-random sample) and
predicts for everybody.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

    from crmtool.segments.model import ClvSpec

FIT_SAMPLE = 50_000
MIN_FIT = 20  # fewer customers with repeat purchases than this: no spend model (clv_predicted NULL)
EMPTY = ("SELECT NULL::VARCHAR AS customer_id, NULL::DOUBLE AS clv_predicted, NULL::DOUBLE AS churn_probability "
         "WHERE FALSE")


def summary_sql(as_of: date) -> str:
    """Per customer: frequency, recency, T, monetary_value over ``seg_order_days`` (see module doc)."""
    return f"""
        SELECT customer_id, CAST(count(*) - 1 AS DOUBLE) AS frequency,
               CAST(date_diff('day', min(order_date), max(order_date)) AS DOUBLE) AS recency,
               CAST(date_diff('day', min(order_date), DATE '{as_of.isoformat()}') AS DOUBLE) AS "T",
               CASE WHEN count(*) > 1 THEN CAST((sum(amount) - arg_min(amount, order_date)) / (count(*) - 1)
                    AS DOUBLE) ELSE 0.0 END AS monetary_value
        FROM seg_order_days GROUP BY customer_id"""


def build_clv(con: duckdb.DuckDBPyConnection, clv: ClvSpec, as_of: date) -> None:
    """``seg_clv(customer_id, clv_predicted, churn_probability)`` for customers with orders."""
    if clv.model == "historical":
        con.execute(f"CREATE OR REPLACE TEMP TABLE seg_clv AS {EMPTY}")
        return
    _require_library(clv)
    data = con.execute(f'SELECT * FROM ({summary_sql(as_of)}) WHERE "T" > 0 ORDER BY customer_id').df()
    if len(data) < MIN_FIT:
        con.execute(f"CREATE OR REPLACE TEMP TABLE seg_clv AS {EMPTY}")
        return
    out = fit_predict(data, months=clv.months, discount_rate=clv.discount_rate)
    con.register("seg_clv_frame", out)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE seg_clv AS SELECT customer_id, CAST(clv_predicted AS DOUBLE) "
                    "AS clv_predicted, CAST(churn_probability AS DOUBLE) AS churn_probability FROM seg_clv_frame")
    finally:
        con.unregister("seg_clv_frame")


def _require_library(clv: ClvSpec) -> None:
    import importlib.util

    if importlib.util.find_spec("pymc_marketing") is None:
        raise ConfigError(
            [(clv.loc, "clv model 'bgnbd' needs pymc-marketing, which is not installed")],
            "install the optional extra: pip install 'crmtool[clv]' (large: PyMC and PyTensor), "
            "or set 'clv: {model: historical}' for clv_historical only",
        )


def fit_predict(data: Any, *, months: int, discount_rate: float) -> Any:
    """Fit BG/NBD and Gamma-Gamma (MAP) on ``data`` (a pandas frame with customer_id, frequency,
    recency, T, monetary_value) and return customer_id, clv_predicted, churn_probability."""
    import logging
    import warnings

    with warnings.catch_warnings():
        # the library and its stack warn about BLAS, arviz versions and API changes: not the user's concern
        warnings.simplefilter("ignore")
        for name in ("pymc", "pytensor", "pymc_marketing", "arviz"):
            logging.getLogger(name).setLevel(logging.ERROR)
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

        fit = data.sample(n=FIT_SAMPLE, random_state=0) if len(data) > FIT_SAMPLE else data
        bg = BetaGeoModel(data=fit[["customer_id", "frequency", "recency", "T"]])
        bg.fit(method="map", progressbar=False)
        full = data[["customer_id", "frequency", "recency", "T"]]
        alive = bg.expected_probability_alive(data=full).mean(("chain", "draw")).to_series()
        out = data[["customer_id"]].copy()
        out["churn_probability"] = 1 - alive.reindex(data["customer_id"]).to_numpy()
        repeat = fit[(fit["frequency"] > 0) & (fit["monetary_value"] > 0)]
        if len(repeat) < MIN_FIT:
            out["clv_predicted"] = float("nan")
            return out
        gg = GammaGammaModel(data=repeat[["customer_id", "monetary_value", "frequency"]])
        gg.fit(method="map", progressbar=False)
        value = gg.expected_customer_lifetime_value(
            transaction_model=bg, data=data.copy(), future_t=months, discount_rate=discount_rate, time_unit="D")
        series = value.mean(("chain", "draw")).to_series()
        out["clv_predicted"] = series.reindex(data["customer_id"]).to_numpy()
    return out
