"""Suppression import: any encoding, tokens only, idempotent, column inference, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtool.errors import InputError, UsageError
from crmtool.normalise import phone_e164
from crmtool.privacy.suppress import import_suppressions
from crmtool.workspace import Workspace

from .conftest import EXAMPLES, cli, workspace_containing


def test_example_unsubscribes_in_cp1252_become_tokens(ws: Workspace) -> None:
    result = import_suppressions(ws, EXAMPLES / "bajas.csv", "unsubscribe")
    assert result.added == {"email": 3} and result.unusable == 0
    tokens = {r[0] for r in ws.con.execute("SELECT token FROM privacy_suppressions WHERE channel = 'email'").fetchall()}
    assert tokens == {
        ws.hasher.token(e) for e in ("anagarcia@gmail.com", "j.perez@hotmail.es", "elena.silva4000@hotmail.com")
    }
    dates = ws.con.execute(
        "SELECT CAST(added_at AS DATE)::VARCHAR, source, kind FROM privacy_suppressions ORDER BY 1"
    ).fetchall()
    assert dates[0] == ("2026-03-12", "bajas.csv", "unsubscribe") and dates[1][0] == "2026-05-02"
    again = import_suppressions(ws, EXAMPLES / "bajas.csv", "unsubscribe")
    assert again.added == {} and again.already_present == 3


def test_nothing_in_clear_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = cli(
        "suppress", "import", EXAMPLES / "bajas.csv", "--kind", "unsubscribe", "-w", tmp_path / "w.duckdb"
    )
    assert code == 0, output
    assert "added 3 (email 3)" in output
    assert workspace_containing(tmp_path / "w.duckdb", ["ana.garcia", "perez", "elena"]) == {}


def test_single_column_file_infers_each_value(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text("contacto\nC0000007\n600 12 34 56\nLUIS@X.ES\n\n", encoding="latin-1")
    result = import_suppressions(ws, path, "do_not_contact")
    assert result.added == {"email": 1, "id": 1, "phone": 1}
    got = set(ws.con.execute("SELECT channel, token FROM privacy_suppressions").fetchall())
    h = ws.hasher
    assert got == {
        ("id", h.token("C0000007")),
        ("email", h.token("luis@x.es")),
        ("phone", h.token(phone_e164("600 12 34 56"))),
    }


def test_several_identifier_columns_tabs_and_bom(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "complaints.csv"
    path.write_bytes("customer_id\temail\ttelefono\r\nC1\ta@x.es\t+34 600 000 001\r\n".encode("utf-8-sig"))
    result = import_suppressions(ws, path, "complaint")
    assert result.added == {"email": 1, "id": 1, "phone": 1}


def test_utf16_is_read_and_a_compressed_file_is_a_clear_input_error(ws: Workspace, tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "bajas-utf16.csv"
    path.write_bytes("email\r\nA@x.es\r\n".encode("utf-16"))
    assert import_suppressions(ws, path, "unsubscribe").added == {"email": 1}
    packed = tmp_path / "bajas.csv"
    packed.write_bytes(gzip.compress(b"email\r\nb@x.es\r\n" * 50))
    with pytest.raises(InputError, match=r"bajas\.csv"):
        import_suppressions(ws, packed, "unsubscribe")
    assert ws.con.execute("SELECT count(*) FROM privacy_suppressions").fetchall()[0][0] == 1
    code, output = cli("suppress", "import", packed, "--kind", "unsubscribe", "-w", ":memory:")
    assert code == 2 and "error: " in output and "Traceback" not in output


def test_bad_kind_and_no_identifier_column(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(UsageError, match="unknown suppression kind"):
        import_suppressions(ws, path, "spam")
    with pytest.raises(InputError, match="no identifier column found"):
        import_suppressions(ws, path, "unsubscribe")
    assert ws.con.execute("SELECT count(*) FROM privacy_suppressions").fetchall()[0][0] == 0
    code, output = cli("suppress", "import", path, "--kind", "spam", "-w", ":memory:")
    assert code == 2 and "unknown suppression kind 'spam'" in output
