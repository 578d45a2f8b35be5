"""A request erased by an earlier run is reported as *already erased* (date and run), not *not found*."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmtool.privacy.erase import ALREADY_ERASED, ERASED, NOT_FOUND, check_erasures, erase
from crmtool.workspace import Workspace

from .conftest import EXAMPLES, RULES, cli


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef0123456789")
    w = Workspace(tmp_path / "crm.duckdb")
    w.__enter__()
    w.con.execute(
        "CREATE TABLE clean_c AS SELECT * FROM (VALUES (1, 'C1', 'Ana.Garcia@gmail.com', '600000001'), "
        "(2, 'C2', 'bob@x.es', '600000002'), (3, 'C3', 'eva@x.es', '600000003')) v(_row, customer_id, email, phone)"
    )
    yield w  # type: ignore[misc]
    w.__exit__(None, None, None)


def _requests(tmp_path: Path, text: str, name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _by_ref(result: object) -> dict[str, dict[str, object]]:
    return {r["request"]: r for r in result.requests}  # type: ignore[attr-defined]


def test_the_same_file_run_again_says_already_erased_with_date_and_run(ws: Workspace, tmp_path: Path) -> None:
    req = _requests(tmp_path, "ref,customer_id,email\nR1,C1,\nR2,,bob@x.es\nR3,C404,\n")
    first = erase(ws, req, out_dir=tmp_path / "out")
    assert {k: v["status"] for k, v in _by_ref(first).items()} == {"R1": ERASED, "R2": ERASED, "R3": NOT_FOUND}
    assert first.as_dict()["already_erased"] == 0

    second = erase(ws, req, out_dir=tmp_path / "out")
    again = _by_ref(second)
    assert {k: v["status"] for k, v in again.items()} == {
        "R1": ALREADY_ERASED, "R2": ALREADY_ERASED, "R3": NOT_FOUND}
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    for ref in ("R1", "R2"):
        assert again[ref]["erased_at"] == today and again[ref]["erased_by_run"] == first.run_id
    assert "erased_at" not in again["R3"]  # never erased: nothing to date
    d = second.as_dict()
    assert (d["erased"], d["already_erased"], d["not_found"], d["complete"]) == (0, 2, 1, True)
    # a third run still points at the first erasure, not at the run that found them already gone
    third = _by_ref(erase(ws, req, out_dir=tmp_path / "out"))
    assert third["R1"]["erased_by_run"] == first.run_id

    check = check_erasures(ws, req)
    assert check.ok and len(check.requests) == 3
    dated = {r.ref: (r.erased_at, r.erased_by_run) for r in check.requests}
    assert dated == {"R1": (today, first.run_id), "R2": (today, first.run_id), "R3": (None, None)}


def test_a_new_request_for_a_linked_identifier_of_an_erased_person(ws: Workspace, tmp_path: Path) -> None:
    first = erase(ws, _requests(tmp_path, "ref,customer_id\nR1,C1\n"), out_dir=tmp_path / "out")
    # the person's address (any spelling) was recorded as a linked identifier of the erasure
    later = erase(ws, _requests(tmp_path, "ref,email\nR9,anagarcia+news@googlemail.com\n", "r2.csv"),
                  out_dir=tmp_path / "out")
    r9 = _by_ref(later)["R9"]
    assert r9["status"] == ALREADY_ERASED and r9["erased_by_run"] == first.run_id
    # someone never erased stays not found, and someone still here is erased now
    mixed = erase(ws, _requests(tmp_path, "ref,email\nR10,zoe@x.es\nR11,eva@x.es\n", "r3.csv"),
                  out_dir=tmp_path / "out")
    assert {k: v["status"] for k, v in _by_ref(mixed).items()} == {"R10": NOT_FOUND, "R11": ERASED}


def test_outcomes_are_recorded_as_tokens_only(ws: Workspace, tmp_path: Path) -> None:
    req = _requests(tmp_path, "ref,customer_id\nR1,C1\nR3,C404\n")
    erase(ws, req, out_dir=tmp_path / "out")
    erase(ws, req, out_dir=tmp_path / "out")
    rows = ws.con.execute(
        "SELECT request_ref, identifier_type, status, length(token) FROM privacy_erasures ORDER BY ALL").fetchall()
    assert {(ref, status) for ref, _t, status, _n in rows} == {
        ("R1", "erased"), ("R1", "linked"), ("R3", "not_found")}
    assert {n for *_x, n in rows} == {32}
    text = ws.con.execute("SELECT lower(string_agg(CAST(p AS VARCHAR), '|')) FROM privacy_erasures p").fetchall()[0][0]
    assert "r1" in text  # the search sees the table's text
    assert [n for n in ("c1'", "ana.garcia", "anagarcia", "600000001", "c404") if n in text] == []


def test_entries_from_before_outcomes_were_recorded_prove_nothing(ws: Workspace, tmp_path: Path) -> None:
    req = _requests(tmp_path, "ref,customer_id\nR1,C1\n")
    erase(ws, req, out_dir=tmp_path / "out")
    ws.con.execute("UPDATE privacy_erasures SET status = NULL")  # as an older workspace holds them
    assert _by_ref(erase(ws, req, out_dir=tmp_path / "out"))["R1"]["status"] == NOT_FOUND


def test_cli_rerun_and_check_show_the_earlier_erasure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef0123456789")
    db = tmp_path / "crm.duckdb"
    code, out = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "out", "-w", db)
    assert code in (0, 1), out
    req = _requests(tmp_path, "ref,customer_id\nR1,C0000002\nR2,Z404404\n")
    code, out = cli("erase", "--requests", req, "-w", db, "--out", tmp_path / "out", "--format", "json")
    assert code == 0, out
    run_id = json.loads(out)["run_id"]
    code, out = cli("erase", "--requests", req, "-w", db, "--out", tmp_path / "out")
    assert code == 0, out
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"R1: already erased on {today} by run {run_id}" in out
    assert "R2: not_found" in out and "1 already erased earlier" in out
    code, out = cli("erase", "--check", req, "-w", db, "--out", tmp_path / "out")
    assert code == 0, out
    assert f"R1: proven (erased on {today} by run {run_id})" in out and "R2: proven\n" in out
    code, out = cli("erase", "--check", req, "-w", db, "--out", tmp_path / "out", "--format", "json")
    checked = {r["request"]: r for r in json.loads(out)["requests"]}
    assert checked["R1"]["erased_by_run"] == run_id and checked["R2"]["erased_at"] is None


def test_a_large_rewritten_file_keeps_its_row_order(ws: Workspace, tmp_path: Path) -> None:
    """Several of DuckDB's parallel chunks: the file is rewritten in its own order, minus the erased rows."""
    big = tmp_path / "big.csv"
    lines = [f"C{i:07d},p{i}@x.es" for i in range(300_000)]
    big.write_text("customer_id,email\n" + "\n".join(lines) + "\n", encoding="utf-8")
    req = _requests(tmp_path, "ref,customer_id\nR1,C0000007\nR2,C0250001\n")
    result = erase(ws, req, out_dir=tmp_path / "out", outputs=[big])
    assert result.outputs == {str(big.resolve()): 2}
    gone = {"C0000007,p7@x.es", "C0250001,p250001@x.es"}
    assert big.read_text(encoding="utf-8").splitlines() == ["customer_id,email", *[x for x in lines if x not in gone]]
