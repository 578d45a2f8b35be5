"""dedupe on Spark against DuckDB: the example (cleaned first) and a small generated file with known
duplicates through both engines; candidate pairs, model, match weights, clusters, golden and review
files compared. One Spark session for all (conftest.spark); unported options refused with exit 2."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crmtool.api import apply_fixes
from crmtool.backend.spark_backend import SparkBackend
from crmtool.cli import app
from crmtool.rule_paths import dedupe_file
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
EXAMPLE = ROOT / "examples" / "clientes.csv"
OUTPUTS = ("clusters", "golden", "review")
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def _dedupe(data: Path, out: Path, engine: str, decisions: Path | None = None) -> dict[str, Any]:
    """dedupe of ``data`` with rules/30-dedupe.yaml (normalised by 10-normalise.yaml) into ``out``:
    the result, the scored pairs and the saved model."""
    with Workspace(":memory:") as ws:
        result = dedupe_file(ws, data, [RULES / "30-dedupe.yaml", RULES / "10-normalise.yaml"], out,
                             fmt="csv", decisions=decisions, apply_fixes=apply_fixes, engine=engine)
        pairs = ws.con.execute("SELECT l, r, rule, * LIKE 'g%', match_weight, match_probability, vetoed, "
                               "home_vetoed, split_vetoed, decision FROM dedupe_pairs ORDER BY l, r").fetchall()
        model = ws.con.execute("SELECT model FROM dedupe_model").fetchall()[0][0]
    return {"result": result, "pairs": pairs, "model": json.loads(model)}


def _same(duck: dict[str, Any], spark: dict[str, Any], duck_out: Path, spark_out: Path) -> None:
    d, s = duck["result"], spark["result"]
    assert [b.as_dict() for b in s.blocking] == [b.as_dict() for b in d.blocking]
    assert s.candidate_pairs == d.candidate_pairs
    assert spark["model"] == duck["model"]  # the same u sample and level patterns: the same m, u, prior
    assert [p[:3] for p in spark["pairs"]] == [p[:3] for p in duck["pairs"]]  # l, r, blocking rule
    for ps, pd in zip(spark["pairs"], duck["pairs"], strict=True):
        weights = len(pd) - 6
        assert ps[3:weights] == pd[3:weights]  # the level of every comparison
        assert ps[weights] == pytest.approx(pd[weights], abs=1e-9)  # match weight
        assert ps[weights + 1] == pytest.approx(pd[weights + 1], abs=1e-12)
        assert ps[weights + 2:] == pd[weights + 2:]  # vetoes and decision
    for name in OUTPUTS:
        assert (spark_out / f"{name}.csv").read_bytes() == (duck_out / f"{name}.csv").read_bytes(), name


def _generated(tmp_path: Path, rows: int) -> Path:
    spec = importlib.util.spec_from_file_location("gen_people", ROOT / "bench" / "gen_people.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    data, _truth = gen.generate(rows, 11)
    path = tmp_path / "people.parquet"
    pq.write_table(data, path)
    return path


def test_generated_people_dedupe_the_same_on_both_engines(spark: SparkBackend, tmp_path: Path) -> None:
    data = _generated(tmp_path, 500)
    duck = _dedupe(data, tmp_path / "duck", "duckdb")
    # decisions: a merged pair split by a person, and two strangers joined (a pair blocking never made)
    by_cluster: dict[str, list[str]] = {}
    for row in csv.DictReader((tmp_path / "duck" / "clusters.csv").open(encoding="utf-8")):
        by_cluster.setdefault(row["cluster_id"], []).append(row["record_id"])
    merged = next(ids for ids in by_cluster.values() if len(ids) == 2)
    alone = [ids[0] for ids in by_cluster.values() if len(ids) == 1]
    decided = tmp_path / "decisions.csv"
    decided.write_text(f"id_l,id_r,decision\n{merged[0]},{merged[1]},no-match\n{alone[0]},{alone[-1]},match\n",
                       encoding="utf-8")
    duck = _dedupe(data, tmp_path / "duck", "duckdb", decided)
    on_spark = _dedupe(data, tmp_path / "spark", "spark", decided)
    assert duck["result"].clusters.multi > 20 and duck["result"].decisions
    assert any(p[2] == -1 for p in duck["pairs"])  # the decided pair blocking did not make
    _same(duck, on_spark, tmp_path / "duck", tmp_path / "spark")


def test_the_cleaned_example_dedupes_the_same_on_both_engines(spark: SparkBackend, tmp_path: Path) -> None:
    cleaned = CliRunner().invoke(app, ["clean", str(EXAMPLE), "--rules", str(RULES / "10-normalise.yaml"),
                                       "--rules", str(RULES / "20-checks.yaml"), "--out", str(tmp_path / "c"),
                                       "--workspace", ":memory:", "--quiet"])
    assert cleaned.exit_code == 0, cleaned.output
    data = tmp_path / "c" / "clientes.clean.csv"
    duck = _dedupe(data, tmp_path / "duck", "duckdb")
    on_spark = _dedupe(data, tmp_path / "spark", "spark")
    # 297 records: u is counted over every pair (the generated file's 500 take the SHA-256 sample)
    assert duck["result"].rows < 300 and duck["result"].candidate_pairs > 30
    _same(duck, on_spark, tmp_path / "duck", tmp_path / "spark")


def test_unported_options_are_exit_2_before_spark_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_spark(*_args: object) -> None:
        raise AssertionError("a Spark session was started for a refused run")

    monkeypatch.setattr(SparkBackend, "start", no_spark)
    rules = tmp_path / "dedupe.yaml"
    rules.write_text("dedupe:\n  id: customer_id\n  blocking:\n    - {name: email, 'on': ['email:email']}\n"
                     "  comparisons:\n    - {column: email, method: email}\n"
                     "    - {column: city, method: token_set, thresholds: [0.5]}\n", encoding="utf-8")
    runner = CliRunner()
    got = runner.invoke(app, ["dedupe", str(EXAMPLE), "--rules", str(rules), "--out", str(tmp_path / "o"),
                              "--workspace", ":memory:", "--engine", "spark"])
    assert got.exit_code == 2, got.output
    assert f"{rules}:7: dedupe: comparison 'city': method token_set does not run on Spark yet" in got.stderr
    good = rules.read_text(encoding="utf-8").replace("token_set, thresholds: [0.5]", "jaro_winkler, thresholds: [0.9]")
    rules.write_text(good, encoding="utf-8")
    got = runner.invoke(app, ["dedupe", str(EXAMPLE), "--rules", str(rules), "--out", str(tmp_path / "o"),
                              "--workspace", ":memory:", "--engine", "spark", "--incremental"])
    assert got.exit_code == 2 and "dedupe --incremental does not run on Spark yet" in got.stderr
    got = runner.invoke(app, ["dedupe", str(EXAMPLE), "--rules", str(rules), "--spark-master", "local[2]"])
    assert got.exit_code == 2 and "--spark-master needs --engine spark" in got.stderr
