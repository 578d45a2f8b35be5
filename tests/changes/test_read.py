"""The diff's reader: DuckDB reads plain exports itself; every other file goes to the full loader.

Either way the table must be the one the full loader gives (same columns, values and row
numbers), so the comparison and its outputs do not depend on which path read a file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest

from crmtool.changes.read import SAMPLE_BYTES, read_side
from crmtool.io.readers import load_file
from crmtool.workspace import Workspace

HEADER = ["customer_id", "first_name", "email", "city", "total_spent"]
ROWS = [["C1", "José", "jose@example.com", "València", "10,50"],
        [" C2 ", "Zoë", "", "Madrid", ""],
        ["", "Íñigo", "inigo@example.com", "", "7"],
        ["C1", "Ana", "ana@example.com", "Bilbao", "1,00"]]


def _csv(path: Path, rows: list[list[str]], *, header: list[str] = HEADER, delimiter: str = ",",
         encoding: str = "utf-8", prefix: bytes = b"", suffix: bytes = b"") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n" if delimiter == ";" else "\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(prefix + buf.getvalue().encode(encoding) + suffix)
    return path


def _same_as_loader(ws: Workspace, path: Path) -> bool:
    """Read ``path`` both ways; assert the tables agree; return whether the direct path was taken."""
    con = ws.con
    side = read_side(con, path, "side")
    loaded = load_file(con, path, "loaded")
    assert (side.rows, side.unparseable_rows, side.format) == (loaded.rows, len(loaded.parse_rejects), loaded.format)
    columns = [r[0] for r in con.execute('DESCRIBE "loaded"').fetchall() if r[0] != "_row"]
    select = ", ".join(f'"{c}"' for c in columns)
    ours = con.execute(f'SELECT {side.row_sql()} AS r, {select} FROM "side" ORDER BY r').fetchall()
    theirs = con.execute(f'SELECT _row AS r, {select} FROM "loaded" ORDER BY r').fetchall()
    assert ours == theirs
    assert [r[0] for r in con.execute('DESCRIBE "side"').fetchall() if r[0] != "_row"] == columns
    return side.fast


def test_spanish_cp1252_semicolon_export_is_read_directly(ws: Workspace, tmp_path: Path) -> None:
    path = _csv(tmp_path / "old.csv", ROWS, delimiter=";", encoding="cp1252")
    assert _same_as_loader(ws, path)


@pytest.mark.parametrize("delimiter", [",", "\t", "|", ";"])
def test_utf8_exports_are_read_directly(ws: Workspace, tmp_path: Path, delimiter: str) -> None:
    assert _same_as_loader(ws, _csv(tmp_path / "new.csv", ROWS, delimiter=delimiter))


def test_a_utf8_byte_order_mark_is_read_directly(ws: Workspace, tmp_path: Path) -> None:
    assert _same_as_loader(ws, _csv(tmp_path / "bom.csv", ROWS, prefix=b"\xef\xbb\xbf"))


def test_parquet_is_read_directly(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "old.parquet"
    duckdb.execute(f"""COPY (SELECT * FROM (VALUES ('C1', 10, DATE '2024-01-02'), ('C2', NULL, NULL))
                       t(customer_id, orders, since)) TO '{path}' (FORMAT parquet)""")
    assert _same_as_loader(ws, path)


def test_cp1252_with_a_euro_sign_goes_to_the_loader(ws: Workspace, tmp_path: Path) -> None:
    # 0x80 is the euro sign in cp1252 and a control character in Latin-1: the loader transcodes
    path = _csv(tmp_path / "euro.csv", [*ROWS, ["C9", "Ana", "a@x.es", "Madrid", "5 €"]], delimiter=";",
                encoding="cp1252")
    assert not _same_as_loader(ws, path)
    assert ("5 €",) in ws.con.execute('SELECT total_spent FROM "side"').fetchall()


def test_latin1_bytes_after_the_sample_go_to_the_loader(ws: Workspace, tmp_path: Path) -> None:
    filler = [[f"D{i:06d}", "Ana", "ana@example.com", "Madrid", "1"] for i in range(SAMPLE_BYTES // 30)]
    path = _csv(tmp_path / "late.csv", filler, suffix=b"D9,Jos\xe9,j@x.es,Madrid,1\n")
    assert not _same_as_loader(ws, path)
    assert ws.con.execute("SELECT first_name FROM side WHERE customer_id = 'D9'").fetchall() == [("José",)]


def test_unparseable_rows_are_counted_by_the_loader(ws: Workspace, tmp_path: Path) -> None:
    path = _csv(tmp_path / "ragged.csv", [ROWS[0], ["C5", "only two"], *ROWS[1:]])
    assert not _same_as_loader(ws, path)
    assert read_side(ws.con, path, "again").unparseable_rows == 1


@pytest.mark.parametrize("header", [["customer_id", "email", "Email", "city", "total_spent"],
                                    ["customer_id", "", "email", "city", "total_spent"],
                                    ["customer_id", "_ROW", "email", "city", "total_spent"]])
def test_headers_the_loader_renames_go_to_the_loader(ws: Workspace, tmp_path: Path, header: list[str]) -> None:
    assert not _same_as_loader(ws, _csv(tmp_path / "renamed.csv", ROWS, header=header))


def test_an_empty_export_is_the_loaders_error(ws: Workspace, tmp_path: Path) -> None:
    from crmtool.errors import InputError

    path = _csv(tmp_path / "empty.csv", [])
    with pytest.raises(InputError, match="no data rows"):
        read_side(ws.con, path, "side")
