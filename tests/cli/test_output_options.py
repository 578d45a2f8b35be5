"""Issue 16, analysts: the output options reach every CSV a command writes (segment diff --out,
segment export-audience, export, the pipeline's steps), and an erasure rewrites a file in the
dialect it was written in. Checked on the bytes: ';', decimal comma, BOM or cp1252."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT, cli

EX = ROOT / "examples"
KEY = {"CRMTOOL_KEY": "test-key-0123456789abcdef"}
BOM = b"\xef\xbb\xbf"


def _segment(tmp: Path, ws: Path, out: Path, *extra: str) -> None:
    result = cli("segment", "run", EX / "clientes.csv", "--segments", ROOT / "segments.yaml", "--orders",
                 EX / "pedidos.csv", "--events", EX / "eventos.csv", "--out", out, "--as-of", "2026-11-01",
                 "-w", ws, "-q", *extra, env=KEY)
    assert result.exit_code == 0, result.output


def test_segment_diff_and_export_audience_take_the_output_options(tmp_path: Path) -> None:
    ws = tmp_path / "crm.duckdb"
    _segment(tmp_path, ws, tmp_path / "a")
    _segment(tmp_path, ws, tmp_path / "b")
    plain, spanish = tmp_path / "diff.csv", tmp_path / "diff-es.csv"
    assert cli("segment", "diff", "--out", plain, "-w", ws, "-q", env=KEY).exit_code == 0
    result = cli("segment", "diff", "--out", spanish, "--csv-dialect", "excel-es", "-w", ws, "-q", env=KEY)
    assert result.exit_code == 0, result.output
    assert not plain.read_bytes().startswith(BOM) and b"," in plain.read_bytes().splitlines()[0]
    assert spanish.read_bytes() == BOM + plain.read_bytes().replace(b",", b";")
    audience = tmp_path / "aud.csv"
    result = cli("segment", "export-audience", "champions", "--platform", "google", "--from", tmp_path / "b",
                 "--segments", ROOT / "segments.yaml", "--out", audience, "--delimiter", "tab", "--bom", "-q",
                 env=KEY)
    assert result.exit_code == 0, result.output
    data = audience.read_bytes()
    assert data.startswith(BOM + b"email\tphone\n") and len(data.splitlines()) > 1


@pytest.mark.parametrize("dialect", ["excel-es", "excel-es-ansi"])
def test_export_writes_the_dialect(tmp_path: Path, dialect: str) -> None:
    out = tmp_path / "sales.csv"
    result = cli("export", EX / "clientes.csv", "--policy", EX / "policy-sales.yaml", "--out", out,
                 "--csv-dialect", dialect, "-w", tmp_path / "crm.duckdb", "-q", env=KEY)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(BOM) == (dialect == "excel-es")
    text = data.decode("utf-8-sig" if dialect == "excel-es" else "cp1252")
    if dialect == "excel-es-ansi":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # the names with accents are cp1252 bytes
    header = text.splitlines()[0].split(";")
    assert header[0] == "customer_id" and "total_spent" in header
    assert "," not in text.splitlines()[0]


@pytest.mark.parametrize("options", [["--csv-dialect", "excel-es"], ["--csv-dialect", "excel-es-ansi"],
                                     ["--delimiter", "pipe"]])
def test_erase_rewrites_a_file_in_the_dialect_it_was_written_in(tmp_path: Path, options: list[str]) -> None:
    ws, out = tmp_path / "crm.duckdb", tmp_path / "out"
    result = cli("clean", EX / "clientes.csv", "-r", ROOT / "rules", "--out", out, "-w", ws, "-q", *options,
                 env=KEY)
    assert result.exit_code in (0, 1), result.output
    cleaned = out / "clientes.clean.csv"
    before = cleaned.read_bytes()
    result = cli("erase", "--requests", EX / "erasure-requests.csv", "--out", tmp_path / "erase", "-w", ws,
                 "--format", "json", env=KEY)
    assert result.exit_code in (0, 1), result.output
    import json

    rewritten = json.loads(result.stdout)["outputs_rewritten"]
    removed = next(n for path, n in rewritten.items() if path.endswith("clientes.clean.csv"))
    after = cleaned.read_bytes()
    assert removed > 0 and after != before
    # the same bytes, line for line, less the erased people's lines: BOM, delimiter, encoding and
    # decimal commas as the clean run wrote them
    old, new = before.split(b"\n"), after.split(b"\n")
    assert len(old) - len(new) == removed
    assert new[0] == old[0]
    kept = iter(old)
    assert all(any(line == o for o in kept) for line in new)  # an ordered subsequence


def test_pipeline_steps_take_the_run_s_and_their_own_output_options(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(f"""version: 1
workspace: crm.duckdb
out: out
inputs:
  customers: {EX / 'clientes.csv'}
  orders: {EX / 'pedidos.csv'}
