"""The household model: shared home evidence is one fact, never lifts a veto, and needs a person-level
agreement when it is high; and dedupe applies the rule files' normalisers first. Engine level with fixed
weights (exact arithmetic), then the CLI's explain output against golden files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from crmtool.api import apply_fixes
from crmtool.dedupe.api import dedupe, explain
from crmtool.dedupe.spec import spec_from_text
from crmtool.errors import ConfigError, UsageError
from crmtool.rule_paths import dedupe_file
from crmtool.workspace import Workspace
from goldens import check_golden

SPEC = """
dedupe:
  id: id
  blocking:
    - {name: phone, on: ["phone:phone"]}
    - {name: postcode, on: ["postcode:text"]}
  comparisons:
    - {column: first, method: name, swap_with: last, weights: [6, 6, 5, 4, 2, -4]}
    - {column: last, method: surname, swap_with: first, weights: [5, 5, 3, 3, 1, -3]}
    - {column: dob, method: date, weights: [7, 5, 4, -5]}
    - {column: email, method: email, weights: [9, 4, 2, -1]}
    - {column: phone, method: phone, weights: [8, 6, 4, -1]}
    - {column: nid, method: levenshtein, thresholds: [1], weights: [10, 8, -4]}
    - {column: address, method: jaro_winkler, thresholds: [0.9], weights: [8, 5, -1]}
    - {column: postcode, method: exact, weights: [6, -1]}
  threshold: 0.9
  review: 0.3
  model: {estimate: fixed, prior: 0.001}
"""
COLS = ["id", "first", "last", "dob", "email", "phone", "nid", "address", "postcode"]
HOME = ["Calle Mayor 1, 2º", "28001"]
ROWS = [
    ["1", "Juan", "García López", "1970-01-01", "familia.garcia@x.com", "911111111", "11111111H", *HOME],
    # his wife: her own names, birth date and NIF; the couple's one email address and the landline
    ["2", "María", "Pérez Ruiz", "1972-05-05", "familia.garcia@x.com", "911111111", "22222222J", *HOME],
    # the same Juan again: upper case, no accents, his mobile, the NIF with a dash
    ["3", "JUAN", "GARCIA LOPEZ", "1970-01-01", "juan.g@y.com", "600000001", "11111111-H", *HOME],
    # their son
    ["4", "Pedro", "García Pérez", "1995-03-03", "familia.garcia@x.com", "911111111", "33333333P", *HOME],
]


def load(ws: Workspace, rows: list[list[str]], name: str = "people") -> str:
    ws.con.register("__t", pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(COLS)}))
    ws.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __t")
    ws.con.unregister("__t")
    return name


def clusters(ws: Workspace) -> dict[str, str]:
    return dict(ws.con.execute("SELECT record_id, cluster_id FROM dedupe_records").fetchall())


def test_household_pairs_stay_apart_true_duplicates_merge(ws: Workspace) -> None:
    spec = spec_from_text(SPEC)
    assert spec.household.comparisons == ("email", "phone", "address", "postcode")  # by default
    assert spec.household.person == ("first", "dob", "nid")
    dedupe(ws, load(ws, ROWS), spec, None)
    c = clusters(ws)
    assert c["1"] == c["3"]  # the true duplicate
    assert len({c["1"], c["2"], c["4"]}) == 3  # wife and son stay apart
    wife = explain(ws, spec, "1", "2")
    # independent, the home columns would add 9 + 8 + 8 + 6 = 31 bits; as one fact, 9
    assert wife.household_weight == 31 and wife.household_cap == 9
    assert wife.match_weight == pytest.approx(math.log2(0.001 / 0.999) - 4 - 3 - 5 - 4 + 9, abs=1e-3)
    assert "household: home evidence at its cap, no person-level agreement" in wife.vetoes


def test_without_the_household_group_the_wife_would_merge(ws: Workspace) -> None:
    """The same data with the group switched off: the correlated evidence adds up (the old failure)."""
    spec = spec_from_text(SPEC.replace("  threshold:", "  household: {comparisons: []}\n  threshold:"))
    dedupe(ws, load(ws, ROWS[:2]), spec, None)
    c = clusters(ws)
    assert c["1"] == c["2"]  # -10 - 4 - 3 - 5 - 4 + 9 + 8 + 8 + 6 = +5 bits: p 0.97


def test_shared_email_cannot_lift_a_veto() -> None:
    text = SPEC.replace("  threshold:", "  veto: [first, dob]\n  veto_unless: [email]\n  threshold:")
    with pytest.raises(ConfigError) as err:
        spec_from_text(text, "r.yaml")
    assert "veto_unless 'email' is household evidence" in str(err.value)
    assert "r.yaml:" in str(err.value)
    # a user who says email is not home evidence in this data may lift the veto with it
    spec = spec_from_text(text.replace("  threshold:", "  household: {comparisons: [phone, address, postcode]}\n"
                                                       "  threshold:"))
    assert spec.veto_unless == ("email",)


def test_veto_lifted_by_two_person_agreements_not_by_one(ws: Workspace) -> None:
    spec = spec_from_text(SPEC.replace("  threshold:", "  veto: [first]\n  threshold:"))
    rows = [
        ["1", "Juan", "García López", "1970-01-01", "", "600000001", "11111111H", *HOME],
        ["2", "Xuqa", "García López", "1970-01-01", "", "600000001", "11111111H", *HOME],  # garbled first name
        ["3", "Ana", "García López", "1970-01-01", "", "", "44444444A", *HOME],  # his twin sister
    ]
    dedupe(ws, load(ws, rows), spec, None)
    assert explain(ws, spec, "1", "2").vetoes == []  # birth date and NIF agree: one person
    twin = explain(ws, spec, "1", "3")
    assert twin.vetoes == ["veto first worse than jw>=0.8|phonetic"]
    c = clusters(ws)
    assert c["1"] == c["2"] != c["3"]


NORMALISE = """
version: 1
rules:
  - {name: repair_mojibake, kind: mojibake, columns: [first]}
  - {name: nif, kind: national_id, column: nid, type: nif, action: fix}
  - {name: amount, kind: decimal, column: total_spent, decimal_comma: true}
  - {name: trim_all, kind: trim, columns: [first, total_spent]}
