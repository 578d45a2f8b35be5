"""Retention that reaches everywhere and survives the next clean; subject exports follow erasure; metrics."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from .conftest import EXAMPLES, RULES, cli, files_containing, workspace_containing

PERSONAL = ("first_name", "last_name", "email", "phone", "national_id", "birth_date")


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    return lines, list(csv.DictReader(lines))


def _anonymise_rules(folder: Path) -> Path:
    """A rule file that anonymises name and email of people unseen for 3 years (``last_seen``)."""
    rules = folder / "rules.yaml"
    rules.write_text(
        "version: 1\ndataset: {key: customer_id}\nrules:\n  - {name: t, kind: trim, columns: [email]}\n"
        "retention:\n  - {name: old, inactive_for: 3y, activity_columns: [last_seen], action: anonymise,\n"
        "     anonymise_columns: [name, email], date_formats: ['%Y-%m-%d']}\n", encoding="utf-8")
    return rules


def _metrics(db: Path, command: str) -> dict[tuple[str, str], float]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT m.name, m.dimension, m.value FROM crm_metrics m JOIN crm_runs r ON r.run_id = m.run_id "
            "WHERE r.command = ? AND r.run_id = (SELECT run_id FROM crm_runs WHERE command = ? "
            "ORDER BY started_at DESC LIMIT 1)",  # the newest run (two runs may share a second)
            [command, command]).fetchall()
    finally:
        con.close()
    return {(str(n), str(d)): float(v) for n, d, v in rows if v is not None}


@pytest.mark.slow
def test_anonymised_people_leave_every_output_and_stay_anonymised_after_the_next_clean(tmp_path: Path) -> None:
    export = tmp_path / "inputs" / "clientes.csv"
    export.parent.mkdir()
    shutil.copy(EXAMPLES / "clientes.csv", export)
    db = tmp_path / "crm.duckdb"
    code, out = cli("clean", export, "--rules", RULES, "--out", tmp_path / "out", "-w", db)
    assert code in (0, 1), out
    before_lines, before = _rows(tmp_path / "out" / "clientes.clean.csv")
    assert (tmp_path / "out" / "golden.csv").is_file() and (tmp_path / "out" / "clusters.csv").is_file()

    code, out = cli("retention", "apply", "-r", RULES, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 0, out
    after_lines, after = _rows(tmp_path / "out" / "clientes.clean.csv")
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(after_lines[1:], before_lines[1:], strict=True)) if a != b]
    assert changed, "the example has inactive customers"
    for i in changed:  # the anonymised rows: personal columns blank, the rest kept
        assert all(not after[i][c] for c in PERSONAL) and after[i]["last_order_date"] == before[i]["last_order_date"]
    # every personal value of the anonymised people that nobody who stays also holds
    kept_values = {r[c].strip().lower() for i, r in enumerate(before) if i not in changed for c in PERSONAL}
    needles = sorted({before[i][c].strip().lower() for i in changed for c in ("email", "phone", "national_id")
                      if len(before[i][c].strip()) > 5} - kept_values)
    assert len(needles) > 20
    golden = (tmp_path / "out" / "golden.csv").read_text(encoding="utf-8").lower()
    assert not [n for n in needles if n in golden], "golden records are anonymised too"

    # the next clean of the same export: the decision is applied before anything is persisted
    code, out = cli("clean", export, "--rules", RULES, "--out", tmp_path / "out2", "-w", db)
    assert code in (0, 1), out
    assert files_containing(tmp_path, needles, skip=[export]) == {}
    assert workspace_containing(db, needles) == {}
    raw = db.read_bytes().lower()
    assert not [n for n in needles if n.encode() in raw]
    # rows not due are byte-identical to the first clean's
    again_lines, again = _rows(tmp_path / "out2" / "clientes.clean.csv")
    kept_first = {r["customer_id"]: before_lines[i + 1] for i, r in enumerate(before) if i not in changed}
    kept_again = {r["customer_id"]: again_lines[i + 1] for i, r in enumerate(again) if r["customer_id"]}
    assert kept_again == kept_first

    metrics = _metrics(db, "retention")
    assert metrics[("rows_anonymised", "")] == len(changed)
    assert metrics[("people_anonymised", "")] >= 1 and metrics[("rows_deleted", "")] == 0
    assert metrics[("unparseable_dates", "")] == 0
    assert metrics[("outputs_rewritten", "")] >= 2  # the clean export and the golden records


def test_an_anonymisation_blanks_golden_records_segment_lists_and_keeps_the_csv_dialect(tmp_path: Path) -> None:
    rules = _anonymise_rules(tmp_path)
    data = tmp_path / "people.csv"
    data.write_text("customer_id,name,email,last_seen\nC1,Zoraida Quintanilla,zoraida.q@x.es,2015-01-01\n"
                    "C2,Anselmo Prieto,anselmo.p@x.es,2026-10-01\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    code, out = cli("clean", data, "-r", rules, "--out", tmp_path / "out", "-w", db, "--csv-dialect", "excel-es")
    assert code == 0, out
    clean = tmp_path / "out" / "people.clean.csv"
    raw_before = clean.read_bytes()
    assert b";" in raw_before.splitlines()[0]
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 0, out
    raw_after = clean.read_bytes()
    assert raw_after[:3] == raw_before[:3]  # same byte-order mark (or none)
    lines_before, lines_after = raw_before.splitlines(), raw_after.splitlines()
    assert lines_after[0] == lines_before[0] and b";" in lines_after[0]  # same header, same delimiter
    assert b"zoraida" not in raw_after.lower() and lines_after[2] == lines_before[2]  # C2 untouched
    assert lines_after[1].startswith(b"C1;")


def test_a_row_without_an_id_is_matched_by_its_email_and_stays_anonymised(tmp_path: Path) -> None:
    rules = _anonymise_rules(tmp_path)
    data = tmp_path / "people.csv"
    data.write_text("customer_id,name,email,last_seen\n,Eulalia Zubiri,eulalia.zubiri@x.es,2015-01-01\n"
                    "C2,Anselmo Prieto,anselmo.p@x.es,2026-10-01\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert cli("clean", data, "-r", rules, "--out", tmp_path / "out", "-w", db)[0] == 0
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 0 and "anonymise 1 rows" in out, out
    assert cli("clean", data, "-r", rules, "--out", tmp_path / "out2", "-w", db)[0] == 0
    needles = ["eulalia", "zubiri"]
    assert files_containing(tmp_path, needles, skip=[data]) == {}
    assert workspace_containing(db, needles) == {}
    assert "anselmo.p@x.es" in (tmp_path / "out2" / "people.clean.csv").read_text(encoding="utf-8")


def test_a_subject_export_is_registered_and_deleted_when_its_person_is_erased(tmp_path: Path) -> None:
    data = tmp_path / "p.csv"
    data.write_text("customer_id,name,email\nC1,Wenceslao Urquijo,wences.urquijo@x.es\nC2,Ana Ruiz,ana.ruiz@x.es\n",
                    encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\ndataset: {key: customer_id}\nrules:\n  - {name: t, kind: trim, columns: [email]}\n",
                     encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert cli("clean", data, "-r", rules, "--out", tmp_path / "out", "-w", db)[0] == 0
    code, out = cli("subject", "export", "WENCES.URQUIJO@x.es", "--out", tmp_path / "s", "-w", db, "--format", "json")
    assert code == 0, out
    result = json.loads(out)
    written = {Path(result["json_path"]).resolve(), Path(result["csv_path"]).resolve()}
    con = duckdb.connect(str(db), read_only=True)
    try:
        registered = {Path(p) for (p,) in con.execute(
            "SELECT path FROM crm_outputs WHERE kind = 'subject_export'").fetchall()}
    finally:
        con.close()
    assert registered == written
    requests = tmp_path / "requests.csv"
    requests.write_text("request_ref,customer_id\nARCO-1,C1\n", encoding="utf-8")
    code, out = cli("erase", "--requests", requests, "--out", tmp_path / "out", "-w", db, "--format", "json")
    assert code == 0, out
    assert sorted(Path(p).resolve() for p in json.loads(out)["subject_exports_deleted"]) == sorted(written)
    assert not any(p.exists() for p in written)
    needles = ["wenceslao", "urquijo", "wences.urquijo@x.es"]
    assert files_containing(tmp_path, needles, skip=[data]) == {}
    assert workspace_containing(db, needles) == {}
    assert cli("erase", "--check", requests, "--out", tmp_path / "out", "-w", db)[0] == 0

    metrics = _metrics(db, "erase")
    assert metrics[("requests", "")] == 1 and metrics[("erased", "")] == 1
    assert metrics[("not_found", "")] == 0 and metrics[("ambiguous", "")] == 0
    assert metrics[("people_erased", "")] == 1 and metrics[("rows_removed", "clean_p")] == 1
    assert metrics[("subject_exports_deleted", "")] == 2  # its JSON and CSV


def test_a_retention_that_stops_on_unparseable_dates_records_them(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ndataset: {key: customer_id}\nrules:\n  - {name: t, kind: trim, columns: [customer_id]}\n"
        "retention:\n  - {name: old, inactive_for: 3y, activity_columns: [last_seen], action: delete,\n"
        "     date_formats: ['%Y-%m-%d']}\n", encoding="utf-8")
    data = tmp_path / "people.csv"
    data.write_text("customer_id,last_seen\nC1,2015-01-01\nC2,31/12/2099\nC3,someday\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert cli("clean", data, "-r", rules, "--out", tmp_path / "out", "-w", db)[0] == 0
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 2, out
    metrics = _metrics(db, "retention")
    assert metrics[("unparseable_dates", "")] == 2 and metrics[("unparseable_dates", "clean_people.last_seen")] == 2
    code, out = cli("retention", "apply", "-r", rules, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01",
                    "--allow-unparseable-dates")
    assert code == 0, out
    metrics = _metrics(db, "retention")
    assert metrics[("rows_deleted", "")] == 1 and metrics[("people_deleted", "")] == 1
    assert metrics[("unparseable_dates", "")] == 2 and metrics[("rows_anonymised", "")] == 0


@pytest.mark.slow
def test_retention_after_a_segment_run_takes_the_membership_rows_it_cannot_blank(tmp_path: Path) -> None:
    """segments_membership keys its rows by a NOT NULL customer id: an anonymised person's rows go."""
    db = tmp_path / "crm.duckdb"
    code, out = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "out", "-w", db)
    assert code in (0, 1), out
    code, out = cli("segment", tmp_path / "out" / "clientes.clean.csv", "--segments", RULES.parent / "segments.yaml",
                    "--orders", EXAMPLES / "pedidos.csv", "--events", EXAMPLES / "eventos.csv",
                    "--out", tmp_path / "seg", "-w", db)
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    members_before = con.execute("SELECT count(*) FROM segments_membership").fetchall()[0][0]
    con.close()
    code, out = cli("retention", "apply", "-r", RULES, "--out", tmp_path / "out", "-w", db, "--as-of", "2026-11-01")
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    try:
        members_after = con.execute("SELECT count(*) FROM segments_membership").fetchall()[0][0]
    finally:
        con.close()
    assert 0 < members_after < members_before  # the anonymised people's history went, the others' stayed
