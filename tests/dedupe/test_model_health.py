"""The degenerate-model warning (crmtool.dedupe.health): it fires on an export without duplicates, where
EM's "match" class is people who share a name and a different NIF, phone or email weighs nothing, and
stays silent on a healthy export with real duplicates."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmtool.api import apply_fixes
from crmtool.dedupe.api import dedupe
from crmtool.dedupe.health import MIN_DISAGREEMENT_BITS, ModelCheck, check_model
from crmtool.dedupe.model import CompModel, Model
from crmtool.dedupe.spec import spec_from_text
from crmtool.dedupe.suggest import suggest_dedupe_section, suggest_yaml
from crmtool.rule_paths import dedupe_file
from crmtool.workspace import Workspace
from dedupe_people import generate, load_people, strangers, write_csv

ROOT = Path(__file__).resolve().parents[2]


def test_an_export_without_duplicates_gets_the_warning(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "export.csv", strangers(4000))
    with Workspace(":memory:") as ws:
        result = dedupe_file(ws, data, [ROOT / "rules"], None, apply_fixes=apply_fixes)
    check = result.model_check
    assert result.model.iterations > 0
    assert check.degenerate, check
    assert set(check.disagreement_bits) == {"email", "phone", "national_id"}
    assert all(b > MIN_DISAGREEMENT_BITS for b in check.disagreement_bits.values())
    lines = [w for w in result.warnings if w.startswith("model: degenerate")]
    assert len(lines) == 1 and "\n" not in lines[0]
    body = result.as_dict()["model"]["check"]
    assert body["degenerate"] is True and body["identifier_disagreement_bits"] == check.disagreement_bits


def test_a_healthy_export_gets_no_warning() -> None:
    rows, dups, _ = generate(1000)
    with Workspace(":memory:") as ws:
        table = load_people(ws, rows)
        spec = spec_from_text(suggest_yaml(suggest_dedupe_section(ws.con, table)))
        result = dedupe(ws, table, spec, None)
    assert result.merges >= len(dups) * 0.9  # it found the planted duplicates
    assert result.model.iterations > 0
    assert not result.model_check.degenerate, result.model_check
    assert min(result.model_check.disagreement_bits.values()) < -4  # a different NIF or phone weighs
    assert not [w for w in result.warnings if w.startswith("model:")]
    assert result.as_dict()["model"]["check"]["degenerate"] is False


def _model(estimate: str, iterations: int, else_bits: dict[str, float]) -> Model:
    comps = [CompModel(n, ("exact", "else"), [0.9, 0.1], [0.1, 0.9], [3.0, b]) for n, b in else_bits.items()]
    return Model(0.01, comps, estimate, iterations)


SPEC = """
dedupe:
  id: id
  blocking: [{name: b, on: ["first:text"]}]
  comparisons:
    - {column: first, method: exact}
    - {column: email, method: exact}
    - {column: telefono, method: exact}
"""


def test_one_weak_identifier_is_not_enough() -> None:
    spec = spec_from_text(SPEC)
    # people change phones: a weak phone with a strong email is a healthy model
    assert not check_model(_model("em", 10, {"first": 0.0, "email": -5.0, "telefono": -0.2}), spec).degenerate
    got = check_model(_model("em", 10, {"first": -6.0, "email": -0.3, "telefono": -0.2}), spec)
    assert got.degenerate and got.disagreement_bits == {"email": -0.3, "telefono": -0.2}  # names are not identifiers
    # fixed weights are the user's, and a model EM did not train keeps its starting values
    assert not check_model(_model("fixed", 0, {"first": 0.0, "email": -0.3, "telefono": -0.2}), spec).degenerate
    assert not check_model(_model("em", 0, {"first": 0.0, "email": -0.3, "telefono": -0.2}), spec).degenerate
    assert ModelCheck(False, {}).warning() == ""


def test_the_cli_shows_it_in_dedupe_json_the_manifest_metric_and_explain(tmp_path: Path) -> None:
    from crmtool.cli import app

    rows = strangers(4000)
    data = write_csv(tmp_path / "export.csv", rows)
    wsp = str(tmp_path / "ws.duckdb")
    rules = str(ROOT / "rules")
    runner = CliRunner()
    res = runner.invoke(app, ["dedupe", str(data), "--rules", rules, "--workspace", wsp, "--format", "json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["model"]["check"]["degenerate"] is True
    assert res.stderr.count("warning: model: degenerate weights") == 1
    with Workspace(wsp) as ws:
        got = ws.con.execute("""SELECT m.value FROM crm_metrics m JOIN crm_runs r USING (run_id)
            WHERE r.command = 'dedupe' AND m.name = 'model_degenerate'""").fetchall()
    assert got == [(1.0,)]
    res = runner.invoke(app, ["explain", rows[0][0], rows[1][0], "--rules", rules, "--workspace", wsp])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("warning: model: degenerate weights") == 1
    assert "model: degenerate" not in res.stdout
