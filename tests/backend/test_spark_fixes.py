"""Fixes that read other columns (``where``, a phone's ``region_column``) as SELECT steps on
distinct (value, region) pairs: the same outcomes, changes and violation rows as the DuckDB
engine, which runs them row by row; on the DuckDB backend (no Spark) and on Spark."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.backend.checks import CHANGES, VIOLATIONS, run_checks, unported_problems
from crmtool.backend.duckdb_backend import DuckDBBackend
from crmtool.backend.spark_backend import SparkBackend
from crmtool.cli import app
from crmtool.rulefile import load_rules

from .conftest import engine_run, outcome_rows

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

# the same phone in ES and FR rows (and with a lower-case, padded or missing region), names
# trimmed only in Spanish rows, a date fixed only for active customers, a case flag with a where
DATA = """customer_id;name;phone;country;city;status;since
C1;  Ana  ;612 34 56 78;ES;madrid;active;03/02/2020
C2;  Ana  ;612 34 56 78;FR;paris;active;03/02/2020
C3;Luis ;06 12 34 56 78;FR;lyon;gone;04/05/2019
C4; Eva;06 12 34 56 78; es ;sevilla;active;2019-05-04
C5;Pau;612 34 56 78;;girona;gone;04/05/2019
C6;  Ana  ;+33 6 12 34 56 78;fr;nice;active;31/12/2021
C7;Iker;12;ES;bilbao;active;
C8;;612345678;DE;berlin;;13/13/2020
C9;Zoe;0612;FR;lille;gone;01/01/2020
"""
RULES = """version: 1
dataset: {key: customer_id, personal_data: [name, phone]}
rules:
  - {name: trim_es_names, kind: trim, column: name, where: "country = 'ES'"}
  - {name: phone_by_country, kind: phone, column: phone, action: fix, region_column: country, severity: warning}
  - {name: country_upper, kind: case, to: upper, column: country}
  - {name: city_title_active, kind: case, to: title, column: city, action: flag, where: "status = 'active'",
     severity: warning}
  - {name: since_iso_active, kind: date, column: since, formats: ['%d/%m/%Y', '%Y-%m-%d'], action: fix,
     where: "status = 'active'", severity: warning}
  - {name: phone_fr, kind: phone, column: phone, region: FR, where: "country = 'FR'", action: reject,
     severity: warning}
"""


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    data, rules = tmp_path / "pairs.csv", tmp_path / "pairs.yaml"
    data.write_text(DATA, encoding="utf-8")
    rules.write_text(RULES, encoding="utf-8")
    return data, rules


def test_where_and_region_fixes_are_no_longer_refused(case: tuple[Path, Path]) -> None:
    assert unported_problems(load_rules([case[1]])) == []


def test_pairs_on_the_duckdb_backend_match_the_engine_row_for_row(case: tuple[Path, Path]) -> None:
    con, engine, violations, changes, work = engine_run(*case, "p")
    result = run_checks(DuckDBBackend(con), "data_p", load_rules([case[1]]), work_table="bk_p", keep_results=True)
    assert outcome_rows(result) == outcome_rows(engine)
    assert con.execute(f"SELECT * FROM {VIOLATIONS} ORDER BY ALL").fetchall() == violations
    assert con.execute(f"SELECT * FROM {CHANGES} ORDER BY ALL").fetchall() == changes
    assert con.execute("SELECT * FROM bk_p ORDER BY _row").fetchall() == work
    by_row = {r[0]: r for r in work}
    # the same number read in Spain and in France; a French number in a padded lower-case ' es '
    # row is not Spanish; no region: ES
    phones = {row: by_row[row][3] for row in by_row}
    assert phones[1] == "+34612345678" and phones[2] == "+33612345678" and phones[3] == "+33612345678"
    assert phones[4] == "06 12 34 56 78" and phones[5] == "+34612345678"
    assert [by_row[r][2] for r in (1, 2, 6)] == ["Ana", "  Ana  ", "  Ana  "]  # trimmed where ES only
    fixed = {o.spec.name: o.fixed for o in engine.outcomes}
    assert fixed["phone_by_country"] >= 5 and fixed["trim_es_names"] >= 1 and fixed["since_iso_active"] >= 2
    assert {o.spec.name: o.failed for o in engine.outcomes}["city_title_active"] >= 3


def test_pairs_on_spark_match_the_engine_row_for_row(spark: SparkBackend, case: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    con, engine, violations, changes, work = engine_run(*case, "p")
    staged = tmp_path / "pairs.parquet"
    DuckDBBackend(con).write_parquet("SELECT * FROM data_p", staged)
    spark.read_parquet(staged, "pairs_input")
    try:
        result = run_checks(spark, "pairs_input", load_rules([case[1]]), work_table="pairs_work", keep_results=True)
        got_violations = sorted(spark.fetch(f"SELECT * FROM {VIOLATIONS}"))
        got_changes = sorted(spark.fetch(f"SELECT * FROM {CHANGES}"), key=repr)
        got_work = sorted(spark.fetch("SELECT * FROM pairs_work"))
    finally:
        for name in ("pairs_work", VIOLATIONS, CHANGES, "pairs_input"):
            spark.drop_table(name)
    assert outcome_rows(result) == outcome_rows(engine)
    assert got_violations == violations
    assert got_changes == sorted(changes, key=repr)
    assert got_work == work


def _clean(data: Path, rules: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["clean", str(data), "--rules", str(rules), "--out", str(out / "out"),
                                      "--workspace", str(out / "ws.duckdb"), "--quiet", "-f", "json", *extra])
    assert result.exit_code == 0, result.output


def test_clean_with_pair_fixes_on_spark_writes_the_duckdb_files(spark: SparkBackend, case: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    duck_dir, spark_dir = tmp_path / "duck", tmp_path / "spark"
    _clean(*case, duck_dir)
    _clean(*case, spark_dir, "--engine", "spark", "--spark-master", "local[2]")
    for name in ("pairs.clean.csv", "pairs.rejects.csv"):
        assert (spark_dir / "out" / name).read_bytes() == (duck_dir / "out" / name).read_bytes(), name
    assert "+33612345678" in (duck_dir / "out" / "pairs.clean.csv").read_text(encoding="utf-8")
    sets = [sorted((d / "ws.audit" / "sets").glob("*.parquet")) for d in (duck_dir, spark_dir)]
    digests = [[hashlib.sha256(f.read_bytes()).hexdigest() for f in files] for files in sets]
    assert digests[1] == digests[0] and digests[0]
    manifest = json.loads((spark_dir / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["rejected"] == 1  # C9's phone is no French number
