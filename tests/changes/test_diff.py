"""crmtool diff: engine (real DuckDB, real files) and CLI (CliRunner)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.changes import diff_exports
from crmtool.cli import app
from crmtool.errors import InputError
from crmtool.io.readers import file_sha256
from crmtool.workspace import Workspace

HEADER = ["customer_id", "first_name", "email", "city", "total_spent", "email_consent"]
OLD_ROWS = [
    ["C1", "Ana", "ana@example.com", "Madrid", "10,00", "sí"],
    ["C2", "Luis", "luis@example.com", "Sevilla", "20,00", "no"],
    ["C3", "Marta", "marta@example.com", "Bilbao", "30,00", "sí"],
    ["C4", "Pau", "pau@example.com", "Girona", "40,00", "sí"],
    ["C5", "Iker", "iker@example.com", "Bilbao", "50,00", "no"],
    ["C5", "Iker", "iker2@example.com", "Bilbao", "50,00", "no"],  # duplicate key in OLD
]
# NEW: C1 unchanged, C2 email and spend changed, C3 removed, C4 city changed (key with spaces),
# C6 added, an empty key, columns in another order, city -> still there, email_consent removed, tier added
NEW_HEADER = ["email", "tier", "total_spent", "customer_id", "city", "first_name"]
NEW_ROWS = [
    ["ana@example.com", "gold", "10,00", "C1", "Madrid", "Ana"],
    ["luis.new@example.com", "gold", "25,00", "C2", "Sevilla", "Luis"],
    ["pau@example.com", "", "40,00", " C4 ", "Barcelona", "Pau"],
    ["iker@example.com", "", "50,00", "C5", "Bilbao", "Iker"],
    ["nora@example.com", "", "0,00", "C6", "Vigo", "Nora"],
    ["nokey@example.com", "", "0,00", "", "Vigo", "Nadie"],
]


def _write(path: Path, header: list[str], rows: list[list[str]], *, delimiter: str = ",",
           encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def exports(tmp_path: Path) -> tuple[Path, Path]:
    old = _write(tmp_path / "old.csv", HEADER, OLD_ROWS, delimiter=";", encoding="cp1252")
    new = _write(tmp_path / "new.csv", NEW_HEADER, NEW_ROWS)
    return old, new


def test_counts_fields_keys_and_columns(ws: Workspace, exports: tuple[Path, Path]) -> None:
    old, new = exports
    result = diff_exports(ws, old, new, key="customer_id")
    assert result.counts == {"added": 1, "removed": 1, "changed": 2, "unchanged": 1}
    assert {k: v for k, v in result.changed_by_field.items() if v} == {"email": 1, "total_spent": 1, "city": 1}
    assert result.old.keys.duplicate_keys == 1 and result.old.keys.duplicate_rows == 2
    assert result.new.keys.empty == 1 and result.new.keys.duplicate_keys == 0
    assert result.columns.added == ["tier"]
    assert result.columns.removed == ["email_consent"]
    assert result.old.sha256 == file_sha256(old)
    # C5 is repeated in OLD, so it cannot be paired: NEW's C5 counts neither as added nor unchanged
    assert result.new.rows == 6


def test_detail_files_hash_personal_values_and_are_registered(ws: Workspace, exports: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    old, new = exports
    out = tmp_path / "diff"
    result = diff_exports(ws, old, new, key="customer_id", out_dir=out)
    changes = list(csv.DictReader((out / "changes.csv").read_text(encoding="utf-8").splitlines()))
    assert [(c["customer_id"], c["field"]) for c in changes] == [("C2", "email"), ("C2", "total_spent"),
                                                                   ("C4", "city")]
    email = changes[0]
    assert email["old_value"].startswith("k:") and email["new_value"].startswith("k:")
    assert email["old_value"] != email["new_value"]
    assert changes[1]["old_value"] == "20,00" and changes[1]["new_value"] == "25,00"  # not personal: clear
    added = list(csv.DictReader((out / "added.csv").read_text(encoding="utf-8").splitlines()))
    assert [a["customer_id"] for a in added] == ["C6"] and added[0]["email"].startswith("k:")
    removed = list(csv.DictReader((out / "removed.csv").read_text(encoding="utf-8").splitlines()))
    assert [r["customer_id"] for r in removed] == ["C3"]
    issues = list(csv.DictReader((out / "key_issues.csv").read_text(encoding="utf-8").splitlines()))
    assert sorted((i["side"], i["issue"], i["key"], i["row"]) for i in issues) == [
        ("new", "empty key", "", "6"), ("old", "duplicate key", "C5", "5"), ("old", "duplicate key", "C5", "6")]
    everything = b"".join(p.read_bytes() for p in out.iterdir())
    for secret in (b"luis.new@example.com", b"luis@example.com", b"nora@example.com", b"Sevilla", b"Nora"):
        assert secret not in everything
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["changed"] == 2 and summary["run_id"] == result.run_id
    registered = {r.kind: r for r in ws.outputs()}
    assert set(registered) == {"diff_added", "diff_removed", "diff_changes", "diff_key_issues", "diff_summary"}
    for record in registered.values():
        assert record.sha256 == file_sha256(record.path)
    assert registered["diff_changes"].rows == 3


def test_show_values_writes_values_in_clear(ws: Workspace, exports: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = exports
    diff_exports(ws, old, new, key="customer_id", out_dir=tmp_path / "d", show_values=True)
    changes = list(csv.DictReader((tmp_path / "d" / "changes.csv").read_text(encoding="utf-8").splitlines()))
    assert (changes[0]["old_value"], changes[0]["new_value"]) == ("luis@example.com", "luis.new@example.com")


def test_metrics_and_run_are_recorded(ws: Workspace, exports: tuple[Path, Path]) -> None:
    result = diff_exports(ws, *exports, key="customer_id")
    metrics = {(n, d): v for n, d, v in ws.con.execute(
        "SELECT name, dimension, value FROM crm_metrics WHERE step = 'diff' AND run_id = ?",
        [result.run_id]).fetchall()}
    assert metrics[("added", "")] == 1 and metrics[("removed", "")] == 1 and metrics[("changed", "")] == 2
    assert metrics[("changed_field", "email")] == 1 and metrics[("empty_keys", "new")] == 1
    assert metrics[("duplicate_keys", "old")] == 1
    status = ws.con.execute("SELECT command, status, exit_code FROM crm_runs WHERE run_id = ?",
                            [result.run_id]).fetchall()
    assert status == [("diff", "pass", 0)]


def test_parquet_against_csv_compares_typed_columns_as_text(ws: Workspace, tmp_path: Path) -> None:
    # the fixture is written with DuckDB's default connection: the workspace session is walled
    duckdb.execute(f"""COPY (SELECT * FROM (VALUES ('C1', 10, DATE '2024-01-02'), ('C2', 20, DATE '2024-02-03'))
                       t(customer_id, orders, since)) TO '{tmp_path / "old.parquet"}' (FORMAT parquet)""")
    new = _write(tmp_path / "new.csv", ["since", "customer_id", "orders"],
                 [["2024-01-02", "C1", "10"], ["2024-02-03", "C2", "21"]])
    result = diff_exports(ws, tmp_path / "old.parquet", new, key="CUSTOMER_ID")
    assert result.counts == {"added": 0, "removed": 0, "changed": 1, "unchanged": 1}
    assert result.changed_by_field == {"orders": 1, "since": 0}
    assert set(result.columns.retyped) == {"orders", "since"}


def test_identical_exports_have_no_changes(ws: Workspace, exports: tuple[Path, Path], tmp_path: Path) -> None:
    old, _new = exports
    result = diff_exports(ws, old, old, key="customer_id", out_dir=tmp_path / "same")
    assert result.counts == {"added": 0, "removed": 0, "changed": 0, "unchanged": 4}
    assert (tmp_path / "same" / "changes.csv").read_text().splitlines() == [
        "customer_id,field,old_value,new_value"]


def test_missing_key_column_is_an_input_error(ws: Workspace, exports: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="key column 'id' is not in the old export"):
        diff_exports(ws, *exports, key="id")
    assert ws.con.execute("SELECT status, exit_code FROM crm_runs").fetchall() == [("error", 2)]


def test_the_workspace_file_holds_no_export_rows(tmp_path: Path, exports: tuple[Path, Path]) -> None:
    with Workspace(tmp_path / "crm.duckdb") as ws:
        diff_exports(ws, *exports, key="customer_id")
        tables = {r[0] for r in ws.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert not any(t.startswith("diff_") for t in tables)


def _cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_text_json_and_csv(exports: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = exports
    ws = tmp_path / "ws.duckdb"
    code, out, _err = _cli("diff", old, new, "--key", "customer_id", "-w", ws, "--out", tmp_path / "o")
    assert code == 0
    assert "records: 1 added, 1 removed, 2 changed, 1 unchanged" in out
    assert "old: 1 keys repeated on 2 rows" in out and "new: 1 rows with an empty key" in out
    assert "columns added: tier" in out and "columns removed: email_consent" in out
    assert "luis" not in out
    code, out, _err = _cli("diff", old, new, "-k", "customer_id", "-w", ws, "--format", "json")
    assert code == 0 and json.loads(out)["counts"]["added"] == 1
    code, out, _err = _cli("diff", old, new, "-k", "customer_id", "-w", ws, "--format", "csv")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "name,dimension,value" and "changed_field,email,1" in lines


def test_cli_missing_key_exits_2_with_a_message(exports: tuple[Path, Path], tmp_path: Path) -> None:
    code, _out, err = _cli("diff", *exports, "--key", "nope", "-w", tmp_path / "ws.duckdb")
    assert code == 2
    assert "key column 'nope' is not in the old export" in err and "hint:" in err
    code, _out, err = _cli("diff", tmp_path / "missing.csv", exports[1], "--key", "customer_id", "-w", ":memory:")
    assert code == 2 and "no such file" in err


def _write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A minimal xlsx (one sheet, inline strings) built with zipfile: no spreadsheet writer needed."""
    import zipfile
    from xml.sax.saxutils import escape

    def cell(ref: str, value: str) -> str:
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'

    sheet_rows = []
    for r, values in enumerate([header, *rows], start=1):
        cells = "".join(cell(f"{chr(65 + c)}{r}", v) for c, v in enumerate(values))
        sheet_rows.append(f'<row r="{r}">{cells}</row>')
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
            '"/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
            'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            f'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            f'<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
            f'Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>{"".join(sheet_rows)}'
            f'</sheetData></worksheet>'),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_xlsx_against_csv(ws: Workspace, exports: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("fastexcel")
    _old, new = exports
    old = _write_xlsx(tmp_path / "old.xlsx", HEADER, OLD_ROWS)
    result = diff_exports(ws, old, new, key="customer_id")
    assert result.old.format == "xlsx"
    assert result.counts == {"added": 1, "removed": 1, "changed": 2, "unchanged": 1}
