"""subject export: one person's data from tables, files and registers; nobody else's; audited."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from crmtool.audit import CHAIN, iter_entries

from .conftest import EXAMPLES, RULES, cli


@pytest.fixture
def cleaned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "crm.duckdb"
    code, output = cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "out", "-w", db)
    assert code in (0, 1), output
    return db


def test_export_by_any_identifier_holds_that_person_only(cleaned: Path, tmp_path: Path) -> None:
    with (EXAMPLES / "clientes.csv").open(encoding="cp1252", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    person = next(r for r in rows if r["customer_id"].strip() == "C0000003")
    others = {r["customer_id"].strip() for r in rows} - {"C0000003"}
    code, out = cli("subject", "export", person["national_id"].lower(), "--out", tmp_path / "s", "-w", cleaned,
                    "--format", "json")
    assert code == 0, out
    result = json.loads(out)
    data = json.loads(Path(result["json_path"]).read_text(encoding="utf-8"))
    text = json.dumps(data)
    assert "C0000003" in text and person["email"].strip().lower() in text.lower()
    assert not [o for o in others if f'"{o}"' in text]  # no other person's record
    assert data["tables"] and data["files"]  # workspace tables and the clean/rejects outputs
    assert Path(result["csv_path"]).read_text(encoding="utf-8").startswith("source,kind,record,field,value")
    log = tmp_path / "crm.audit"  # the workspace's log
    exports = [e for e in iter_entries(log) if e["type"] == "subject_export"]
    assert len(exports) == 1 and str(exports[0]["identifier"]).startswith("k:")
    assert "C0000003" not in (log / CHAIN).read_text(encoding="utf-8")


def test_an_identifier_of_two_people_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "p.csv"
    data.write_text("customer_id,email\nC1,info@shop.es\nC2,info@shop.es\n", encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\ndataset: {key: customer_id}\nrules:\n"
                     "  - {name: t, kind: trim, columns: [email]}\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    assert cli("clean", data, "-r", rules, "--out", tmp_path / "out", "-w", db)[0] == 0
    code, out = cli("subject", "export", "INFO@shop.es", "--out", tmp_path / "s", "-w", db)
    assert code == 1 and "2 different people" in out
    assert not list((tmp_path / "s").glob("subject-*")) if (tmp_path / "s").exists() else True


def test_an_id_with_a_tab_or_line_break_at_an_end_is_refused_not_missed(cleaned: Path, tmp_path: Path) -> None:
    """Ids are compared trimmed of spaces only (SQL's trim): a pasted ``C0000003\\t`` would match
    nobody, so subject export and the suppression look-ups refuse it (exit 2) instead of reporting the
    person absent; with spaces, Unicode ones included, it is the same person."""
    for given in ("C0000003\t", "\nC0000003", "C0000003\r\n"):
        code, out = cli("subject", "export", given, "--out", tmp_path / "s", "-w", cleaned)
        assert code == 2 and "tab or line break" in out, out
        code, out = cli("suppress", "list", "--identifier", given, "-w", cleaned)
        assert code == 2 and "tab or line break" in out, out
    assert not (tmp_path / "s").exists()
    code, out = cli("subject", "export", "\u00a0C0000003 \u3000", "--out", tmp_path / "s", "-w", cleaned,
                    "--format", "json")
    assert code == 0, out
    data = json.loads(Path(json.loads(out)["json_path"]).read_text(encoding="utf-8"))
    assert "C0000003" in json.dumps(data) and data["tables"]
