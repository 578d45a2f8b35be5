"""suggest_dedupe_section on generated data (a section that loads and finds the planted pairs), the shipped
example equal to suggest's output, and the review list's order, cap and reasons."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml
from typer.testing import CliRunner

from crmtool.dedupe.api import dedupe
from crmtool.dedupe.review import ordered_sql, summarise
from crmtool.dedupe.spec import spec_from_text
from crmtool.dedupe.suggest import suggest_dedupe_section, suggest_yaml
from crmtool.io.readers import load_file
from crmtool.workspace import Workspace
from dedupe_people import HH_COLS as COLS
from dedupe_people import generate
from dedupe_people import load_people as _load

ROOT = Path(__file__).resolve().parents[2]


def test_suggest_finds_the_planted_pairs_and_keeps_spouses_apart(ws: Workspace) -> None:
    rows, dups, spouses = generate()
    section = suggest_dedupe_section(ws.con, _load(ws, rows))
    assert section["id"] == "customer_id"
    by_column = {c["column"]: c["method"] for c in section["comparisons"]}
    assert by_column == {"nombre": "name", "apellidos": "surname", "fecha_nacimiento": "date", "correo": "email",
                         "telefono": "phone", "nif": "levenshtein", "codigo_postal": "levenshtein",
                         "ciudad": "jaro_winkler"}
    assert section["household"]["comparisons"] == ["correo", "telefono", "codigo_postal", "ciudad"]
    assert "email_consent" not in by_column and section["survivorship"]["consent"] == ["email_consent"]
    spec = spec_from_text(suggest_yaml(section))  # the YAML loads as a rule file
    dedupe(ws, "people", spec, None)
    cluster = dict(ws.con.execute("SELECT record_id, cluster_id FROM dedupe_records").fetchall())
    found = sum(cluster[a] == cluster[b] for a, b in dups)
    assert found == len(dups)
    assert not any(cluster[a] == cluster[b] for a, b in spouses)


def test_suggest_keeps_blocking_within_budget(ws: Workspace) -> None:
    """Everyone born the same day and in one postcode: rules keyed on those alone exceed the budget."""
    rows, _, _ = generate(1500)  # ~1,800 rows: one block of all of them is ~1.6M pairs, budget 18,000
    for r in rows:
        r[3], r[7] = "01/01/1980", "28001"
    section = suggest_dedupe_section(ws.con, _load(ws, rows))
    names = [b["name"] for b in section["blocking"]]
    assert "birth" not in names and "birth_postcode" not in names
    assert {"correo", "telefono", "nif"} <= {b["on"][0].split(":")[0] for b in section["blocking"]}


def test_shipped_example_is_what_suggest_writes() -> None:
    shipped = yaml.safe_load((ROOT / "rules" / "30-dedupe.yaml").read_text(encoding="utf-8"))["dedupe"]
    with Workspace(":memory:") as ws:
        load_file(ws.con, ROOT / "examples" / "clientes.csv", "clientes")
        suggested = suggest_dedupe_section(ws.con, "clientes")
    for key in ("id", "blocking", "comparisons", "household", "veto", "veto_unless", "threshold", "review",
                "split_below", "model"):
        assert shipped[key] == suggested[key], key


def test_cli_suggest_prints_a_rule_file(tmp_path: Path) -> None:
    from crmtool.cli import app

    rows, _, _ = generate(100)
    data = tmp_path / "clientes.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLS, *rows])
    res = CliRunner().invoke(app, ["dedupe", str(data), "--suggest", "--workspace", ":memory:"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("# written by 'crmtool dedupe --suggest'")
    rules = tmp_path / "30-dedupe.yaml"
    rules.write_text(res.stdout, encoding="utf-8")
    res = CliRunner().invoke(app, ["dedupe", str(data), "--rules", str(rules), "--out", str(tmp_path / "o"),
                                   "--workspace", ":memory:", "--format", "json"])
    assert res.exit_code == 0, res.output


def test_review_order_groups_by_cluster_and_value(ws: Workspace) -> None:
    con = ws.con
    con.execute("""CREATE TABLE rv AS SELECT * FROM (VALUES
        (1, 2, 0.5, 0.0, 'review_band', 1, 2.0, ''),   -- cluster 1: best 2.0
        (1, 3, 0.9, 0.0, 'review_band', 1, 0.6, ''),
        (7, 8, 0.5, 0.0, 'review_band', 7, 5.0, ''),   -- cluster 7: best 5.0, read first
        (7, 9, 0.99, 0.0, 'veto', 7, 1.5, ''),
        (4, 5, 0.6, 0.0, 'chaining', 4, 1.0, '')
        ) t(l, r, match_probability, match_weight, reason, cluster, value, reasons)""")
    order = con.execute(f"SELECT l, r, rank FROM ({ordered_sql('rv')}) ORDER BY rank").fetchall()
    assert [(a, b) for a, b, _ in order] == [(7, 8), (7, 9), (1, 2), (1, 3), (4, 5)]
    s = summarise(con, "rv", 3)
    assert (s.pairs, s.written, s.clusters) == (5, 3, 2)
    assert s.omitted_by_reason == {"review_band": 1, "chaining": 1}


def test_review_file_is_capped_with_reasons(ws: Workspace, tmp_path: Path) -> None:
    rows, _, _ = generate(400)
    spec = spec_from_text(suggest_yaml(suggest_dedupe_section(ws.con, _load(ws, rows))).replace(
        "review: 0.5", "review: 0"))  # every candidate pair not merged
    result = dedupe(ws, "people", spec, tmp_path, review_limit=5)
    with (tmp_path / "review.csv").open(encoding="utf-8", newline="") as fh:
        review = list(csv.DictReader(fh))
    assert result.review.pairs > 5 and result.review.written == len(review) == 5
    assert sum(result.review.omitted_by_reason.values()) == result.review.pairs - 5
    assert [int(r["rank"]) for r in review] == [1, 2, 3, 4, 5]
    assert all(r["top_reasons"].count(";") == 2 for r in review)  # three strongest reasons each
    assert all("=" in r["top_reasons"] for r in review)
