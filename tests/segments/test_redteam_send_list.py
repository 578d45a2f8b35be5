"""Red team: a person suppressed by one identifier never comes out of a segment send list, whichever
identifier the register holds (real register file, real workspace, the send list's bytes)."""

from __future__ import annotations

import pytest

from crmtool.privacy.mailable import mailable_table
from crmtool.privacy.suppress import import_suppressions
from crmtool.workspace import Workspace

HEADER = ["customer_id", "email", "phone", "national_id", "consent", "signup"]
ROWS = [["C1", "ana@x.es", "600123456", "16783115S", "yes", ""],
        ["C2", "bob@x.es", "611111111", "11111111H", "yes", ""]]


@pytest.mark.parametrize(("column", "value"), [("national_id", "16783115-s"), ("email", "ANA@X.ES"),
                                                ("phone", "+34 600 12 34 56"), ("customer_id", "C1")])
def test_a_send_list_leaves_out_a_person_suppressed_by_any_identifier(  # type: ignore[no-untyped-def]
        kit, monkeypatch: pytest.MonkeyPatch, column: str, value: str) -> None:
    monkeypatch.chdir(kit.tmp)  # the audit log of the import goes to the working folder
    path = kit.write_csv("p.csv", HEADER, ROWS)
    (kit.tmp / "dnc.csv").write_text(f"{column}\n{value}\n", encoding="utf-8")
    with Workspace(":memory:") as ws:
        import_suppressions(ws, kit.tmp / "dnc.csv", "do_not_contact")
        # the same workspace's mailable flag leaves C1 out: the send list must agree
        ws.con.execute("CREATE TABLE c (customer_id VARCHAR, email VARCHAR, phone VARCHAR, national_id VARCHAR, "
                       "consent VARCHAR, signup VARCHAR)")
        ws.con.executemany("INSERT INTO c VALUES (?, ?, ?, ?, ?, ?)", ROWS)
        m = mailable_table(ws, "c", email_column="email", consent_column="consent", key_column="customer_id",
                           phone_column="phone", nif_columns=("national_id",), row_column="customer_id")
        assert ws.con.execute(f"SELECT customer_id FROM {m.table} WHERE mailable").fetchall() == [("C2",)]
        kit.run(ws, "segments: [{name: all, when: 'TRUE'}]\n", path)
    sent = (kit.tmp / "out" / "segments" / "all.csv").read_bytes()
    assert b"C2" in sent
    assert b"C1" not in sent and b"ana@x.es" not in sent.lower()


def _send_list(kit, rows: list[list[str]], unsubscribed: str) -> bytes:  # type: ignore[no-untyped-def]
    """The bytes of segment ``all`` for ``rows`` after ``unsubscribed`` (an email) is imported as an
    unsubscribe into the same workspace."""
    path = kit.write_csv("p.csv", HEADER, rows)
    (kit.tmp / "bajas.csv").write_text(f"email\n{unsubscribed}\n", encoding="utf-8")
    with Workspace(":memory:") as ws:
        import_suppressions(ws, kit.tmp / "bajas.csv", "unsubscribe")
        kit.run(ws, "segments: [{name: all, when: 'TRUE'}]\n", path)
    return bytes((kit.tmp / "out" / "segments" / "all.csv").read_bytes())


def test_a_send_list_leaves_out_a_customer_whose_later_row_is_suppressed(kit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The export holds customer C1 twice (an old and a new address); the person unsubscribed with the
    second. Suppression follows the person: mailable leaves both rows out, and so must the send list."""
    monkeypatch.chdir(kit.tmp)
    rows = [["C1", "ana@x.es", "", "", "yes", ""], ["C2", "bob@x.es", "", "", "yes", ""],
            ["C1", "ana.new@x.es", "", "", "yes", ""]]
    sent = _send_list(kit, rows, "ana.new@x.es")
    assert b"C2" in sent
    assert b"C1" not in sent and b"ana" not in sent


@pytest.mark.parametrize("cell", ["Ana <ana@x.es>", "otra@y.es; ana@x.es", "ana@x.es\u200b"])
def test_a_send_list_leaves_out_a_cell_a_mail_platform_reads_as_a_suppressed_address(  # type: ignore[no-untyped-def]
        kit, monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
    monkeypatch.chdir(kit.tmp)
    sent = _send_list(kit, [["C1", cell, "", "", "yes", ""], ["C2", "bob@x.es", "", "", "yes", ""]], "ana@x.es")
    assert b"C2" in sent
    assert b"C1" not in sent and b"ana@" not in sent
