"""KPIs: parsing with lines, series from generated run history, targets, anomalies, CLI formats."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.errors import ConfigError
from crmtool.kpis import evaluate_kpis, load_kpis, sparkline
from crmtool.status import Status
from crmtool.workspace import Workspace

KPIS = """\
version: 1
kpis:
  - name: reject_rate
    metric: clean.reject_rate
    target: {max: 0.05}
    anomaly: {train: 20, detect: 1, k: 3}
  - name: invalid_share
    ratio:
      numerator: {metric: emails.email_status_rows, dimension: invalid}
      denominator: {metric: emails.rows_in}
    target: {max: 0.10}
    anomaly: false
  - name: vip
    metric: segment.segment_size
    dimension: vip
    aggregate: mean
"""


def _history(ws: Workspace, days: int, last_reject: float = 0.02, now: datetime | None = None,
             prefix: str = "p") -> None:
    """One pipeline run a night (clean, emails, segment steps as child runs), built in SQL."""
    now = now or datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    start = now - timedelta(days=days - 1)
    ws.con.execute(f"""
        CREATE TEMP TABLE nights AS SELECT i, ?::TIMESTAMP + i * INTERVAL 1 DAY AS t,
            ? || i AS pid FROM range({days}) r(i)""", [start, prefix])
    ws.con.execute("""
        INSERT INTO crm_runs (run_id, command, started_at, finished_at, tool_version, status, exit_code, parent_run_id)
        SELECT pid, 'run', t, t, 'x', 'pass', 0, NULL FROM nights
        UNION ALL SELECT pid || s, s, t + INTERVAL 1 MINUTE, t, 'x', 'pass', 0, pid
        FROM nights, (VALUES ('clean'), ('emails'), ('segment')) v(s)""")
    ws.con.execute("""
        INSERT INTO crm_metrics
        SELECT pid || 'clean', 'clean', 'reject_rate', '', 0.02 + (i % 3) * 0.001, t FROM nights
        UNION ALL SELECT pid || 'emails', 'emails', 'email_status_rows', 'invalid', 10 + i % 2, t FROM nights
        UNION ALL SELECT pid || 'emails', 'emails', 'rows_in', '', 200, t FROM nights
        UNION ALL SELECT pid || 'segment', 'segment', 'segment_size', 'vip', 100 + i, t FROM nights""")
    ws.con.execute("UPDATE crm_metrics SET value = ? WHERE run_id = ? AND name = 'reject_rate'",
                   [last_reject, f"{prefix}{days - 1}clean"])
    ws.con.execute("DROP TABLE nights")


def _kpis(tmp_path: Path, text: str = KPIS) -> Path:
    path = tmp_path / "kpis.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_parse_errors_have_lines_and_sql_needs_the_vetting_module(tmp_path: Path) -> None:
    path = _kpis(tmp_path, """\
        version: 1
        kpis:
          - name: a
            metric: clean.rows_in
            ratio: {numerator: {metric: a.b}, denominator: {metric: c.d}}
          - name: b
            metric: clean
            target: {min: 1, max: 0}
        """)
    with pytest.raises(ConfigError) as err:
        load_kpis(path)
    lines = sorted(loc.line for loc, _m in err.value.problems)
    assert lines[0] == 3 and 7 in lines
    try:
        import crmtool.usersql  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        sql = _kpis(tmp_path, "version: 1\nkpis:\n  - name: s\n    sql: sum(value)\n")
        with pytest.raises(ConfigError, match=r"kpis.yaml:4: SQL KPIs need crmtool.usersql"):
            load_kpis(sql)


# a fixed clock: with the real one, a run a few minutes after midnight saw yesterday's last night
# and 29 days in a 30-day window
NOON = datetime(2026, 6, 15, 12, 0)
LAST_NIGHT = NOON - timedelta(minutes=5)  # the last pipeline run, five minutes before the KPIs


def test_series_targets_and_anomaly(tmp_path: Path) -> None:
    with Workspace(":memory:") as ws:
        _history(ws, 60, last_reject=0.2, now=LAST_NIGHT)
        report = evaluate_kpis(ws, load_kpis(_kpis(tmp_path)), since_days=30, now=NOON)
    reject, invalid, vip = report.kpis
    assert len(reject.series) == 30
    assert reject.latest == 0.2
    assert reject.on_target is False and reject.status is Status.FAIL
    lo, hi = reject.expected  # type: ignore[misc]
    assert lo < 0.0205 < hi < 0.03
    assert reject.anomalies == [reject.series[-1][0]]
    assert invalid.latest == pytest.approx(11 / 200) or invalid.latest == pytest.approx(10 / 200)
    assert invalid.status is Status.PASS and invalid.expected is None
    assert vip.latest == 159 and vip.status is Status.PASS
    assert report.status is Status.FAIL


def test_anomaly_without_target_miss_and_weekly_periods(tmp_path: Path) -> None:
    with Workspace(":memory:") as ws:
        _history(ws, 60, last_reject=0.04, now=LAST_NIGHT)  # within target, far outside history
        daily = evaluate_kpis(ws, load_kpis(_kpis(tmp_path)), since_days=30, now=NOON)
        weekly = evaluate_kpis(ws, load_kpis(_kpis(tmp_path)), since_days=56, by="week", now=NOON)
        _history_ok = evaluate_kpis(ws, load_kpis(_kpis(tmp_path)), since_days=30,
                                    now=NOON - timedelta(days=2))
    assert daily.kpis[0].on_target is True and daily.kpis[0].anomalies and daily.kpis[0].status is Status.FAIL
    assert 8 <= len(weekly.kpis[2].series) <= 10
    # the vip size (aggregate: mean) averages a week's nights
    week, value = weekly.kpis[2].series[-2]
    nights = [v for d, v in daily.kpis[2].series if week <= d < week + timedelta(days=7)]
    assert len(nights) == 7 and value == sum(nights) / 7  # type: ignore[arg-type]
    assert _history_ok.kpis[0].status is Status.PASS  # two days earlier, before the jump


def test_cli_formats_and_exit_codes(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with Workspace(db) as ws:
        _history(ws, 40)
    path = _kpis(tmp_path)
    r = CliRunner().invoke(app, ["kpis", "--kpis", str(path), "-w", str(db), "--since", "30d"])
    assert r.exit_code == 0, r.output
    assert "reject_rate" in r.stdout and "pass" in r.stdout and any(b in r.stdout for b in "▁▂▃▄▅▆▇█")
    r = CliRunner().invoke(app, ["kpis", "--kpis", str(path), "-w", str(db), "--format", "json"])
    data = json.loads(r.stdout)
    assert data["status"] == "pass" and data["kpis"][0]["expected"] is not None
    r = CliRunner().invoke(app, ["kpis", "--kpis", str(path), "-w", str(db), "--format", "csv", "--since", "10d"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row["kpi"] for row in rows} == {"reject_rate", "invalid_share", "vip"}
    with Workspace(db) as ws:
        _history(ws, 1, last_reject=0.3, now=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1),
                 prefix="q")
    r = CliRunner().invoke(app, ["kpis", "--kpis", str(path), "-w", str(db)])
    assert r.exit_code == 1
    assert "FAIL (off target, anomaly)" in r.stdout
    with Workspace(db) as ws:  # each kpis run is a recorded step; its KPI values are metrics
        runs = ws.con.execute("SELECT status FROM crm_runs WHERE command = 'kpis' ORDER BY started_at").fetchall()
        value = ws.con.execute("SELECT value FROM crm_metrics WHERE step = 'kpis' AND name = 'kpi_value' "
                               "AND dimension = 'reject_rate' ORDER BY recorded_at DESC LIMIT 1").fetchall()
    assert runs == [("pass",), ("pass",), ("pass",), ("fail",)]
    assert value == [(0.3,)]


def test_sparkline() -> None:
    assert sparkline([1, 2, 3, None, 8]) == "▁▂▃ █"
    assert sparkline([5, 5]) == "▁▁"
    assert sparkline([None]) == ""
