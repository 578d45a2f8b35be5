"""The documented Python API: everything here is imported from ``crmtool`` and nothing else."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import crmtool

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_resolves_and_nothing_else_is_offered() -> None:
    for name in crmtool.__all__:
        assert getattr(crmtool, name) is not None, name
    assert sorted(dir(crmtool)) == sorted(crmtool.__all__)
    assert set(crmtool.__all__) == {"__version__", *crmtool._EXPORTS}
    with pytest.raises(AttributeError):
        crmtool.not_a_name  # noqa: B018


def test_import_crmtool_imports_no_data_library() -> None:
    program = ("import sys, crmtool; heavy = [m for m in ('duckdb', 'polars', 'pyarrow', 'typer', 'rich') "
               "if m in sys.modules]; print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.strip() == ""


def test_clean_validate_and_segment_from_python(tmp_path: Path) -> None:
    rules = [ROOT / "rules" / "10-normalise.yaml", ROOT / "rules" / "20-checks.yaml"]
    with crmtool.open_workspace(tmp_path / "crm.duckdb") as ws:
        report = crmtool.validate(ws, ROOT / "examples" / "clientes.csv", rules)
        assert isinstance(report, crmtool.CheckReport)
        assert report.status in (crmtool.Status.PASS, crmtool.Status.WARN)

        result = crmtool.clean(ws, ROOT / "examples" / "clientes.csv", rules, tmp_path / "out",
                               output=crmtool.OutputOptions())
        assert isinstance(result, crmtool.CleanResult)
        with result.outputs["clean"].open(encoding="utf-8", newline="") as fh:
            kept = list(csv.DictReader(fh))
        assert len(kept) == result.rows_out > 0
        assert result.rows_out + result.rejected == result.engine.rows  # every parsed row kept or rejected
        assert len(result.input.parse_rejects) == 2  # the two broken lines of the example

        seg = crmtool.segment(ws, result.outputs["clean"], ROOT / "segments.yaml", out_dir=tmp_path / "seg",
                              orders=ROOT / "examples" / "pedidos.csv", events=ROOT / "examples" / "eventos.csv")
        assert seg.customers == result.rows_out
        declared = crmtool.load_segments(ROOT / "segments.yaml").segments
        assert {s.name for s in seg.segments} == {s.name for s in declared}
        # one result model: every result has a status (the CLI's exit code) and as_dict (its JSON)
        for answer in (report, result, seg):
            assert isinstance(answer, crmtool.CommandResult)
            assert isinstance(answer.status, crmtool.Status) and answer.as_dict()


def test_errors_are_crmtool_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, kind: no_such_kind, column: a}\n", encoding="utf-8")
    with pytest.raises(crmtool.CrmToolError) as err:
        crmtool.load_checked_rules([bad])
    assert "bad.yaml:2" in str(err.value)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    for name in ("rules", "examples", "segments.yaml"):
        (tmp_path / name).symlink_to(ROOT / name)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    rows_out, rejected, clean_path = proc.stdout.split()
    assert (int(rows_out), int(rejected)) == (297, 4)
    assert (tmp_path / clean_path).read_bytes().splitlines()[0].count(b";") > 5  # the Spanish dialect asked for
    assert any((tmp_path / "seg").iterdir())
