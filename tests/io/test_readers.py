"""io.readers: encodings, delimiters, quoting, parse rejects with physical line numbers, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.errors import ExitCode, InputError
from crmtool.io.readers import load_file
from crmtool.workspace import Workspace


def _load(ws: Workspace, tmp_path: Path, data: bytes, name: str = "in.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_file(ws.con, path, "t")


def _rows(ws: Workspace) -> list[tuple]:
    return ws.con.execute("SELECT * FROM t ORDER BY _row").fetchall()


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("id,name\n1,Muñoz\n2,José Ñandú\n".encode(), "utf-8"),
        ("id,name\n1,Muñoz\n2,José Ñandú\n".encode("utf-8-sig"), "utf-8-sig"),
        ("id,name\n1,Muñoz\n2,José Ñandú\n".encode("cp1252"), "cp1252"),
        # 0x81 is undefined in cp1252, so only Latin-1 decodes this file
        ("id,name\n1,Muñoz\n2,José Ñandú\x81\n".encode("latin-1"), "latin-1"),
    ],
    ids=["utf8", "utf8-bom", "cp1252", "latin1"],
)
def test_encodings_are_detected_and_decoded(ws: Workspace, tmp_path: Path, data: bytes,
                                            encoding: str) -> None:
    result = _load(ws, tmp_path, data)
    assert result.encoding == encoding
    assert result.columns == ["id", "name"]  # a BOM must not leak into the first column name
    rows = _rows(ws)
    assert rows[0] == (1, "1", "Muñoz")
    assert rows[1][2].startswith("José Ñandú")
    assert f"encoding {encoding}" in result.describe()


def test_cp1252_euro_sign(ws: Workspace, tmp_path: Path) -> None:
    result = _load(ws, tmp_path, "id;amount\n1;5 €\n".encode("cp1252"))
    assert result.encoding == "cp1252"
    assert _rows(ws) == [(1, "1", "5 €")]


@pytest.mark.parametrize(("delim", "word"),
                         [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_delimiters_are_detected_and_described(ws: Workspace, tmp_path: Path, delim: str, word: str) -> None:
    text = delim.join(["id", "name", "city"]) + "\n" + delim.join(["1", "Ana", "Madrid"]) + "\n" \
        + delim.join(["2", "Bo", "Sevilla"]) + "\n"
    result = _load(ws, tmp_path, text.encode())
    assert result.delimiter == delim
    assert result.columns == ["id", "name", "city"]
    assert _rows(ws) == [(1, "1", "Ana", "Madrid"), (2, "2", "Bo", "Sevilla")]
    assert result.describe() == f"in.csv: csv, encoding utf-8, delimiter {word}, 2 rows, 3 columns"


def test_quoted_fields_with_newlines_quotes_and_delimiters(ws: Workspace, tmp_path: Path) -> None:
    data = b'id;note;city\n1;"line one\nline two";Madrid\n2;"he said ""hola""";Vigo\n3;"a;b,c|d";Lugo\n'
    result = _load(ws, tmp_path, data)
    assert result.delimiter == ";"
    assert not result.parse_rejects
    assert _rows(ws) == [(1, "1", "line one\nline two", "Madrid"), (2, "2", 'he said "hola"', "Vigo"),
                         (3, "3", "a;b,c|d", "Lugo")]


def test_crlf_and_missing_final_newline(ws: Workspace, tmp_path: Path) -> None:
    _load(ws, tmp_path, b"id,name\r\n1,Ana\r\n2,Bo")
    assert _rows(ws) == [(1, "1", "Ana"), (2, "2", "Bo")]


def test_ragged_rows_go_to_parse_rejects_with_line_numbers(ws: Workspace, tmp_path: Path) -> None:
    data = b"id,name,city\n1,Ana,Madrid\n2,Bo\n3,Cy,Vigo,extra\n4,Di,Lugo\n"
    result = _load(ws, tmp_path, data)
    assert [(r.line, r.raw) for r in result.parse_rejects] == [(3, "2,Bo"), (4, "3,Cy,Vigo,extra")]
    assert result.parse_rejects[0].reason.startswith("missing columns")
    assert result.parse_rejects[1].reason.startswith("too many columns")
    assert [r[1] for r in _rows(ws)] == ["1", "4"]
    assert _rows(ws)[1][0] == 2  # _row counts the rows that were read
    assert result.describe().endswith("2 rows, 3 columns, 2 unparseable rows")


