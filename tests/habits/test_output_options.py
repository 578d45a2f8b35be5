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
