"""The same fixtures through both engines, compared row for row: rule outcomes, violation rows,
exit codes and the per-value mapping. One Spark session for all (conftest.spark)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.backend.checks import VIOLATIONS, run_checks
from crmtool.backend.duckdb_backend import DuckDBBackend
from crmtool.backend.spark_backend import SparkBackend
from crmtool.cli import app
from crmtool.emails.syntax import syntax_verdict
from crmtool.engine import VIOLATIONS as ENGINE_VIOLATIONS
from crmtool.engine import run_rules
from crmtool.io.readers import load_file
from crmtool.rulefile import load_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
EXAMPLE = ROOT / "examples" / "clientes.csv"
# py4j leaves its callback sockets to the garbage collector: Spark's, not crmtool's, so not an error here
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def validate_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["validate", *[str(a) for a in args], "-f", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    payload = json.loads(result.stdout)
    for rule in payload["rules"]:
        rule.pop("seconds")
    return result.exit_code, payload


def test_validate_on_spark_gives_the_duckdb_outcomes_and_exit_code(spark: SparkBackend) -> None:
    code_duck, duck = validate_json(EXAMPLE, "--rules", RULES / "20-checks.yaml")
    code_spark, on_spark = validate_json(EXAMPLE, "--rules", RULES / "20-checks.yaml", "--engine", "spark",
                                         "--spark-master", "local[2]")
    assert (code_spark, on_spark["status"]) == (code_duck, duck["status"]) == (1, "fail")
    assert on_spark["rules"] == duck["rules"]
    assert sum(r["failed"] for r in duck["rules"]) > 50 and sum(r["fixed"] for r in duck["rules"]) > 500


def test_fixes_and_checks_match_row_for_row(spark: SparkBackend) -> None:
    ruleset = load_rules([RULES / "10-normalise.yaml", RULES / "20-checks.yaml"])
    con = duckdb.connect()
    load_file(con, EXAMPLE, "data_c")
    engine = run_rules(con, "data_c", ruleset, work_table="work_c")
    expected = con.execute(f"SELECT rule, _row, reason, reject FROM {ENGINE_VIOLATIONS} ORDER BY ALL").fetchall()
    fixed = {o.spec.name: o.fixed for o in engine.outcomes}
    staged = Path(spark.spark.conf.get("spark.local.dir", "/tmp")) / f"crmtool-parity-{id(con)}.parquet"
    DuckDBBackend(con).write_parquet("SELECT * FROM data_c", staged)
    spark.read_parquet(staged, "parity_input")
    result = run_checks(spark, "parity_input", ruleset, keep_results=True)
    got = sorted(spark.fetch(f"SELECT rule, _row, reason, reject FROM {VIOLATIONS}"))
    spark.drop_table(VIOLATIONS)
    staged.unlink()
    assert got == expected
    assert {o.spec.name: o.fixed for o in result.outcomes} == fixed
    assert [o.status for o in result.outcomes] == [o.status for o in engine.outcomes]
    assert fixed["trim_text"] > 0 and fixed["repair_mojibake"] > 0  # the normalisers did work


def test_unicode_nfc_composes_the_same_values_on_spark(spark: SparkBackend, tmp_path: Path) -> None:
    data = tmp_path / "nfd.csv"
    data.write_text("customer_id,first_name\nC1,Jose\u0301\nC2,Mu\u0308ller\nC3,Ana\nC4,Jose\u0301\n",
                    encoding="utf-8")
    rules = tmp_path / "nfc.yaml"
    rules.write_text("version: 1\nrules:\n  - {name: nfc, kind: unicode_nfc, columns: [first_name]}\n",
                     encoding="utf-8")
    duck, on_spark = (validate_json(data, "--rules", rules, *extra)[1]["rules"]
                      for extra in ((), ("--engine", "spark")))
    assert on_spark == duck
    # Python's NFC per distinct value on Spark, nfc_normalize on DuckDB
    assert {r["rule"]: r["fixed"] for r in duck}["nfc"] == 3


def _clean(out: Path, *extra: str) -> dict[str, Any]:
    """``crmtool clean`` of the example with the normalise and check rules into ``out``; the JSON frame."""
    result = CliRunner().invoke(app, ["clean", str(EXAMPLE), "--rules", str(RULES / "10-normalise.yaml"),
                                      "--rules", str(RULES / "20-checks.yaml"), "--out", str(out / "out"),
                                      "--workspace", str(out / "ws.duckdb"), "--quiet", "-f", "json", *extra])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _without_run(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest without what differs between two runs of the same input: ids, times, paths, timings."""
    drop = {"run_id", "started_at", "finished_at", "timings_seconds", "seconds", "path", "head_sha256"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in drop}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(manifest))


