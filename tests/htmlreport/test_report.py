"""crmtool report: what it reads (real workspace history), what it writes, and what it never writes."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.errors import UsageError
from crmtool.htmlreport import build_report, parse_since
from crmtool.htmlreport.data import collect
from crmtool.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_parse_since() -> None:
    now = datetime(2026, 12, 1, 12, 0)
    assert parse_since("90d", now) == datetime(2026, 9, 2, 12, 0)
    assert parse_since("2w", now) == datetime(2026, 11, 17, 12, 0)
    assert parse_since("2026-01-31", now) == datetime(2026, 1, 31)
    assert parse_since("all", now) is None
    with pytest.raises(UsageError, match="not a period or a date"):
        parse_since("yesterday", now)


def test_collect_reads_every_section(history: Path) -> None:
    with Workspace(history) as ws:
        data = collect(ws, None, datetime.now())
    kpis = {k.name: k for k in data.kpis}
    checks = kpis["checks_passed"]
    assert len(checks.points) == 41  # 40 synthetic nights and the real clean run
    night_one = [p for p in checks.points if p[1] == pytest.approx(0.9)]
    assert night_one and night_one[0][4], "the 80%-failure night is flagged as an anomaly"
    assert sum(1 for p in checks.points if p[4]) >= 1
    assert {"rows_kept", "mailable", "valid_emails", "duplicate_records"} <= set(kpis)
    assert {s for _t, s, _n in data.email_mix} >= {"valid", "invalid"}
    assert data.cluster_sizes == [(2, 1), (3, 1)]
    assert {r[2] for r in data.segment_sizes} and data.segment_flow_runs == ("2026-10-15", "2026-11-01")
    assert data.segment_flows and all(e >= 0 and x >= 0 for _s, e, x in data.segment_flows)
    assert data.failing_rules[0][0] in {r[0] for r in data.failing_rules}
    assert [(r[1], r[2], r[3]) for r in data.diffs] == [(1, 1, 2)]
    assert {(r[0], r[1]) for r in data.campaigns} == {("spring", "A"), ("spring", "holdout")}


def test_status_follows_target_then_anomaly(history: Path) -> None:
    with Workspace(history) as ws:
        kpis = {k.name: k for k in collect(ws, None, datetime.now()).kpis}
    assert str(kpis["valid_emails"].status) in ("pass", "fail")
    latest = kpis["checks_passed"].latest
    assert latest is not None and latest > 0.9  # the real clean run passes most checks


def test_report_file_is_self_contained_and_registered(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with Workspace(history) as ws:
        result = build_report(ws, out, since="all")
        registered = [r for r in ws.outputs(kinds=("report",)) if r.run_id == result.run_id]
    html = out.read_text(encoding="utf-8")
    assert result.charts >= 9 and set(result.sections) == {"kpis", "rules", "emails", "dedupe", "segments", "diffs",
                                                             "campaigns"}
    assert registered and registered[0].path == out.resolve()
    assert html.count("Plotly.newPlot(") == result.charts
    # nothing is fetched at view time: no external script, stylesheet or font
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?:", html)


def _personal_values() -> dict[str, set[str]]:
    with (EXAMPLES / "clientes.csv").open(encoding="cp1252", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    values: dict[str, set[str]] = {"email": set(), "phone": set(), "national_id": set(), "name": set()}
    for row in rows:
        for col in ("email", "phone", "national_id"):
            v = (row.get(col) or "").strip()
            if len(v) >= 6:
                values[col].add(v)
        for col in ("first_name", "last_name"):
            v = (row.get(col) or "").strip()
            if len(v) >= 4:
                values["name"].add(v)
    return values


def test_report_holds_no_personal_data(history: Path, tmp_path: Path) -> None:
    from plotly.offline import get_plotlyjs

    out = tmp_path / "report.html"
    with Workspace(history) as ws:
        build_report(ws, out, since="all")
    data = out.read_bytes()
    ours = data.replace(get_plotlyjs().encode("utf-8"), b"")  # the library itself is not our text
    values = _personal_values()
    assert sum(len(v) for v in values.values()) > 500
    for col in ("email", "phone", "national_id"):
        leaked = [v for v in values[col] if v.encode("utf-8") in data or v.lower().encode("utf-8") in data]
        assert not leaked, f"{col} values in the report: {len(leaked)}"
    names = [v for v in values["name"] if re.search(rb"\b" + re.escape(v.encode("utf-8")) + rb"\b", ours)]
    assert not names, f"names in the report: {names[:5]}"
    assert b"nueva.clienta@example.org" not in data and b"C0000001" not in data


def test_empty_workspace_says_there_is_no_history(tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    with Workspace(tmp_path / "new.duckdb") as ws:
        result = build_report(ws, out)
    html = out.read_text(encoding="utf-8")
    assert result.empty and result.charts == 0
    assert "No history yet" in html and "Plotly" not in html


def test_cli_writes_the_report(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--since", "all", "-w", str(history),
                                      "--format", "json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["path"] == str(out.resolve()) and payload["charts"] >= 9 and out.exists()
    bad = CliRunner().invoke(app, ["report", "--since", "soon", "-w", str(history)])
    assert bad.exit_code == 2 and "--since 'soon'" in bad.stderr


def test_kpi_file_gives_the_kpis_their_targets_and_statuses(history: Path, tmp_path: Path) -> None:
    from crmtool.kpis import evaluate_kpis, load_kpis

    kpis_file = EXAMPLES / "kpis.yaml"
    out = tmp_path / "kpis.html"
    with Workspace(history) as ws:
        data = collect(ws, None, datetime.now(), kpis_file)
        expected = {k.name: k for k in evaluate_kpis(ws, load_kpis(kpis_file), since_days=3650).kpis}
        build_report(ws, out, since="all", kpis=kpis_file)
    assert data.kpis, "the real clean, emails and segment runs feed the example KPIs"
    for series in data.kpis:
        assert series.name in expected
        assert series.status is expected[series.name].status
        assert series.target_min == expected[series.name].spec.target_min
    html = out.read_text(encoding="utf-8")
    assert all(s.label in html for s in data.kpis)