def test_parse_reject_line_is_the_physical_line_after_an_embedded_newline(ws: Workspace,
                                                                          tmp_path: Path) -> None:
    # the quoted field spans lines 2-3, so the short row is on physical line 5 (record 4)
    data = b'id,note,c\n1,"a\nb",x\n2,ok,y\n3,short\n4,fine,z\n'
    result = _load(ws, tmp_path, data)
    assert [(r.line, r.raw) for r in result.parse_rejects] == [(5, "3,short")]


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_parse_reject_line_for_every_encoding_and_line_end(ws: Workspace, tmp_path: Path, eol: str,
                                                           encoding: str) -> None:
    text = eol.join(["id;nota;c", '1;"Ñ', 'b";x', "2;corta", "3;bien;z", "4;mal;y;w", ""])
    result = _load(ws, tmp_path, text.encode(encoding))
    assert [(r.line, r.raw) for r in result.parse_rejects] == [(4, "2;corta"), (6, "4;mal;y;w")]
    assert [r[1] for r in _rows(ws)] == ["1", "3"]


def test_cp1252_with_c1_bytes_keeps_rows_and_reject_lines(ws: Workspace, tmp_path: Path) -> None:
    # the euro sign and curly quotes are C1 bytes in cp1252: read through a UTF-8 rewrite
    text = "\n".join(["id;importe;nota", "1;5 €;“sí”", "2;corta", "3;7 €;bien", ""])
    result = _load(ws, tmp_path, text.encode("cp1252"))
    assert result.encoding == "cp1252"
    assert [(r.line, r.raw) for r in result.parse_rejects] == [(3, "2;corta")]
    assert [r[1:] for r in _rows(ws)] == [("1", "5 €", "“sí”"), ("3", "7 €", "bien")]


def test_broken_quoting_goes_to_parse_rejects(ws: Workspace, tmp_path: Path) -> None:
    data = b'id,name,c\n1,Ana,x\n2,"Bo,y\n3,Cy,z\n'
    result = _load(ws, tmp_path, data)
    assert len(result.parse_rejects) == 1
    reject = result.parse_rejects[0]
    assert reject.line == 3
    assert "quote" in reject.reason
    assert reject.raw.startswith('2,"Bo')
    assert [r[1] for r in _rows(ws)] == ["1"]


def test_only_unparseable_rows_is_an_input_error_not_zero_rows(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"none of its 1 rows could be read with comma as delimiter.*line 2") as err:
        _load(ws, tmp_path, b"id,name,c\n1,Ana\n")
    assert "--input-delimiter" in err.value.hint
    assert not ws.table_exists("data_in")


def test_duplicate_and_blank_headers_are_renamed(ws: Workspace, tmp_path: Path) -> None:
    result = _load(ws, tmp_path, b"id,ID,,_row,_ROW\n1,2,3,4,5\n")
    assert result.columns == ["id", "ID_2", "column_3", "_row_2", "_ROW_3"]
    assert result.renamed_columns == {"ID": "ID_2", "(empty header 3)": "column_3", "_row": "_row_2",
                                      "_ROW": "_ROW_3"}


