"""The send-list flag says the same thing everywhere: the clean file, the workspace, the summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb

from .conftest import EXAMPLES, RULES, cli


def test_mailable_in_the_file_the_workspace_and_the_manifest_agree(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    code, out = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "out", "-w", db)
    assert code in (0, 1), out
    with (tmp_path / "out" / "clientes.clean.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    in_file = {r["customer_id"] for r in rows if r["mailable"] == "true"}
    con = duckdb.connect(str(db), read_only=True)
    try:
        in_workspace = {r[0] for r in con.execute("SELECT customer_id FROM clean_clientes WHERE mailable").fetchall()}
    finally:
        con.close()
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["counts"]
    assert in_file == in_workspace  # one row flipped to mailable after dedupe in the workspace only, before
    assert counts["mailable"] == len(in_file)
    assert counts["mailable"] + sum(counts["not_mailable"].values()) == len(rows)
    assert f"mailable {len(in_file)} of {len(rows)}" in out


def test_a_run_that_deduplicates_ignores_the_clusters_of_the_last_run(tmp_path: Path) -> None:
    """Clusters left in the workspace by an earlier run (here one that joined everybody, as an
    over-merging model once did) must not decide tonight's send list when tonight's run
    deduplicates again: the clean file is byte for byte the one a fresh workspace gives."""
    fresh_db, stale_db = tmp_path / "fresh.duckdb", tmp_path / "stale.duckdb"
    code, out = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "fresh", "-w", fresh_db)
    assert code in (0, 1), out
    con = duckdb.connect(str(stale_db))
    try:
        con.execute("CREATE TABLE dedupe_records AS SELECT customer_id, 'C0000001' AS cluster_id FROM "
                    f"read_csv('{tmp_path / 'fresh' / 'clientes.clean.csv'}', all_varchar = true)")
    finally:
        con.close()
    code, out = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "stale", "-w", stale_db)
    assert code in (0, 1), out
    fresh = (tmp_path / "fresh" / "clientes.clean.csv").read_bytes()
    assert b",true" in fresh  # somebody is mailable, so the comparison can fail
    assert (tmp_path / "stale" / "clientes.clean.csv").read_bytes() == fresh
