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
REVIEW = 0.5  # rules/30-dedupe.yaml's review band
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def _dedupe(data: Path, out: Path, engine: str, decisions: Path | None = None,
            rules: Path = RULES / "30-dedupe.yaml") -> dict[str, Any]:
    """dedupe of ``data`` with ``rules`` (normalised by 10-normalise.yaml) into ``out``: the result,
    the scored pairs and the saved model."""
    with Workspace(":memory:") as ws:
        result = dedupe_file(ws, data, [rules, RULES / "10-normalise.yaml"], out,
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
    assert s.clusters == d.clusters and s.merges == d.merges and s.review == d.review
    # the clusters are made on Spark: only the pairs decided or at or above the review band come back
    kept = [p for p in duck["pairs"] if p[-1] is not None or p[-5] >= REVIEW]  # p[-5]: match_probability
    assert len(kept) < len(duck["pairs"])
    assert [p[:3] for p in spark["pairs"]] == [p[:3] for p in kept]  # l, r, blocking rule
    for ps, pd in zip(spark["pairs"], kept, strict=True):
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
    """With decisions that make the chaining guard split clusters (one of them after scoring a pair
    blocking did not make) and a ``max_cluster_size`` of 3 that dissolves a cluster."""
    data = _generated(tmp_path, 500)
    rules = tmp_path / "30-dedupe.yaml"
    rules.write_text((RULES / "30-dedupe.yaml").read_text(encoding="utf-8").replace(
        "  split_below:", "  max_cluster_size: 3\n  split_below:"), encoding="utf-8")
    duck = _dedupe(data, tmp_path / "duck", "duckdb", rules=rules)
    by_cluster: dict[str, list[str]] = {}
    for row in csv.DictReader((tmp_path / "duck" / "clusters.csv").open(encoding="utf-8")):
        by_cluster.setdefault(row["cluster_id"], []).append(row["record_id"])
    pairs = [ids for ids in by_cluster.values() if len(ids) == 2]
    three = next(ids for ids in by_cluster.values() if len(ids) == 3)
    alone = [ids[0] for ids in by_cluster.values() if len(ids) == 1]
    decided = tmp_path / "decisions.csv"
    decided.write_text("id_l,id_r,decision\n"
                       f"{pairs[0][0]},{pairs[0][1]},no-match\n{alone[0]},{alone[-1]},match\n"  # a split, a join
                       f"{three[0]},{three[2]},no-match\n"  # the guard splits a cluster of three
                       f"{pairs[1][0]},{alone[1]},match\n"  # a cluster of three with two pairs never blocked
                       f"{pairs[2][0]},{pairs[3][0]},match\n",  # four records: over max_cluster_size
                       encoding="utf-8")
    duck = _dedupe(data, tmp_path / "duck", "duckdb", decided, rules)
    on_spark = _dedupe(data, tmp_path / "spark", "spark", decided, rules)
    stats = duck["result"].clusters
    assert stats.multi > 20 and duck["result"].decisions
    assert stats.split_clusters >= 2 and stats.dissolved_clusters >= 1, stats
    assert any(p[2] == -1 for p in duck["pairs"])  # the decided pair blocking did not make
    reasons = duck["result"].review.by_reason
    assert reasons.get("chaining") and reasons.get("oversized_cluster"), reasons
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