steps:
  - step: clean
    input: customers
    rules: {ROOT / 'rules'}
    csv_dialect: excel-es
  - step: segment
    input: clean:clean
    segments: {ROOT / 'segments.yaml'}
    orders: orders
""", encoding="utf-8")
    result = cli("run", pipeline, "--allow-absolute-paths", "--date", "2026-11-01", "--csv-dialect", "excel-es-ansi",
                 "-q", env=KEY)
    assert result.exit_code in (0, 1), result.output
    run = next((tmp_path / "out" / "runs").iterdir())
    clean = (run / "clientes.clean.csv").read_bytes()
    assert clean.startswith(BOM) and b";" in clean.splitlines()[0]  # the step's own dialect
    lists = sorted((run / "segments").glob("*.csv"))
    assert lists
    for path in lists:  # the run's dialect: ';' and cp1252, no BOM
        data = path.read_bytes()
        assert not data.startswith(BOM) and b";" in data.splitlines()[0], path.name
        data.decode("cp1252")


def _csv_rows(data: bytes, encoding: str, delimiter: str) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(data.decode(encoding), newline=""), delimiter=delimiter))


def _diff_inputs(tmp: Path) -> tuple[Path, Path]:
    """Two small exports: a changed decimal, an added and a removed record with accents and a
    formula-like name, and an empty key (so key_issues.csv is written too)."""
    old, new = tmp / "old.csv", tmp / "new.csv"
    old.write_text("customer_id,name,total_spent\nC1,Ana,10.50\nC2,Luis,20.00\nC3,Muñoz,30.25\n,Nadie,1.00\n",
                   encoding="utf-8")
    new.write_text("customer_id,name,total_spent\nC1,Ana,10.50\nC2,Luis,22.40\nC4,=1+2,7.5\nC5,Núñez,3\n",
                   encoding="utf-8")
    return old, new


DIFF_FILES = ("added.csv", "removed.csv", "changes.csv", "key_issues.csv")


def test_diff_out_takes_the_output_options_and_keeps_its_default(tmp_path: Path) -> None:
    old, new = _diff_inputs(tmp_path)
    ws = tmp_path / "crm.duckdb"
    runs = {"plain": [], "es": ["--csv-dialect", "excel-es"], "ansi": ["--csv-dialect", "excel-es-ansi"],
            "raw": ["--delimiter", "pipe", "--keep-formulas"]}
    for folder, options in runs.items():
        result = cli("diff", old, new, "-k", "customer_id", "--show-values", "--out", tmp_path / folder, "-w", ws,
                     "-q", *options, env=KEY)
        assert result.exit_code == 0, result.output
    read = {folder: {name: (tmp_path / folder / name).read_bytes() for name in DIFF_FILES} for folder in runs}
    # the default: UTF-8 without BOM, commas, decimal points, formulas neutralised
    plain = read["plain"]
    assert plain["changes.csv"] == b"customer_id,field,old_value,new_value\nC2,total_spent,20.00,22.40\n"
    assert plain["added.csv"] == "customer_id,name,total_spent\nC4,'=1+2,7.5\nC5,Núñez,3\n".encode()
    assert plain["removed.csv"] == "customer_id,name,total_spent\nC3,Muñoz,30.25\n".encode()
    assert plain["key_issues.csv"] == b"side,issue,key,row\nold,empty key,,4\n"
    # excel-es: BOM, ';', decimal commas; the same cells otherwise
    for name in DIFF_FILES:
        assert read["es"][name].startswith(BOM) and b"," not in read["es"][name].split(b"\n")[0]
    assert _csv_rows(read["es"]["changes.csv"], "utf-8-sig", ";")[1] == ["C2", "total_spent", "20,00", "22,40"]
    assert _csv_rows(read["es"]["added.csv"], "utf-8-sig", ";")[1:] == [["C4", "'=1+2", "7,5"], ["C5", "Núñez", "3"]]
    assert read["es"]["key_issues.csv"] == BOM + plain["key_issues.csv"].replace(b",", b";")
    # excel-es-ansi: the same in cp1252, no BOM
    for name in DIFF_FILES:
        assert read["ansi"][name] == read["es"][name].removeprefix(BOM).decode("utf-8").encode("cp1252")
    assert "Muñoz".encode("cp1252") in read["ansi"]["removed.csv"]
    with pytest.raises(UnicodeDecodeError):
        read["ansi"]["removed.csv"].decode("utf-8")
    # one setting at a time: '|' and the formula as it was
    assert read["raw"]["added.csv"] == "customer_id|name|total_spent\nC4|=1+2|7.5\nC5|Núñez|3\n".encode()


def test_campaign_start_writes_its_lists_in_the_dialect(tmp_path: Path) -> None:
    ws = tmp_path / "crm.duckdb"
    _segment(tmp_path, ws, tmp_path / "seg")
    runs = {"plain": [], "es": ["--csv-dialect", "excel-es"], "ansi": ["--csv-dialect", "excel-es-ansi"],
            "tab": ["--delimiter", "tab", "--bom"]}
    for folder, options in runs.items():  # a rerun keeps every assignment: the same lists each time
        result = cli("campaign", "start", "c1", "-s", "champions", "--variants", "A:0.5,B:0.5", "--out",
                     tmp_path / folder, "-w", ws, "-q", *options, env=KEY)
        assert result.exit_code == 0, result.output
    for name in ("send.csv", "holdout.csv"):
        files = {folder: (tmp_path / folder / "campaigns" / "c1" / name).read_bytes() for folder in runs}
        plain = files["plain"]
        assert plain.startswith(b"customer_id,arm\n") and len(plain.splitlines()) > 1, name
        assert files["es"] == BOM + plain.replace(b",", b";"), name
        assert files["ansi"] == plain.replace(b",", b";"), name  # ids and arms are ASCII: cp1252 is the same bytes
        files["ansi"].decode("cp1252")
        assert files["tab"] == BOM + plain.replace(b",", b"\t"), name


def test_subject_export_csv_takes_the_output_options_and_the_json_stays_utf8(tmp_path: Path) -> None:
    import json
    import re

    ws = tmp_path / "crm.duckdb"
    result = cli("clean", EX / "clientes.csv", "-r", ROOT / "rules", "--out", tmp_path / "out", "-w", ws, "-q",
                 env=KEY)
    assert result.exit_code in (0, 1), result.output
    runs = {"plain": ([], "utf-8", ","), "es": (["--csv-dialect", "excel-es"], "utf-8-sig", ";"),
            "ansi": (["--csv-dialect", "excel-es-ansi"], "cp1252", ";")}
    decimals = 0
    for folder, (options, encoding, delimiter) in runs.items():
        result = cli("subject", "export", "C0000003", "--out", tmp_path / folder, "-w", ws, "--format", "json",
                     *options, env=KEY)
        assert result.exit_code == 0, result.output
        paths = json.loads(result.stdout)
        data = Path(paths["csv_path"]).read_bytes()
        assert data.startswith(BOM) == (folder == "es")
        assert data.removeprefix(BOM).startswith(b"source" + delimiter.encode() + b"kind")
        held = json.loads(Path(paths["json_path"]).read_text(encoding="utf-8"))  # UTF-8 JSON whatever the CSV
        expected = [["source", "kind", "record", "field", "value"]]
        for kind, group in (("table", "tables"), ("file", "files"), ("register", "registers")):
            for source, rows in held[group].items():
                for i, row in enumerate(rows, 1):
                    for field, value in row.items():
                        text = "" if value is None else str(value)
                        if folder != "plain" and re.fullmatch(r"[+-]?[0-9]+\.[0-9]+", text):
                            text, decimals = text.replace(".", ","), decimals + 1
                        expected.append([source, kind, str(i), field, text])
        assert _csv_rows(data, encoding, delimiter) == expected, folder
    assert decimals >= 4  # total_spent 2210.91 and match probabilities, in both Spanish runs


@pytest.mark.parametrize(("step_options", "run_options"), [("    csv_dialect: excel-es\n", []),
                                                           ("", ["--delimiter", "semicolon", "--bom"])])
def test_the_pipeline_s_diff_step_takes_its_own_or_the_run_s_output_options(
        tmp_path: Path, step_options: str, run_options: list[str]) -> None:
    old, new = _diff_inputs(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(f"""version: 1
workspace: crm.duckdb
out: out
inputs:
  old: {old.name}
  new: {new.name}
steps:
  - step: diff
    old: old
    new: new
    key: customer_id
{step_options}""", encoding="utf-8")
    result = cli("run", tmp_path / "pipeline.yaml", "--date", "2026-11-01", "-q", *run_options, env=KEY)
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "out" / "runs").iterdir())
    changes = (run / "diff" / "changes.csv").read_bytes()
    decimal = b"20,00;22,40" if step_options else b"20.00;22.40"  # excel-es has the decimal comma
    assert changes == BOM + b"customer_id;field;old_value;new_value\nC2;total_spent;" + decimal + b"\n"