def test_clean_on_spark_writes_the_duckdb_outputs_and_change_set(spark: SparkBackend, tmp_path: Path) -> None:
    duck_dir, spark_dir = tmp_path / "duck", tmp_path / "spark"
    _clean(duck_dir)
    _clean(spark_dir, "--engine", "spark", "--spark-master", "local[2]")
    for name in ("clientes.clean.csv", "clientes.rejects.csv"):
        assert (spark_dir / "out" / name).read_bytes() == (duck_dir / "out" / name).read_bytes(), name
    manifests = [json.loads((d / "out" / "manifest.json").read_text(encoding="utf-8")) for d in (duck_dir, spark_dir)]
    assert _without_run(manifests[1]) == _without_run(manifests[0])
    # the audit change set: the same Parquet bytes (personal values keyed with the same key, the
    # tests' CRMTOOL_KEY)
    sets = [sorted((d / "ws.audit" / "sets").glob("*.parquet")) for d in (duck_dir, spark_dir)]
    assert len(sets[0]) == len(sets[1]) > 0
    digests = [[hashlib.sha256(f.read_bytes()).hexdigest() for f in files] for files in sets]
    assert digests[1] == digests[0]
    assert manifests[0]["counts"]["fixed_values"] > 1000 and manifests[0]["counts"]["rejected"] > 0
    verify = CliRunner().invoke(app, ["audit", "verify", "--workspace", str(spark_dir / "ws.duckdb")])
    assert verify.exit_code == 0, verify.output


def test_typed_parquet_where_and_sql_rules(spark: SparkBackend, tmp_path: Path) -> None:
    data = tmp_path / "typed.parquet"
    duckdb.execute(f"""COPY (SELECT 'C' || lpad(CAST(i AS VARCHAR), 7, '0') AS customer_id,
        CAST(i * 37 % 1000 - 50 AS DOUBLE) AS total_spent, DATE '2020-01-01' + CAST(i AS INTEGER) AS signup_date,
        CASE WHEN i % 3 = 0 THEN 'PT' ELSE 'ES' END AS country,
        CASE WHEN i % 7 = 0 THEN '99999' ELSE lpad(CAST(1000 + i AS VARCHAR), 5, '0') END AS postal_code,
        strftime(DATE '2020-01-01' + CAST(i + (i % 5) - 2 AS INTEGER), '%d/%m/%Y') AS last_order
        FROM range(1, 400) r(i)) TO '{data}' (FORMAT parquet)""")
    rules = tmp_path / "rules.yaml"
    rules.write_text("""version: 1
rules:
  - {name: spent, kind: range, column: total_spent, min: 0, max: 900}
  - {name: cp, kind: postal_code, column: postal_code, country: ES, where: "country = 'ES'"}
  - {name: ids, kind: unique, column: customer_id, action: reject}
  - {name: order_date, kind: date, column: last_order, formats: ['%d/%m/%Y'], action: fix, severity: warning}
  - name: order_after_signup
    kind: sql
    expr: "try_strptime(last_order, '%Y-%m-%d') >= CAST(signup_date AS TIMESTAMP)"
    threshold: 50%
""", encoding="utf-8")
    code_duck, duck = validate_json(data, "--rules", rules)
    code_spark, on_spark = validate_json(data, "--rules", rules, "--engine", "spark")
    assert on_spark["rules"] == duck["rules"]
    assert code_spark == code_duck == 1
    failed = {r["rule"]: r["failed"] for r in duck["rules"]}
    assert failed["spent"] > 0 and failed["cp"] > 0 and failed["order_after_signup"] > 0


def test_email_risk_with_history_in_the_workspace_is_exit_2_naming_each_rule(tmp_path: Path) -> None:
    ws = tmp_path / "ws.duckdb"
    bounces = ROOT / "tests" / "emails" / "bounces" / "mailchimp_cleaned.csv"
    assert CliRunner().invoke(app, ["bounces", "import", str(bounces), "--workspace", str(ws)]).exit_code == 0
    result = CliRunner().invoke(app, ["clean", str(EXAMPLE), "--rules", str(RULES / "25-email-risk.yaml"),
                                      "--out", str(tmp_path / "out"), "--workspace", str(ws), "--engine", "spark"])
    assert result.exit_code == 2
    assert "3 problems in configuration" in result.stderr
    assert ("25-email-risk.yaml:6: rule 'email_undeliverable': email_risk with the workspace's bounce or "
            "suppression history does not run on Spark yet") in result.stderr
    assert result.stdout == ""


def test_per_value_python_maps_the_same_on_both(spark: SparkBackend) -> None:
    values = ["ana@example.com", "Ana@Example.COM", "no-at-sign", "a@b", "josé@correo.es", "x@@y.com", " sp@ce.es"]
    rows = ", ".join("('" + v.replace("'", "''") + "')" for v in values)
    con = duckdb.connect()
    out = [("ok", "BOOLEAN"), ("normalized", "VARCHAR"), ("detail", "VARCHAR")]
    backends: list[Any] = [DuckDBBackend(con), spark]
    for backend in backends:
        backend.create_table("emails", f"SELECT * FROM (VALUES {rows}) v(e)")
        backend.map_values("verdicts", "SELECT DISTINCT e AS v FROM emails", syntax_verdict, out)
    duck, on_spark = (sorted(b.fetch("SELECT * FROM verdicts")) for b in backends)
    assert on_spark == duck and len(duck) == len(values)
    assert {r[0]: r[1] for r in duck}["no-at-sign"] is False
    # the one UPDATE kinds issue (on a per-value table) becomes a new SELECT step on Spark
    for backend in backends:
        backend.execute("UPDATE verdicts SET detail = NULL WHERE ok")
    duck, on_spark = (sorted(b.fetch("SELECT value, detail FROM verdicts")) for b in backends)
    assert on_spark == duck and any(d is None for _v, d in duck)
    spark.drop_table("verdicts")
    spark.drop_table("emails")


def test_spark_refuses_other_statements(spark: SparkBackend) -> None:
    from crmtool.errors import EngineError

    with pytest.raises(EngineError, match="SELECT steps only"):
        spark.execute("DELETE FROM t WHERE true")
