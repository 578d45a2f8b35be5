"""Issue 16, analysts: excel-es CSV on every output, xlsx in and out, input overrides."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from crmtool.errors import InputError, UsageError
from crmtool.io.readers import ReadOptions, load_file
from crmtool.io.writers import OutputOptions, write_query
from crmtool.workspace import Workspace

from .conftest import EXAMPLE, FOUNDATION_RULES, RULES, cli

KEY = {"CRMTOOL_KEY": "test-key-0123456789abcdef"}
BOM = b"\xef\xbb\xbf"


def _rows(path: Path, encoding: str = "utf-8-sig", delimiter: str = ";") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding)), delimiter=delimiter))


@pytest.fixture
def ws() -> Workspace:
    with Workspace(":memory:", create_key=False) as w:
        yield w  # type: ignore[misc]


# --- the options object -----------------------------------------------------------------------

def test_excel_es_is_semicolon_decimal_comma_and_bom(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    query = ("SELECT * FROM (VALUES ('Muñoz', 12.5::DOUBLE, '1170.41', '1.2.3.4', '+34 600')) "
             "t(name, amount, text_amount, ip, phone)")
    write_query(ws.con, query, out, "csv", options=OutputOptions.build("excel-es"))
    data = out.read_bytes()
    assert data.startswith(BOM)
    assert _rows(out) == [["name", "amount", "text_amount", "ip", "phone"],
                          ["Muñoz", "12,5", "1170,41", "1.2.3.4", "+34 600"]]


def test_ansi_dialect_and_overrides(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    write_query(ws.con, "SELECT 'Muñoz' AS n, 2.25::DOUBLE AS x", out, "csv",
                options=OutputOptions.build("excel-es-ansi"))
    assert out.read_bytes() == "n;x\nMuñoz;2,25\n".encode("cp1252")
    opts = OutputOptions.build("excel-es", delimiter="tab", bom=None, decimal_comma=None)
    assert (opts.delimiter, opts.decimal_comma, opts.bom) == ("\t", True, True)
    with pytest.raises(UsageError, match="decimal comma needs another delimiter"):
        OutputOptions.build(decimal_comma=True)
    with pytest.raises(UsageError, match="unknown CSV dialect"):
        OutputOptions.build("excel-fr")
    with pytest.raises(UsageError, match="one character"):
        OutputOptions.build(delimiter=";;")


def test_clean_writes_every_csv_in_the_dialect(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("clean", EXAMPLE, "--rules", RULES, "--out", out, "-w", ":memory:", "-q",
                 "--csv-dialect", "excel-es", env=KEY)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.glob("*.csv"))
    # the cleaned export and its rejects, and the dedupe section's clusters, golden and review
    assert written == ["clientes.clean.csv", "clientes.rejects.csv", "clusters.csv", "golden.csv", "review.csv"]
    for name in written:
        data = (out / name).read_bytes()
        assert data.startswith(BOM), name
        header = data[3:].split(b"\n", 1)[0]
        assert b";" in header and b"," not in header, name
    rows = _rows(out / "clientes.clean.csv")
    spent = [r[rows[0].index("total_spent")] for r in rows[1:] if r[rows[0].index("total_spent")]]
    assert spent and all("," in v and "." not in v for v in spent if not v.isdigit())
    review = _rows(out / "review.csv")
    assert all("." not in r[review[0].index("match_probability")] for r in review[1:])


def test_segment_and_emails_lists_follow_the_dialect(tmp_path: Path) -> None:
    seg = cli("segment", "run", EXAMPLE, "--segments", RULES.parent / "segments.yaml",
              "--orders", EXAMPLE.parent / "pedidos.csv", "--events", EXAMPLE.parent / "eventos.csv",
              "--as-of", "2026-11-01", "--out", tmp_path / "seg", "-w", ":memory:", "-q",
              "--delimiter", ";", "--bom", env=KEY)
    assert seg.exit_code == 0, seg.output
    lists = sorted((tmp_path / "seg" / "segments").glob("*.csv"))
    assert lists and all(p.read_bytes().startswith(BOM) for p in lists)
    assert b";" in lists[0].read_bytes().split(b"\n", 1)[0]
    em = cli("emails", EXAMPLE, "--out", tmp_path / "em", "-w", ":memory:", "-q", "--csv-dialect", "excel-es",
             "--lists", RULES / "lists", env=KEY)
    assert em.exit_code == 0, em.output
    assert (tmp_path / "em" / "emails.csv").read_bytes().startswith(BOM + b"email;normalized;status")


def test_xlsx_out_and_in_with_sheet(tmp_path: Path) -> None:
    pytest.importorskip("xlsxwriter")
    pytest.importorskip("fastexcel")
    out = tmp_path / "out"
    result = cli("clean", EXAMPLE, *[x for f in FOUNDATION_RULES for x in ("--rules", f)], "--out", out,
                 "-w", ":memory:", "-q", "--output-format", "xlsx", env=KEY)
    assert result.exit_code == 0, result.output
    book = out / "clientes.clean.xlsx"
    assert book.read_bytes()[:2] == b"PK"
    with Workspace(":memory:", create_key=False) as ws:
        loaded = load_file(ws.con, book, "t", ReadOptions(sheet="data"))
        assert loaded.format == "xlsx" and loaded.rows == 297 and "customer_id" in loaded.columns
        # ids keep their leading zeros (text stays text)
        codes = [r[0] for r in ws.con.execute("SELECT postal_code FROM t WHERE postal_code LIKE '0%'").fetchall()]
        assert codes
        assert load_file(ws.con, book, "t2", ReadOptions(sheet="1")).rows == 297
    bad = cli("validate", book, "--rules", FOUNDATION_RULES[1], "--sheet", "nope")
    assert bad.exit_code == 2 and "sheet 'nope'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 2


# --- input overrides --------------------------------------------------------------------------

def test_input_delimiter_and_encoding_override_detection(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    # '|' in the names makes detection pick pipe; the user knows it is ';'
    path.write_bytes("id;tags|kind|code\n1;Ana|Bo|Cy\n2;Muñoz|X|Y\n".encode("cp1252"))
    with Workspace(":memory:", create_key=False) as ws:
        guessed = load_file(ws.con, path, "a")
        assert guessed.delimiter == "|"
        given = load_file(ws.con, path, "b", ReadOptions(delimiter="semicolon", encoding="cp1252"))
        assert (given.delimiter, given.columns) == (";", ["id", "tags|kind|code"])
        rows = ws.con.execute('SELECT "tags|kind|code" FROM b ORDER BY _row').fetchall()
        assert rows == [("Ana|Bo|Cy",), ("Muñoz|X|Y",)]
    with Workspace(":memory:", create_key=False) as ws:
        utf8 = tmp_path / "u.csv"
        utf8.write_bytes("id,name\n1,Muñoz\n".encode())
        with pytest.raises(InputError, match=r"is not ascii \(byte 0xC3 on line 2\)") as err:
            load_file(ws.con, utf8, "c", ReadOptions(encoding="ascii"))
        assert "--input-encoding" in str(getattr(err.value, "hint", ""))
    with pytest.raises(UsageError, match="not an encoding"):
        ReadOptions(encoding="klingon")


def test_one_column_with_delimiters_in_the_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    # every line quoted whole (a spreadsheet saved as "text"): one column although ';' is there
    path.write_text('"id;name;email"\n"1;Ana;a@x.es"\n', encoding="utf-8")
    result = cli("validate", path, "--rules", FOUNDATION_RULES[1])
    assert result.exit_code == 2
    assert "read as one column, but its header holds 2 semicolons" in result.stderr
    assert "--input-delimiter 'semicolon'" in result.stderr
    result = cli("profile", path, "--input-delimiter", ",")
    assert result.exit_code == 0  # the user insisted: one column, as asked


def test_a_file_detection_cannot_read_is_exit_2_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "all_bad.csv"
    path.write_text('id,name\n1,"Ana\n2,"Bo\n', encoding="utf-8")
    result = cli("validate", path, "--rules", FOUNDATION_RULES[1], "--format", "junit")
    assert result.exit_code == 2
    assert result.stdout == ""
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "could be read" in errors[0]
    assert "hint: check the file, or pass --input-delimiter and --input-encoding" in result.stderr
    one_col = tmp_path / "semi.csv"
    one_col.write_text("id;name;email\n1;Ana;a@x.es\n", encoding="utf-8")
    ok = cli("profile", one_col, "--format", "json")
    assert ok.exit_code == 0


def _workbook(path: Path, source: Path, encoding: str) -> Path:
    """An xlsx whose data is on its second sheet 'datos' (the first holds a note), as analysts send them."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    lines = list(csv.reader(io.StringIO(source.read_bytes().decode(encoding)), delimiter=";"))
    header, rows = lines[0], [r for r in lines[1:] if len(r) == len(lines[0])]  # the example's broken lines out
    book = xlsxwriter.Workbook(str(path))
    note = book.add_worksheet("leeme")
    note.write_row(0, 0, ["nota", "origen"])
    note.write_row(1, 0, ["exportado el lunes", "CRM"])
    data = book.add_worksheet("datos")
    data.write_row(0, 0, header)
    for i, row in enumerate(rows, start=1):
        data.write_row(i, 0, row)
    book.close()
    return path


