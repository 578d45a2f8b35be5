"""Every command records its step: metrics in crm_metrics, outputs in crm_outputs, the step in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.status import Status
from crmtool.steps import Step, as_status
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _metrics(db: Path, step: str) -> dict[tuple[str, str], float | None]:
    with Workspace(db) as ws:
        rows = ws.con.execute("SELECT name, dimension, value FROM crm_metrics WHERE step = ?", [step]).fetchall()
    return {(n, d): v for n, d, v in rows}


def test_clean_records_metrics_outputs_and_manifest(tmp_path: Path) -> None:
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    result = CliRunner().invoke(app, ["clean", str(EXAMPLES / "clientes.csv"), "-r", str(ROOT / "rules"),
                                      "--out", str(out), "-w", str(db), "-q"])
    assert result.exit_code == 0, result.output
    m = _metrics(db, "clean")
    assert m[("rows_in", "")] == 303 and m[("rows_out", "")] == 297 and m[("rejected", "")] == 6
    assert m[("reject_rate", "")] == round(6 / 303, 6)
    assert m[("mailable_share", "")] == round(m[("mailable", "")] / 297, 6)  # type: ignore[operator]
    assert m[("rule_failed", "id_unique")] == 4
    assert 0 < m[("rule_validity", "id_unique")] < 1  # type: ignore[operator]
    assert ("not_mailable", "consent_denied") in m
    with Workspace(db) as ws:
        kinds = {k for (k,) in ws.con.execute("SELECT kind FROM crm_outputs").fetchall()}
        status = ws.con.execute("SELECT status FROM crm_runs WHERE command = 'clean'").fetchall()
        dedupe = ws.con.execute("SELECT count(*) FROM crm_metrics WHERE step = 'dedupe' "
                                "AND name = 'duplicate_rate'").fetchall()[0][0]
    assert {"clean", "rejects", "golden"} <= kinds
    assert status == [("warn",)]  # warning rules failed, no error rule did (Status: warn, exit 0)
    assert dedupe == 1
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["step"]["inputs"][0]["path"] == str((EXAMPLES / "clientes.csv").resolve())
    assert any(x["name"] == "rows_out" and x["value"] == 297 for x in manifest["step"]["metrics"])


def test_emails_and_segment_metrics(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    r = CliRunner().invoke(app, ["emails", str(EXAMPLES / "clientes.csv"), "--out", str(tmp_path / "e"),
                                 "-w", str(db), "-q"])
    assert r.exit_code == 0, r.output
    m = _metrics(db, "emails")
    shares = [v for (n, _d), v in m.items() if n == "email_status_share"]
    assert len(shares) == 4 and abs(sum(shares) - 1) < 1e-3  # type: ignore[arg-type]
    assert ("bounce_rate", "") in m
    r = CliRunner().invoke(app, ["segment", str(EXAMPLES / "clientes.csv"), "--segments", str(ROOT / "segments.yaml"),
                                 "--out", str(tmp_path / "s"), "-w", str(db), "-q"])
    assert r.exit_code == 0, r.output
    m = _metrics(db, "segment")
    assert m[("customers", "")] > 0  # type: ignore[operator]
    assert any(n == "segment_size" for n, _d in m) and any(n == "holdout_size" for n, _d in m)


def test_status_words_and_fallback_metrics(tmp_path: Path) -> None:
    assert as_status("ok") is Status.PASS and as_status(Status.FAIL) is Status.FAIL
    with Workspace(":memory:") as ws:
        run = ws.start_run("suppress import")
        ws.finish_run(run, "ok", 0, {"rows": 5, "added": {"email": 3, "phone": 1}, "note": "x", "flag": True})
        rows = ws.con.execute("SELECT name, dimension, value FROM crm_metrics ORDER BY ALL").fetchall()
        status = ws.con.execute("SELECT status FROM crm_runs").fetchall()
    assert rows == [("added", "email", 3.0), ("added", "phone", 1.0), ("rows", "", 5.0)]
    assert status == [("pass",)]
    step = Step("x")
    step.share("s", 1, 0)
    assert step.metrics[0].value is None


def test_metrics_are_stored_as_given_in_statements_of_many_rows(tmp_path: Path) -> None:
    # one INSERT per 1,000 metrics (executemany ran one per row): every value, NULL, dimension
    # and the recording time arrive as they did row by row, across a chunk boundary
    with Workspace(":memory:") as ws:
        run = ws.start_run("validate")
        for i in range(2345):
            run.step.metric(f"m{i % 7}", None if i % 11 == 0 else i / 3, str(i))
        run.step.share("ratio", 1, 3)
        ws.finish_run(run, "ok", 0, {})
        rows = ws.con.execute("SELECT name, dimension, value FROM crm_metrics ORDER BY ALL").fetchall()
        times = ws.con.execute("SELECT DISTINCT recorded_at = r.finished_at, typeof(value) FROM crm_metrics, "
                               "crm_runs r").fetchall()
    expected = sorted([(f"m{i % 7}", str(i), None if i % 11 == 0 else i / 3) for i in range(2345)]
                      + [("ratio", "", 0.333333)], key=lambda r: (r[0], r[1], r[2] is None, r[2] or 0))
    assert sorted(rows, key=lambda r: (r[0], r[1], r[2] is None, r[2] or 0)) == expected
    assert times == [(True, "DOUBLE")]
