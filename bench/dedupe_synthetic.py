"""1,000,000 synthetic customers (bench/gen_people.py): crmtool vs Splink (DuckDB), same machine, one run.

    python bench/dedupe_synthetic.py --rows 1000000 [--splink-rows 1000000] [--tools crmtool,splink]

crmtool runs with the configuration ``crmtool dedupe FILE --suggest`` writes for the file (what
``crmtool init`` writes; the shipped rules/30-dedupe.yaml is the same function's output on the example
export), untuned, and writes its outputs (clusters, golden, review as Parquet, plus the audit log); the
timed part is load + dedupe + writing (``suggest_s``, the one-off suggestion, is timed apart). Splink is
set up as its tutorials show (DuckDB backend, NameComparison/DateOfBirthComparison/EmailComparison...,
u by random sampling, m by EM, predict, cluster at 0.95). Each tool runs in its own child process; peak
memory is that process's ``ru_maxrss``. Pairwise precision / recall / F1 against the true persons, plus
the household pairs (two different people of one household: spouses, parent and child, twins; and
same-name neighbours) each tool merged, by relation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dedupe_common import blocking_recall, pairwise_scores, peak_mib, print_table, run_child

ROOT = Path(__file__).resolve().parents[1]


def bench_dir() -> Path:
    """Where generated data and outputs go: ``CRM_BENCH_DIR`` (children inherit it), else /tmp."""
    path = Path(os.environ.get("CRM_BENCH_DIR", "/tmp"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_file(rows: int) -> Path:
    path = bench_dir() / f"crm_bench_people_hh_{rows}.parquet"
    if not path.exists():
        import pyarrow.parquet as pq
        from gen_people import generate

        data, truth = generate(rows, 7)
        pq.write_table(data, path)
        pq.write_table(truth, path.with_suffix(".truth.parquet"))
    return path


RELATIONS = {1: "spouse", 2: "parent_child", 3: "twins", 4: "same_name_neighbour"}


def household_pairs(con, predicted: str, truth_path: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Pairs of records of two different people of one household (or same-name neighbours) that share a
    predicted cluster, by relation, and the share of all such pairs."""
    import pyarrow.parquet as pq

    con.register("__hh_truth", pq.read_table(truth_path))  # the workspace session cannot read files itself
    con.execute("CREATE OR REPLACE TABLE hh AS SELECT customer_id AS record_id, entity_id, household, relation, "
                "neighbour_of FROM __hh_truth")
    rows = con.execute(f"""WITH x AS (SELECT p.cluster_id, h.* FROM {predicted} p JOIN hh h USING (record_id))
        SELECT greatest(a.relation, b.relation) AS rel, count(*) AS pairs,
               count(*) FILTER (WHERE a.cluster_id = b.cluster_id) AS merged
        FROM x a JOIN x b ON a.household = b.household AND a.entity_id < b.entity_id GROUP BY ALL
        UNION ALL  -- two equi-joins: an OR in the join condition makes a nested loop over all rows
        SELECT 4, count(*), count(*) FILTER (WHERE a.cluster_id = b.cluster_id)
        FROM x a JOIN x b ON a.neighbour_of = b.entity_id ORDER BY 1""").fetchall()
    by: dict[str, list[int]] = {}
    for r, p, m in rows:  # a neighbour who heads a household appears in both joins
        n = by.setdefault(RELATIONS.get(int(r), str(r)), [0, 0])
        n[0], n[1] = n[0] + int(m), n[1] + int(p)
    out: dict[str, object] = {k: f"{m}/{p}" for k, (m, p) in by.items()}
    total, merged = sum(int(r[1]) for r in rows), sum(int(r[2]) for r in rows)
    out["household_pairs_merged_share"] = round(merged / total, 5) if total else 0.0
    return out