def test_sheet_on_segment_pii_and_suppress_import(tmp_path: Path) -> None:
    pytest.importorskip("fastexcel")
    book = _workbook(tmp_path / "clientes.xlsx", EXAMPLE, "cp1252")
    # pii: the first sheet has no personal data; the named one does
    first = cli("pii", book, "--format", "json")
    named = cli("pii", book, "--sheet", "datos", "--format", "json")
    assert first.exit_code == 0 and named.exit_code == 0, named.output
    assert '"email"' not in first.stdout and '"category": "email"' in named.stdout
    assert cli("pii", book, "--sheet", "nope").exit_code == 2
    # suppress import: the same entries from the sheet as from the CSV they came from
    bajas = _workbook(tmp_path / "bajas.xlsx", RULES.parent / "examples" / "bajas.csv", "utf-8")
    from_csv = cli("suppress", "import", RULES.parent / "examples" / "bajas.csv", "--kind", "unsubscribe",
                   "-w", tmp_path / "a.duckdb", "--format", "json", env=KEY)
    from_xlsx = cli("suppress", "import", bajas, "--sheet", "datos", "--kind", "unsubscribe",
                    "-w", tmp_path / "b.duckdb", "--format", "json", env=KEY)
    assert from_csv.exit_code == 0 and from_xlsx.exit_code == 0, from_xlsx.output
    assert '"added_total": 0' not in from_xlsx.stdout
    added = [line for line in from_csv.stdout.splitlines() if "added_total" in line]
    assert added and added == [line for line in from_xlsx.stdout.splitlines() if "added_total" in line]
    # segment: the customers sheet gives the same segment sizes as the CSV
    sizes = []
    for source, extra in ((EXAMPLE, []), (book, ["--sheet", "datos"])):
        result = cli("segment", "run", source, *extra, "--segments", RULES.parent / "segments.yaml",
                     "--orders", RULES.parent / "examples" / "pedidos.csv",
                     "--out", tmp_path / f"seg-{source.suffix[1:]}", "-w", ":memory:", "--as-of", "2026-11-01",
                     "--format", "json", env=KEY)
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        sizes.append({"customers": payload["customers"], **{s["name"]: s["members"] for s in payload["segments"]}})
    assert sizes[0] == sizes[1] and any(sizes[0].values())