"""


def _rules_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "10-normalise.yaml").write_text(NORMALISE, encoding="utf-8")
    (folder / "30-dedupe.yaml").write_text("version: 1\n" + SPEC, encoding="utf-8")
    return folder


def _export(tmp_path: Path) -> Path:
    import csv

    path = tmp_path / "people.csv"
    rows = [
        ["1", "Núria", "Vidal Soler", "1980-02-02", "", "600000002", "16783115S", "Calle Sol 3", "08001"],
        ["2", "NÃºria", "Vidal Soler", "1980-02-02", "", "", "16783115-S", "Calle Sol 3", "08001"],
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLS, *rows])
    return path


def test_folder_normalisers_run_before_matching(tmp_path: Path) -> None:
    folder, data = _rules_folder(tmp_path), _export(tmp_path)
    warnings: list[str] = []
    with Workspace(":memory:") as ws:
        result = dedupe_file(ws, data, [folder], None, warn=warnings.append, apply_fixes=apply_fixes)
        assert result.normalised == ["repair_mojibake", "nif"]
        # a fix of a compared column that also names a column the file lacks is skipped, and said so;
        # fixes of columns dedupe does not read (amount) are left to clean
        assert [w for w in warnings if "normalisers skipped" in w] == [
            "normalisers skipped (they name columns this file lacks): trim_all"]
        levels = {c.name: c.level for c in explain(ws, spec_from_text(SPEC), "1", "2").comparisons}
    assert levels["first"] == "exact" and levels["nid"] == "exact"
    with Workspace(":memory:") as ws:
        raw = dedupe_file(ws, data, [folder], None, normalise=False)
        assert raw.normalised == []
        levels = {c.name: c.level for c in explain(ws, spec_from_text(SPEC), "1", "2").comparisons}
    assert levels["first"] != "exact" and levels["nid"] == "lev<=1"


def test_fixes_without_a_function_to_apply_them_are_refused(tmp_path: Path) -> None:
    folder, data = _rules_folder(tmp_path), _export(tmp_path)
    with Workspace(":memory:") as ws, pytest.raises(UsageError, match="no function to apply them") as err:
        dedupe_file(ws, data, [folder], None)
    assert "crmtool.api.apply_fixes" in (err.value.hint or "")


def test_the_dedupe_package_does_not_import_the_floors_above_it() -> None:
    import ast

    import crmtool.dedupe

    above = ("crmtool.engine", "crmtool.api", "crmtool.cli", "crmtool.pipeline")
    found = []
    for path in sorted(Path(crmtool.dedupe.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert found == []


def _app():  # type: ignore[no-untyped-def]
    from crmtool.cli import app

    return app



def test_explain_output_spouses_and_duplicate(tmp_path: Path) -> None:
    import csv

    data = tmp_path / "people.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLS, *ROWS])
    rules = tmp_path / "30-dedupe.yaml"
    rules.write_text("version: 1\n" + SPEC.replace("  threshold:", "  veto: [first, dob]\n  threshold:"))
    wsp = str(tmp_path / "ws.duckdb")
    runner = CliRunner()
    env = {"COLUMNS": "120", "NO_COLOR": "1"}
    res = runner.invoke(_app(), ["dedupe", str(data), "--rules", str(rules), "--out", str(tmp_path / "o"),
                                 "--workspace", wsp], env=env)
    assert res.exit_code == 0, res.output
    for name, pair in (("explain_spouses.txt", ["1", "2"]), ("explain_duplicate.txt", ["1", "3"])):
        res = runner.invoke(_app(), ["explain", *pair, "--rules", str(rules), "--workspace", wsp], env=env)
        assert res.exit_code == 0, res.output
        check_golden(f"dedupe/{name}", res.stdout)


def test_explain_one_record_names_the_cuts_and_vetoes_that_touch_it(tmp_path: Path) -> None:
    import csv

    # record 5 bridges Juan and María: María's first name and birth date, Juan's surname and NIF (a typing
    # slip). It matches both (the NIF lifts the vetoes against Juan), so the cluster {1, 3, 5, 2} would hold
    # the vetoed spouse pair: the chaining guard cuts 5 from 2. Against Juan's other record (3: NIF with a
    # dash, so no exact veto_unless) the first name and birth date vetoes hold.
    bridge = ["5", "María", "García López", "1972-05-05", "", "911111111", "11111111H", *HOME]
    data = tmp_path / "people.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLS, *ROWS, bridge])
    rules = tmp_path / "30-dedupe.yaml"
    rules.write_text("version: 1\n" + SPEC.replace("  threshold:", "  veto: [first, dob]\n  veto_unless: [nid]\n"
                                                    "  threshold:"))
    wsp = str(tmp_path / "ws.duckdb")
    runner = CliRunner()
    env = {"COLUMNS": "120", "NO_COLOR": "1"}
    res = runner.invoke(_app(), ["dedupe", str(data), "--rules", str(rules), "--workspace", wsp], env=env)
    assert res.exit_code == 0, res.output
    res = runner.invoke(_app(), ["explain", "5", "--rules", str(rules), "--workspace", wsp], env=env)
    assert res.exit_code == 0, res.output
    check_golden("dedupe/explain_one_record.txt", res.stdout)
    res = runner.invoke(_app(), ["explain", "2", "--rules", str(rules), "--workspace", wsp, "--format", "json"],
                        env=env)
    got = json.loads(res.stdout)
    # the cut names what split the cluster: the spouse pair, below split_below, and the vetoes on it
    assert [c[:2] for c in got["cuts"]] == [["5", "chaining"]] and got["vetoed_pairs"] == []
    assert got["cuts"][0][2].startswith("records 1 and 2 score below split_below; vetoed by: ")
    assert "household: home evidence at its cap, no person-level agreement" in got["cuts"][0][2]
