"""Erasure end to end: nothing left in clear anywhere, proof by hashes, erased people never come back."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from crmtool.audit import CHAIN, iter_entries
from crmtool.io.readers import load_file
from crmtool.normalise import collapse_spaces, fix_mojibake, normalise_email, phone_e164, title_name
from crmtool.privacy.erase import check_erasures, drop_erased, erase
from crmtool.workspace import Workspace

from .conftest import EXAMPLES, RULES, cli, files_containing, read_csv, workspace_containing

REQUESTS = EXAMPLES / "erasure-requests.csv"


def _example_rows() -> list[dict[str, str]]:
    return read_csv(EXAMPLES / "clientes.csv", encoding="cp1252", delimiter=";")


def _erased_people() -> tuple[list[dict[str, str]], list[str]]:
    """Rows of the example export that the example requests name, and clear values to look for."""
    rows = _example_rows()
    requests = read_csv(REQUESTS)
    ids = {r["customer_id"] for r in requests if r["customer_id"]}
    emails = {normalise_email(r["email"]) for r in requests if r["email"]}
    phones = {phone_e164(r["phone"]) for r in requests if r["phone"]}
    hit = [
        r
        for r in rows
        if r["customer_id"].strip() in ids
        or normalise_email(r["email"]) in emails
        or (r["phone"] and phone_e164(r["phone"]) in phones)
    ]
    hit_ids = {r["customer_id"].strip() for r in hit}
    hit = [r for r in rows if r["customer_id"].strip() in hit_ids]
    others = [r for r in rows if r["customer_id"].strip() not in hit_ids]
    other_text = "|".join(
        "|".join(v or "" for v in r.values()) + "|" + title_name(fix_mojibake(r["last_name"])) for r in others
    ).lower()
    needles: set[str] = set()
    for r in hit:
        needles.add(r["customer_id"].strip())
        if "@" in r["email"]:
            needles.add(normalise_email(r["email"]))
        e164 = phone_e164(r["phone"]) if r["phone"] else None
        if e164:
            needles.add(e164[-9:])
        if len(r["national_id"].strip()) >= 8:
            needles.add(r["national_id"].strip())
        surname = title_name(fix_mojibake(collapse_spaces(r["last_name"])))
        if surname.lower() not in other_text:  # only names that single this person out
            needles.add(surname)
    return hit, sorted(needles)


@pytest.fixture
def cleaned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    db, out = tmp_path / "crm.duckdb", tmp_path / "out"
    code, output = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", out, "-w", db)
    assert code in (0, 1), output
    return db, out


def test_the_example_requests_name_real_people() -> None:
    hit, needles = _erased_people()
    assert len({r["customer_id"] for r in hit}) == 3
    assert "elena.silva4000@hotmail.com" in needles and "646230636" in needles and "C0000002" in needles
    assert "Silva Dubois" in needles


def test_after_erase_no_clear_value_is_left_in_files_or_workspace(cleaned: tuple[Path, Path], tmp_path: Path) -> None:
    db, out = cleaned
    _hit, needles = _erased_people()
    old = tmp_path / "saved" / "clientes.clean.csv"
    old.parent.mkdir()
    shutil.copy(out / "clientes.clean.csv", old)
    # the search finds them before: a test that cannot fail proves nothing
    assert set(files_containing(out, needles)) >= {str(out / "clientes.clean.csv")}
    before = {n for hits in workspace_containing(db, needles).values() for n in hits}
    assert before == {n.lower() for n in needles}

    code, output = cli("erase", "--requests", REQUESTS, "--out", out, "-w", db)
    assert code == 0, output
    assert "1 not found" in output and "ARCO-2026-004" in output

    assert files_containing(tmp_path, needles, skip=[old]) == {}
    assert workspace_containing(db, needles) == {}
    raw = db.read_bytes().lower()  # not even in the file's free blocks: the workspace was compacted
    assert [n for n in needles if n.lower().encode("utf-8") in raw] == []

    code, output = cli("erase", "--check", REQUESTS, "--out", out, "-w", db)
    assert code == 0, output
    assert "4/4 requests proven" in output
    code, output = cli("audit", "verify", "-w", db)
    assert code == 0, output


def test_check_fails_before_erase_and_when_someone_comes_back(cleaned: tuple[Path, Path]) -> None:
    db, out = cleaned
    code, output = cli("erase", "--check", REQUESTS, "--out", out, "-w", db)
    assert code == 1
    assert "ARCO-2026-001: NOT proven" in output and "not recorded" in output
    assert cli("erase", "--requests", REQUESTS, "--out", out, "-w", db)[0] == 0
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE data_import2 AS SELECT 1 AS _row, 'C0000002' AS customer_id")
    con.close()
    code, output = cli("erase", "--check", REQUESTS, "--out", out, "-w", db)
    assert code == 1
    assert "ARCO-2026-001: NOT proven" in output and "workspace rows still name it" in output


def test_reimporting_the_old_export_does_not_bring_them_back(cleaned: tuple[Path, Path], tmp_path: Path) -> None:
    db, out = cleaned
    hit, needles = _erased_people()
    old = tmp_path / "old.csv"
    shutil.copy(out / "clientes.clean.csv", old)
    raw_copy = tmp_path / "raw.csv"
    shutil.copy(EXAMPLES / "clientes.csv", raw_copy)
    assert cli("erase", "--requests", REQUESTS, "--out", out, "-w", db)[0] == 0
    with Workspace(db) as ws:
        load_file(ws.con, old, "data_old")
        dropped = drop_erased(ws, "data_old", "customer_id", "email", "phone")
        assert dropped == len({r["customer_id"] for r in hit})  # the old clean export has one row each
        load_file(ws.con, raw_copy, "data_raw")  # the messy original: upper case, spaces, 0034 prefixes
        assert drop_erased(ws, "data_raw") >= len({r["customer_id"] for r in hit})
        for table in ("data_old", "data_raw"):
            text = ws.con.execute(f"SELECT lower(string_agg(CAST(t AS VARCHAR), '|')) FROM {table} t").fetchall()[0][0]
            assert not [n for n in needles if n.lower() in text]
    # a pseudonymised export of the old file leaves them out too
    code, output = cli(
        "export", old, "--policy", EXAMPLES / "policy-support.yaml", "--out", tmp_path / "s.csv", "-w", db
    )
    assert code == 0, output
    assert f"left out {len({r['customer_id'] for r in hit})} erased people" in output
    assert files_containing(tmp_path, needles, skip=[old, raw_copy]) == {}


def test_unknown_identifiers_are_reported_not_errors(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute("CREATE TABLE data_c AS SELECT 1 AS _row, 'C1' AS customer_id, 'a@x.es' AS email")
    req = tmp_path / "r.csv"
    req.write_text("ref;customer_id\nR1;C404\nR2;C1\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "out")
    assert result.not_found_refs == ["R1"]
    assert result.rows_removed == {"data_c": 1}
    check = check_erasures(ws, req)
    assert check.ok  # R1 is recorded, so the person is dropped if ever imported


def test_dedupe_clusters_widen_the_erasure_and_absent_tables_are_fine(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE clean_c AS SELECT * FROM (VALUES (1, 'C1', 'ana@x.es', '600000001'), "
        "(2, 'C2', 'ana.g@x.es', '600000002'), (3, 'C3', 'bob@x.es', '600000003')) "
        "v(_row, customer_id, email, phone)"
    )
    req = tmp_path / "r.csv"
    req.write_text("email\nANA@x.es\n", encoding="utf-8")
    no_dedupe = erase(ws, req, out_dir=tmp_path / "o1")
    assert no_dedupe.rows_removed == {"clean_c": 1}
    ws.con.execute("INSERT INTO clean_c VALUES (1, 'C1', 'ana@x.es', '600000001')")
    ws.con.execute(
        "CREATE TABLE dedupe_clusters AS SELECT * FROM (VALUES ('C1', 10), ('C2', 10), ('C3', 11)) "
        "v(customer_id, cluster_id)"
    )
    widened = erase(ws, req, out_dir=tmp_path / "o2")
    assert widened.rows_removed == {"clean_c": 2, "dedupe_clusters": 2}
    assert ws.con.execute("SELECT customer_id FROM clean_c").fetchall() == [("C3",)]
    # C2 was a duplicate: its own email is now recorded, so it is dropped on a later import
    ws.con.execute("CREATE TABLE data_new AS SELECT 1 AS _row, 'C9' AS customer_id, 'ANA.G@X.ES ' AS email")
    assert drop_erased(ws, "data_new", "customer_id", "email", None) == 1


def test_erasure_reaches_campaign_arms(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE clean_c AS SELECT * FROM (VALUES (1, 'C1', 'ana@x.es'), (2, 'C2', 'bob@x.es')) "
        "v(_row, customer_id, email)"
    )
    ws.con.execute(
        "CREATE TABLE crm_campaign_members AS SELECT * FROM (VALUES ('spring', 'C1', 'A'), ('spring', 'C2', 'holdout'),"
        " ('autumn', 'C1', 'B')) v(campaign, customer_id, arm)"
    )
    req = tmp_path / "r.csv"
    req.write_text("email\nana@x.es\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"clean_c": 1, "crm_campaign_members": 2}
    assert ws.con.execute("SELECT customer_id FROM crm_campaign_members").fetchall() == [("C2",)]


def test_phone_erasure_matches_any_spelling(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE data_p AS SELECT * FROM (VALUES (1, 'C1', '600 12 34 56'), (2, 'C2', '0034600123456'),"
        " (3, 'C3', '+34 600-123-457'), (4, 'C4', '74434')) v(_row, customer_id, phone)"
    )
    req = tmp_path / "r.csv"
    req.write_text("phone\n+34600123456\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"data_p": 2}
    ws.con.execute(
        "CREATE TABLE data_q AS SELECT * FROM (VALUES (1, 'X1', '600123456'), (2, 'X2', '600123457')) "
        "v(_row, customer_id, phone)"
    )
    assert drop_erased(ws, "data_q", None, None, "phone") == 1


def test_requests_in_cp1252_with_semicolons(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute("CREATE TABLE data_c AS SELECT 1 AS _row, 'C1' AS customer_id, 'josé@x.es' AS email")
    req = tmp_path / "r.csv"
    req.write_bytes("referencia;correo;fecha\nSOL-1;JOSÉ@x.es;01/02/2026\n".encode("cp1252"))
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"data_c": 1} and result.not_found_refs == []
    log = tmp_path / "o" / "crmtool.audit"
    audit = [e for e in iter_entries(log) if e["type"] == "erasure"]
    assert len(audit) == 1 and audit[0]["request"] == "SOL-1" and audit[0]["requested_at"] == "2026-02-01"
    assert str(audit[0]["identifier"]).startswith("k:")
    assert "jos" not in (log / CHAIN).read_text(encoding="utf-8").lower()


def test_request_file_without_identifiers_is_an_input_error(ws: Workspace, tmp_path: Path) -> None:
    req = tmp_path / "r.csv"
    req.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(Exception) as err:
        erase(ws, req, out_dir=tmp_path / "o")
    assert "no identifier column found" in str(err.value)
    assert not (tmp_path / "o").exists()


def test_cli_missing_key_stops_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = cli(
        "erase",
        "--requests",
        REQUESTS,
        "--out",
        tmp_path / "o",
        "-w",
        tmp_path / "w.duckdb",
        "--key-file",
        tmp_path / "missing.key",
    )
    assert code == 2 and "key file" in output and "does not exist" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_erase_needs_exactly_one_mode(tmp_path: Path) -> None:
    code, output = cli("erase", "-w", tmp_path / "w.duckdb")
    assert code == 2 and "exactly one of --requests FILE or --check FILE" in output


def test_a_shared_address_of_an_erased_person_does_not_erase_others_later(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE clean_c AS SELECT * FROM (VALUES (1, 'C1', 'info@shop.es', '600000001'), "
        "(2, 'C2', 'info@shop.es', '600000002'), (3, 'C3', 'c3@x.es', '600000003')) v(_row, customer_id, email, phone)"
    )
    req = tmp_path / "r.csv"
    req.write_text("customer_id\nC1\nC3\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"clean_c": 2}
    recorded = {r[0] for r in ws.con.execute("SELECT token FROM privacy_erasures").fetchall()}
    h = ws.hasher
    assert h.token("c3@x.es") in recorded and h.token("+34600000003") in recorded  # C3's own identifiers
    assert h.token("info@shop.es") not in recorded  # C2 still uses it
    ws.con.execute(
        "CREATE TABLE data_new AS SELECT * FROM (VALUES (1, 'C2', 'info@shop.es', '600000002'), "
        "(2, 'C7', 'C3@x.es', NULL)) v(_row, customer_id, email, phone)"
    )
    assert drop_erased(ws, "data_new") == 1
    assert ws.con.execute("SELECT customer_id FROM data_new").fetchall() == [("C2",)]


def test_rewritten_export_is_the_old_one_minus_the_erased_rows(cleaned: tuple[Path, Path]) -> None:
    db, out = cleaned
    hit, _needles = _erased_people()
    ids = {r["customer_id"].strip() for r in hit}
    before = (out / "clientes.clean.csv").read_text(encoding="utf-8").splitlines()
    assert cli("erase", "--requests", REQUESTS, "--out", out, "-w", db)[0] == 0
    after = (out / "clientes.clean.csv").read_text(encoding="utf-8").splitlines()
    assert after == [line for line in before if line.split(",")[0] not in ids]
    assert len(before) - len(after) == len(ids)


def test_other_features_tables_are_cleaned_too(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute("CREATE TABLE clean_c AS SELECT 1 AS _row, 'C1' AS customer_id, 'ana@x.es' AS email")
    ws.con.execute(
        "CREATE TABLE dedupe_prep AS SELECT * FROM (VALUES (1, 'C1', 'ana@x.es'), (2, 'C2', 'bob@x.es')) "
        "v(__rid, __id, f0_email)"
    )
    ws.con.execute(
        "CREATE TABLE segments_membership AS SELECT * FROM (VALUES ('r1', 'vip', 'C1', 'in', NULL), "
        "('r1', 'vip', 'C2', 'in', NULL)) v(run_id, segment, customer_id, status, holdout)"
    )
    ws.con.execute("CREATE TABLE email_checks AS SELECT 'ANA@x.es' AS email, 'valid' AS status")
    req = tmp_path / "r.csv"
    req.write_text("email\nana@x.es\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"clean_c": 1, "dedupe_prep": 1, "email_checks": 1, "segments_membership": 1}
    assert ws.con.execute("SELECT __id FROM dedupe_prep").fetchall() == [("C2",)]


def test_odd_spellings_and_other_rows_of_the_same_customer_are_found(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE data_c AS SELECT * FROM (VALUES (1, 'C1', 'mailto:Ana@X.es', NULL), "
        "(2, ' C1 ', 'other@x.es', NULL), (3, 'C2', '<ANA@x.es>', NULL), (4, 'C3', 'bob@x.es', NULL)) "
        "v(_row, customer_id, email, phone)"
    )
    req = tmp_path / "r.csv"
    req.write_text("email\nana@x.es\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"data_c": 3}
    assert ws.con.execute("SELECT customer_id FROM data_c").fetchall() == [("C3",)]


def test_a_cleaned_table_from_another_load_shares_row_numbers_not_people(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE data_c AS SELECT * FROM (VALUES (1, 'C1', 'ana@x.es'), (2, 'C2', 'bob@x.es')) "
        "v(_row, customer_id, email)"
    )
    ws.con.execute(  # left by an earlier clean of another file: row 1 is somebody else
        "CREATE TABLE clean_c AS SELECT * FROM (VALUES (1, 'C9', 'eva@x.es'), (2, 'C2', 'bob@x.es')) "
        "v(_row, customer_id, email)"
    )
    req = tmp_path / "r.csv"
    req.write_text("email\n ANA@x.es\nbob@x.es\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "o")
    assert result.rows_removed == {"data_c": 2, "clean_c": 1}
    assert ws.con.execute("SELECT customer_id FROM clean_c").fetchall() == [("C9",)]


def test_outputs_are_rewritten_only_where_they_are_what_crmtool_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir()
    other.mkdir()
    db = tmp_path / "w.duckdb"
    monkeypatch.chdir(first)
    assert cli("clean", EXAMPLES / "clientes.csv", "-r", RULES, "--out", "out", "-w", db)[0] in (0, 1)
    # another folder holds an unrelated file at the same relative path
    (other / "out").mkdir()
    unrelated = other / "out" / "clientes.clean.csv"
    unrelated.write_text("customer_id,email\nC0000002,antonio.romero4745@icloud.com\n", encoding="utf-8")
    monkeypatch.chdir(other)
    code, output = cli("erase", "--requests", REQUESTS, "--out", other / "o", "-w", db)
    assert code == 0, output
    assert "C0000002" in unrelated.read_text(encoding="utf-8")  # not ours: untouched
    # the registry keeps absolute paths: the files of the first folder are found from anywhere
    assert "C0000002" not in (first / "out" / "clientes.clean.csv").read_text(encoding="utf-8")
    monkeypatch.chdir(first)
    code, output = cli("erase", "--check", REQUESTS, "--out", other / "o", "-w", db)
    assert code == 0, output