def child_crmtool(rows: int) -> dict[str, object]:
    import shutil
    import tempfile

    from crmtool import dedupe_file
    from crmtool.api import apply_fixes
    from crmtool.dedupe.entry import suggest_file
    from crmtool.dedupe.suggest import suggest_yaml
    from crmtool.workspace import Workspace

    path = data_file(rows)
    # a folder of its own: several people bench on one machine, and an audit log of another key is refused
    out = Path(tempfile.mkdtemp(prefix=f"crm_bench_out_{rows}_"))
    rules = out / "rules.yaml"
    start = time.perf_counter()
    with Workspace(":memory:") as ws:
        rules.write_text(suggest_yaml(suggest_file(ws, path)), encoding="utf-8")  # what --suggest / init write
    suggest_s = time.perf_counter() - start
    start = time.perf_counter()
    with Workspace(":memory:") as ws:
        result = dedupe_file(ws, path, [rules], out, fmt="parquet", apply_fixes=apply_fixes)
        wall = time.perf_counter() - start
        truth = path.with_suffix(".truth.parquet")
        import pyarrow.parquet as pq

        ws.con.register("__truth", pq.read_table(truth))  # the workspace session is walled (io/gate.py)
        ws.con.execute("CREATE TABLE truth AS SELECT customer_id AS record_id, entity_id AS entity FROM __truth")
        ws.con.execute("CREATE TABLE pred AS SELECT record_id, cluster_id FROM dedupe_records")
        scores = pairwise_scores(ws.con, "pred", "truth")
        hh = household_pairs(ws.con, "pred", truth)
        found = blocking_recall(ws.con, "truth")
    shutil.rmtree(out, ignore_errors=True)
    return {"rows": rows, "wall_s": round(wall, 2), "suggest_s": round(suggest_s, 2), "peak_mib": peak_mib(),
            **scores, **hh, "blocking_recall": found,
            "candidate_pairs": result.candidate_pairs, "review_pairs": result.review_pairs,
            "review_written": result.review.written, "blocking": [b.rule for b in result.blocking],
            "timings": result.timings}


def child_splink(rows: int) -> dict[str, object]:
    import duckdb
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    path = data_file(rows)
    con = duckdb.connect()
    start = time.perf_counter()
    db_api = DuckDBAPI(connection=con) if "connection" in DuckDBAPI.__init__.__code__.co_varnames else DuckDBAPI()
    df = con.sql(f"SELECT * FROM read_parquet('{path}')").df()
    sdf = db_api.register(df)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="customer_id",
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"), block_on("email"), block_on("phone"),
            block_on("last_name", "birth_date"), block_on("national_id"), block_on("postal_code", "first_name"),
        ],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%d/%m/%Y"),
            cl.EmailComparison("email"), cl.ExactMatch("phone"), cl.ExactMatch("national_id"),
            cl.PostcodeComparison("postal_code") if hasattr(cl, "PostcodeComparison") else cl.ExactMatch("postal_code"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(sdf, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("first_name", "last_name", "birth_date")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.95).as_pandas_dataframe()
    wall = time.perf_counter() - start
    c2 = duckdb.connect()
    c2.register("c", clusters[["customer_id", "cluster_id"]])
    c2.execute("CREATE TABLE pred AS SELECT customer_id AS record_id, CAST(cluster_id AS VARCHAR) AS cluster_id FROM c")
    truth = path.with_suffix(".truth.parquet")
    c2.execute(f"CREATE TABLE truth AS SELECT customer_id AS record_id, entity_id AS entity "
               f"FROM read_parquet('{truth}')")
    scores = pairwise_scores(c2, "pred", "truth")
    hh = household_pairs(c2, "pred", truth)
    return {"rows": rows, "wall_s": round(wall, 2), "peak_mib": peak_mib(), **scores, **hh}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, rows = sys.argv[2], int(sys.argv[3])
        print(json.dumps(child_crmtool(rows) if tool == "crmtool" else child_splink(rows)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--splink-rows", type=int, default=None, help="rows for Splink (default: --rows)")
    parser.add_argument("--tools", default="crmtool,splink")
    args = parser.parse_args()
    out = []
    for tool in args.tools.split(","):
        rows = args.splink_rows if tool == "splink" and args.splink_rows else args.rows
        data_file(rows)  # generated once, outside the timings
        r = run_child(__file__, tool, str(rows))
        out.append({"dataset": f"people_{rows}", "tool": tool, **r})
        print(json.dumps(out[-1]), flush=True)
    print_table(out)


if __name__ == "__main__":
    main()
