"""A workspace with history for the report tests: real runs on examples/ plus synthetic nightly runs."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _nightly_history(ws: Workspace, nights: int = 40) -> None:
    """Forty nightly clean runs: checks pass ~97-98%, the last night drops to 80% (an anomaly and a
    missed target); rule results per night; campaign headline metrics for one campaign."""
    con = ws.con
    runs, rules = [], []
    for n in range(nights, 0, -1):
        run_id = f"hist-{n:03d}"
        started = NOW - timedelta(days=n, hours=-2)
        failed = 60 if n == 1 else 20 + (n * 7) % 9
        summary = {"counts": {"rows_in": 1000, "rows_out": 990 - (n % 4), "mailable": 520 + (n % 11)}}
        runs.append((run_id, "clean", started, started + timedelta(seconds=40), "0.1.0", "pass", 0,
                     json.dumps(summary)))
        for rule, kind, severity, share in (("email_syntax", "email", "error", 0.4),
                                            ("phone_e164", "phone", "warning", 0.6)):
            fail = int(failed * share) if n > 1 else (150 if rule == "email_syntax" else 50)
            rules.append((run_id, "clientes", rule, kind, severity, 1000, fail, 0, 0, "pass"))
    cols = "(run_id, command, started_at, finished_at, tool_version, status, exit_code, summary)"
    con.executemany(f"INSERT INTO crm_runs {cols} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", runs)
    con.executemany("INSERT INTO crm_rule_results (run_id, dataset, rule, kind, severity, checked, failed, fixed, "
                    "rejected, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rules)
    run_id = "hist-campaign"
    con.execute(f"INSERT INTO crm_runs {cols} VALUES (?, 'campaign', ?, ?, '0.1.0', 'pass', 0, '{{}}')",
                [run_id, NOW - timedelta(hours=3), NOW - timedelta(hours=3)])
    metrics = [("customers", "spring/holdout", 400), ("conversion_rate", "spring/holdout", 0.05),
               ("customers", "spring/A", 3600), ("conversion_rate", "spring/A", 0.071), ("uplift", "spring/A", 0.021),
               ("uplift_low", "spring/A", 0.004), ("uplift_high", "spring/A", 0.038)]
    con.executemany("INSERT INTO crm_metrics (run_id, step, name, dimension, value, recorded_at) "
                    "VALUES (?, 'campaign', ?, ?, ?, ?)",
                    [(run_id, name, dim, value, NOW) for name, dim, value in metrics])


def _modified_copy(tmp: Path) -> Path:
    """examples/clientes.csv a day later: a few edits, one customer gone, one new."""
    with (EXAMPLES / "clientes.csv").open(encoding="cp1252", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    body = body[1:]
    body[3][header.index("city")] = "Madrid"
    body[5][header.index("total_spent")] = "1,00"
    body.append(["C0999999", "Nueva", "Clienta", "nueva.clienta@example.org", "600111222", "01/01/1990", "",
                 "28001", "Madrid", "ES", "01/11/2026", "", "0", "si"])
    target = tmp / "clientes-new.csv"
    with target.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=";").writerows([header, *body])
    return target


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The workspace file of a shop with history (built once per module)."""
    from crmtool import api
    from crmtool.changes import diff_exports
    from crmtool.emails.run import classify_file
    from crmtool.segments.api import segment

    tmp = tmp_path_factory.mktemp("history")
    path = tmp / "crm.duckdb"
    mp = pytest.MonkeyPatch()
    mp.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef")
    try:
        with Workspace(path) as ws:
            _nightly_history(ws)
            api.clean(ws, EXAMPLES / "clientes.csv", [ROOT / "rules"], tmp / "out")
            classify_file(ws, EXAMPLES / "clientes.csv")
            for as_of in ("2026-10-01", "2026-10-15", "2026-11-01"):
                segment(ws, EXAMPLES / "clientes.csv", ROOT / "segments.yaml", out_dir=tmp / "seg",
                        orders=EXAMPLES / "pedidos.csv", events=EXAMPLES / "eventos.csv",
                        as_of=date.fromisoformat(as_of))
            diff_exports(ws, EXAMPLES / "clientes.csv", _modified_copy(tmp), key="customer_id")
            ws.con.execute("INSERT INTO dedupe_records VALUES ('a1', 'a1', 'h', 'x'), ('a2', 'a1', 'h', 'x'), "
                           "('b1', 'b1', 'h', 'x'), ('b2', 'b1', 'h', 'x'), ('b3', 'b1', 'h', 'x')")
        yield path
    finally:
        mp.undo()
