"""Red team: a suppressed person never reaches the send list, whatever spelling their identifier has
in the register or in the customer table (real workspace, real register files, real DuckDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtool.privacy.mailable import mailable_table
from crmtool.privacy.suppress import import_suppressions
from crmtool.workspace import Workspace

BASE = {"customer_id": "C0000001", "email": "x@y.es", "phone": "611111111", "national_id": "11111111H"}


def _flag(tmp: Path, register: str, column: str, row_value: str, *, encoding: str = "utf-8") -> tuple[bool, str]:
    """(mailable, reason) of one customer whose ``column`` is ``row_value``, after a suppression
    file (written in ``encoding``) holding ``register`` in that column was imported."""
    row = dict(BASE, **{column: row_value})
    (tmp / "s.csv").write_bytes(f"{column}\n{register}\n".encode(encoding))
    with Workspace(":memory:") as ws:
        ws.con.execute("CREATE TABLE clean_c (_row BIGINT, customer_id VARCHAR, email VARCHAR, phone VARCHAR, "
                       "national_id VARCHAR, consent VARCHAR)")
        ws.con.execute("INSERT INTO clean_c VALUES (1, ?, ?, ?, ?, 'yes')",
                       [row["customer_id"], row["email"], row["phone"], row["national_id"]])
        import_suppressions(ws, tmp / "s.csv", "do_not_contact")
        s = mailable_table(ws, "clean_c", email_column="email", consent_column="consent", key_column="customer_id",
                           phone_column="phone", nif_columns=("national_id",))
        mailable, reason = ws.con.execute(f"SELECT mailable, not_mailable_reason FROM {s.table}").fetchall()[0]
    return bool(mailable), str(reason)


# a NIF pasted from a spreadsheet or a word processor: no-break space (cp1252 0xA0), en dash
# (cp1252 0x96), full-width characters from an East Asian keyboard layout
NIF_SPELLINGS = ["16783115\u00a0S", "\u00a016783115S\u00a0", "16783115\u2013S", "16.783.115\u2011S",
                 "\uff11\uff16\uff17\uff18\uff13\uff11\uff11\uff15\uff33", "16783115S", "es-16783115-s"]


@pytest.mark.parametrize("spelling", NIF_SPELLINGS)
def test_a_nif_suppressed_plainly_stops_every_spelling_in_the_table(tmp_path: Path, spelling: str) -> None:
    assert _flag(tmp_path, "16783115S", "national_id", spelling) == (False, "suppressed")


@pytest.mark.parametrize("spelling", [s for s in NIF_SPELLINGS if s.isascii() or s[8] in "\u00a0\u2013"])
def test_a_nif_suppressed_from_a_cp1252_file_stops_the_plain_spelling(tmp_path: Path, spelling: str) -> None:
    assert _flag(tmp_path, spelling, "national_id", "16783115S", encoding="cp1252") == (False, "suppressed")


def test_a_register_written_before_nfkc_still_stops_the_same_odd_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registers hold tokens of the canonical form of their day: an entry imported as ``16783115<NBSP>S``
    by a crmtool without NFKC still stops a row spelled the same way."""
    import crmtool.identity.keys as keys
    from crmtool.identity.canonical import canonical_nif, legacy_nif

    spelling = "16783115\u00a0S"
    assert canonical_nif(spelling) != legacy_nif(spelling)
    (tmp_path / "s.csv").write_bytes(f"national_id\n{spelling}\n".encode("cp1252"))
    with Workspace(":memory:") as ws:
        ws.con.execute("CREATE TABLE clean_c (_row BIGINT, customer_id VARCHAR, email VARCHAR, national_id VARCHAR, "
                       "consent VARCHAR)")
        ws.con.execute("INSERT INTO clean_c VALUES (1, 'C1', 'a@b.es', ?, 'yes'), (2, 'C2', 'c@d.es', '16783115S', "
                       "'yes'), (3, 'C3', 'e@f.es', '11111111H', 'yes')", [spelling])
        with monkeypatch.context() as m:  # the register as the old canonical form wrote it
            m.setattr(keys, "canonical_nif", legacy_nif)
            import_suppressions(ws, tmp_path / "s.csv", "do_not_contact")
        s = mailable_table(ws, "clean_c", email_column="email", consent_column="consent", key_column="customer_id",
                           nif_columns=("national_id",))
        flags = ws.con.execute(f"SELECT _row, mailable FROM {s.table} ORDER BY 1").fetchall()
    # row 2 (the plain spelling) is not in that old register: only a new import reaches it
    assert flags == [(1, False), (2, True), (3, True)]


# cells a mail platform reads as the suppressed address (or as several addresses, one of them the
# suppressed one), which crmtool's identity layer cannot match against the register as one address
CELLS = ["Ana Garcia <ana.garcia@gmail.com>", "ana.garcia@gmail.com; otra@x.es", "otra@x.es, ana.garcia@gmail.com",
         "otra@x.es;ana.garcia@gmail.com", "ana.garcia@gmail.com\u200b", "\ufeffana.garcia@gmail.com",
         "ana.garcia@gmail.com\totra@x.es"]


@pytest.mark.parametrize("cell", CELLS)
def test_a_cell_a_mail_platform_reads_as_the_suppressed_address_is_not_mailable(tmp_path: Path, cell: str) -> None:
    mailable, reason = _flag(tmp_path, "ana.garcia@gmail.com", "email", cell)
    assert not mailable and reason in ("suppressed", "no_email")


@pytest.mark.parametrize("cell", ["ana.garcia@gmail.com", " <ANA.GARCIA@gmail.com> ", "mailto:ana.garcia@gmail.com",
                                  "josé.núñez@correo.es"])
def test_a_plain_address_nobody_suppressed_stays_mailable(tmp_path: Path, cell: str) -> None:
    assert _flag(tmp_path, "otra@x.es", "email", cell) == (True, "None")


@pytest.mark.parametrize("entry", ["Ana García <Ana.Garcia@gmail.com>", "ana.garcia@gmail.com\u200b",
                                   "\ufeffanagarcia@gmail.com"])
def test_a_register_entry_with_a_display_name_or_invisible_characters_stops_the_address(
        tmp_path: Path, entry: str) -> None:
    """An unsubscribe list copied from a mail client: the entry is the address it names."""
    assert _flag(tmp_path, entry, "email", "anagarcia@gmail.com") == (False, "suppressed")


@pytest.mark.parametrize("entry", ['"otra@y.es; Ana.Garcia@gmail.com"', '"ana.garcia@gmail.com, otra@y.es"'])
def test_a_register_entry_listing_several_addresses_stops_each(tmp_path: Path, entry: str) -> None:
    assert _flag(tmp_path, entry, "email", "anagarcia@gmail.com") == (False, "suppressed")
