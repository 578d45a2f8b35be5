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
