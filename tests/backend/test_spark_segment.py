"""``segment --engine spark`` against DuckDB, through the CLI, on the shared Spark session
(conftest.spark): the same memberships, status, holdout flags, send lists and summary, the history
row recorded; unported sections refused with exit 2 and file:line before a JVM starts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.backend.spark_backend import SparkBackend
from crmtool.cli import app

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
# py4j leaves its callback sockets to the garbage collector: Spark's, not crmtool's
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def segment(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["segment", *[str(a) for a in args]])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def both_engines(tmp: Path, customers: Path, spec: Path, *inputs: str | Path) -> dict[str, dict[str, Any]]:
    """The DuckDB run, then the Spark run, in one workspace; each one's summary and output folder."""
    runs = {}
    for engine in ("duckdb", "spark"):
        out = tmp / f"out-{engine}"
        code, stdout, stderr = segment(customers, "--segments", spec, *inputs, "--out", out, "--as-of", "2026-11-01",
                                       "-w", tmp / "ws.duckdb", "-f", "json", "--engine", engine)
        assert code == 0, stderr
        runs[engine] = {"summary": json.loads(stdout), "out": out}
    return runs


def assert_same_outputs(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Every CSV byte for byte, the summary but for run ids, paths, timings and the comparison with
    the previous run (the Spark run's previous run is the DuckDB one: nobody entered or exited)."""
    duck, spark = runs["duckdb"], runs["spark"]
    files = sorted(str(p.relative_to(duck["out"])) for p in duck["out"].rglob("*.csv"))
    assert files == sorted(str(p.relative_to(spark["out"])) for p in spark["out"].rglob("*.csv"))
    for name in files:
        assert (duck["out"] / name).read_bytes() == (spark["out"] / name).read_bytes(), name
    compared = ("previous", "entered", "exited")
    assert all(s["entered"] == s["exited"] == 0 for s in spark["summary"]["segments"])
    for run in (duck, spark):
        for key in ("run_id", "outputs", "previous_run", "timings"):
            run["summary"].pop(key, None)
        for s in run["summary"]["segments"]:
            for key in compared:
                s.pop(key)
    assert spark["summary"] == duck["summary"]
    return files


def history(ws: Path) -> list[list[tuple[Any, ...]]]:
    con = duckdb.connect(str(ws), read_only=True)
    try:
        runs = [r[0] for r in con.execute("SELECT run_id FROM segments_runs ORDER BY recorded_at").fetchall()]
        return [con.execute("SELECT segment, customer_id, status, holdout FROM segments_membership "
                            "WHERE run_id = ? ORDER BY ALL", [r]).fetchall() for r in runs]
    finally:
        con.close()


def test_example_segments_on_spark_write_the_duckdb_files(spark: SparkBackend, tmp_path: Path) -> None:
    runs = both_engines(tmp_path, EX / "clientes.csv", ROOT / "segments.yaml",
                        "--orders", EX / "pedidos.csv", "--events", EX / "eventos.csv")
    memberships = (runs["spark"]["out"] / "memberships.csv").read_text(encoding="utf-8")
    files = assert_same_outputs(runs)
    assert len(files) == 14 and "segments/champions.csv" in files
    for flag in ("global", "segment", "campaign:black_friday", ",excluded,", ",send,", ",holdout,"):
        assert flag in memberships  # every holdout kind and status is compared, not only empty columns
    duck_rows, spark_rows = history(tmp_path / "ws.duckdb")  # one history run each, the same rows
    assert spark_rows == duck_rows and len(duck_rows) == memberships.count("\n") - 1


VARIANT = """
version: 1
inputs:
  customers: {id: customer_id, email: email, phone: phone, consent: consent, signup_date: signup}
  orders: {customer_id: customer_id, date: order_date, amount: amount, channel: channel}
  events: {customer_id: customer_id, type: event_type, timestamp: occurred_at, channel: channel}
  date_formats: ["%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S"]
  decimal_comma: true
output: {columns: [customer_id, email, avg_rounded, open_share, spend, born]}
features:
  opens_90d: {events: email_open, days: 90}
  sent_90d: {events: [email_sent, "Email_Sent "], days: 90}
  avg_rounded: "round(monetary_total / frequency, 2)"
  open_share: "CASE WHEN sent_90d > 0 THEN round(opens_90d / sent_90d, 3) END"
  spend: "seg_num(declared)"
  born: "seg_date(birth)"
holdouts:
  salt: var-1
  global: 20
  campaigns:
    spring: {percent: 50, segments: [buyers, recent], salt: var-2}
segments:
  - {name: vip, when: {field: monetary_total, gte: 40}, exclusive: tier, priority: 1, holdout: 30}
  - {name: buyers, when: {field: frequency, gte: 1}, exclusive: tier, priority: 2}
  - {name: recent, when: {sql: "last_order_date >= as_of - INTERVAL 60 DAY AND born < DATE '2000-01-01'"}}
  - {name: openers, when: {all: [{field: opens_90d, gt: 0}, {not: {field: last_order_date, within: last 30 days}}]}}
  - {name: old_signups, when: {field: tenure_days, gt: 1000}, holdout: 40}
"""


def test_holdouts_groups_user_sql_and_typed_orders_agree(spark: SparkBackend, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"C{i:02d}" for i in range(1, 31)]
    rows = ["customer_id,email,phone,consent,signup,declared,birth"]
    rows += [f"{c},{c.lower()}@example.com,,{'yes' if i % 7 else 'no'},0{1 + i % 9}/0{1 + i % 9}/20{10 + i % 15},"
             f"\"{i * 101},5{i % 10}\",19{70 + i}-0{1 + i % 9}-1{i % 10}" for i, c in enumerate(ids)]
    rows += ["C02,dup@example.com,,no,01/01/2020,1,1990-01-01", ",blank@example.com,,yes,,,", "C03,,,yes,,,"]
    customers = tmp_path / "customers.csv"
    customers.write_text("\n".join(rows) + "\n", encoding="utf-8")
    amounts = [1.005, 2.675, 10.005, 0.125, 3.35, 2.0, 5.35, -4.0, 44.445, 19.99]
    orders = {"customer_id": [], "order_date": [], "amount": [], "channel": []}
    for i in range(120):
        orders["customer_id"].append(f" {ids[i % 25]}" if i % 11 == 0 else ("X99" if i % 17 == 0 else ids[i % 25]))
        orders["order_date"].append(date(2026, 1 + i % 12, 1 + i % 28))  # some after as_of: future_date
        orders["amount"].append(amounts[i % len(amounts)] if i % 13 else None)
        orders["channel"].append(["web", "app", None][i % 3])
    pq.write_table(pa.table(orders, schema=pa.schema([("customer_id", pa.string()), ("order_date", pa.date32()),
                                                      ("amount", pa.float64()), ("channel", pa.string())])),
                   tmp_path / "orders.parquet")
    events = ["customer_id,event_type,occurred_at,channel"]
    events += [f"{ids[i % 30]},{['email_open', 'email_sent', 'Email_Sent ', 'web_visit'][i % 4]},"
               f"2026-{1 + i % 11:02d}-{1 + i % 27:02d} 10:00:00,{'email' if i % 5 else ''}" for i in range(200)]
    events += ["C01,email_open,not a date,email"]
    (tmp_path / "events.csv").write_text("\n".join(events) + "\n", encoding="utf-8")
    spec = tmp_path / "segments.yaml"
    spec.write_text(VARIANT, encoding="utf-8")
    runs = both_engines(tmp_path, customers, spec, "--orders", tmp_path / "orders.parquet",
                        "--events", tmp_path / "events.csv")
    inputs = runs["duckdb"]["summary"]["inputs"]
    memberships = (runs["duckdb"]["out"] / "memberships.csv").read_text(encoding="utf-8")
    assert_same_outputs(runs)
    assert inputs["duplicate_ids"] == 2 and inputs["skipped"]["orders"]["unknown_customer"] > 0
    assert {"future_date", "missing_amount", "negative_amount"} <= set(inputs["skipped"]["orders"])
    for flag in ("global", "segment", "campaign:spring", "consent_denied"):
        assert flag in memberships
    vip = (runs["spark"]["out"] / "segments" / "vip.csv").read_text(encoding="utf-8")
    assert vip.count("\n") > 1  # the rounded averages and the open share are in the compared lists


def test_unported_sections_are_refused_before_spark_starts(tmp_path: Path) -> None:
    spec = tmp_path / "segments.yaml"
    spec.write_text(VARIANT + "clv: {months: 6}\n", encoding="utf-8")
    code, _out, err = segment(EX / "clientes.csv", "-s", spec, "--out", tmp_path / "out", "-w", ":memory:",
                              "--engine", "spark")
    assert code == 2 and f"{spec.name}:" in err and "clv" in err, err
    line = VARIANT.count("\n") + 1
    assert f":{line}" in err
    spec.write_text(VARIANT.replace('"seg_num(declared)"', '"nfc_normalize(declared)"'), encoding="utf-8")
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,email,phone,consent,signup,declared,birth\nC1,a@b.es,,yes,,1,\n",
                         encoding="utf-8")
    code, _out, err = segment(customers, "-s", spec, "--out", tmp_path / "out", "-w", ":memory:", "--engine", "spark")
    line = VARIANT.splitlines().index('  spend: "seg_num(declared)"') + 1
    assert code == 2 and f"{spec.name}:{line}" in err and "nfc_normalize" in err, err
    assert not (tmp_path / "out").exists()