def test_parquet_is_read_with_types_and_row_ordinal(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    values = "VALUES (2, 'Bo', DATE '2020-01-02'), (1, 'Ana', NULL)"
    duckdb.execute(f"COPY (SELECT * FROM ({values}) v(id, name, d)) TO '{path}' (FORMAT parquet)")
    result = load_file(ws.con, path, "t")
    assert (result.format, result.rows, result.columns) == ("parquet", 2, ["id", "name", "d"])
    assert result.encoding is None
    assert result.describe() == "in.parquet: parquet, 2 rows, 3 columns"
    rows = ws.con.execute("SELECT _row, id, name FROM t ORDER BY _row").fetchall()
    assert rows == [(1, 2, "Bo"), (2, 1, "Ana")]


def test_parquet_without_magic_bytes_is_refused(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a Parquet file"):
        _load(ws, tmp_path, b"id,name\n1,a\n", "in.parquet")


def test_empty_parquet_is_an_input_error(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    duckdb.execute(f"COPY (SELECT 1 AS id WHERE false) TO '{path}' (FORMAT parquet)")
    with pytest.raises(InputError, match="no data rows"):
        load_file(ws.con, path, "t")


def _garbage() -> bytes:
    import random

    rnd = random.Random(7)
    return bytes(rnd.randrange(256) for _ in range(4000))


def _garbage_without_nul() -> bytes:
    import random

    rnd = random.Random(8)
    return bytes(rnd.randrange(1, 256) for _ in range(4000))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "no such file"),
        (b"", "empty (0 bytes)"),
        (b"  \n\n \t \r\n", "empty"),
        (b"id,name,city\n", "header but no data rows"),
        (b"id,name", "header but no data rows"),
        (b"id,name\n\n\n", "header but no data rows"),
        (_garbage(), "binary"),
        (_garbage_without_nul(), "binary"),
        ("folder", "is a folder"),
    ],
    ids=["missing", "zero-bytes", "whitespace-only", "header-only", "header-no-eol", "header-blank-lines",
         "binary", "binary-no-nul", "folder"],
)
def test_bad_input_is_a_one_line_input_error(ws: Workspace, tmp_path: Path, data: bytes | str | None,
                                             message: str) -> None:
    path = tmp_path / "in.csv"
    if data == "folder":
        path.mkdir()
    elif isinstance(data, bytes):
        path.write_bytes(data)
    with pytest.raises(InputError) as info:
        load_file(ws.con, path, "t")
    err = info.value
    assert message in err.message
    assert "\n" not in err.message
    assert str(path) in err.message
    assert err.exit_code == ExitCode.USAGE == 2


def test_reading_never_touches_the_input(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    data = "id;name\n1;Muñoz\n2;x\n".encode("cp1252")
    path.write_bytes(data)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    load_file(ws.con, path, "t")
    assert path.read_bytes() == data
    assert path.stat().st_mtime == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_cr_only_line_ends(ws: Workspace, tmp_path: Path) -> None:
    # old Mac / some CRM exports end lines with a bare CR; the header sniffing once raised csv.Error
    result = _load(ws, tmp_path, b'id,name\r1,"A\rna"\r2,Bo\r3\r')
    assert _rows(ws) == [(1, "1", "A\rna"), (2, "2", "Bo")]
    assert [r.line for r in result.parse_rejects] == [5]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_bom_is_read_not_called_binary(ws: Workspace, tmp_path: Path, codec: str) -> None:
    text = "\ufeff" if codec == "utf-16-be" else ""
    data = (text + "id\tnombre\r\n1\tMuñoz\r\n2\tx\ty\r\n").encode(codec)
    result = _load(ws, tmp_path, data)
    assert result.encoding == "utf-16" and result.delimiter == "\t"
    assert _rows(ws) == [(1, "1", "Muñoz")]
    assert [(r.line, r.raw) for r in result.parse_rejects] == [(3, "2\tx\ty")]


_CSV_CHARS = st.sampled_from(list(',;\t|"\r\n abcÑé€\'0123\\'))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200),
                      st.text(alphabet=_CSV_CHARS, max_size=80).map(lambda s: s.encode("utf-8")),
                      st.text(alphabet=_CSV_CHARS, max_size=80).map(lambda s: s.encode("cp1252"))))
def test_any_bytes_load_or_give_an_input_error(ws: Workspace, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    try:
        result = load_file(ws.con, path, "t")
    except InputError as exc:
        assert "\n" not in exc.message
        return
    assert result.rows + len(result.parse_rejects) >= 1


@pytest.mark.parametrize("data", [b"\xfe\xff\x00\x00\x00",  # found by the property test above
                                  "id,name\n1,Ana\n".encode("utf-16") + b"\x00"])
def test_utf16_cut_short_is_an_input_error(ws: Workspace, tmp_path: Path, data: bytes) -> None:
    """A UTF-16 file with an odd number of bytes is cut short: one line naming the file, not a traceback."""
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        load_file(ws.con, path, "t")
    assert str(path) in caught.value.message and "not valid utf-16" in caught.value.message
    assert "\n" not in caught.value.message


def test_parquet_column_named_row_is_renamed_and_reported(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    duckdb.execute(f"COPY (SELECT 1 AS id, 5 AS _ROW, 'x' AS \"a\"\"b\") TO '{path}' (FORMAT parquet)")
    result = load_file(ws.con, path, "t")
    assert result.columns == ["id", "_ROW_2", 'a"b']
    assert result.renamed_columns == {"_ROW": "_ROW_2"}
    assert ws.con.execute("SELECT * FROM t").fetchall() == [(1, 1, 5, "x")]
