"""Issue 16: the last --log-file line of every command that records a run names that run, so a log
scanner can go from a cron mail to ``crm_runs`` (and the run's folder) without guessing."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from .conftest import ROOT, cli

EX = ROOT / "examples"
KEY = {"CRMTOOL_KEY": "test-key-0123456789abcdef"}
# one-shot in-memory workspaces (export-audience) or the pipeline's own (run): not in the shared one
OWN_WORKSPACE = {"audience", "run"}
END = re.compile(r"crmtool [a-z -]+: run (\S+) \w+ exit=(\d+)")


def _walk(tmp: Path) -> list[tuple[str, list[str | Path]]]:
    """One invocation of every command that records a run, in an order where each finds what it needs."""
    out = tmp / "out"
    seg = tmp / "seg"
    requests = tmp / "requests.csv"
    requests.write_text("request_id,email\nR1,nobody@example.com\n", encoding="utf-8")
    return [
        ("suppress import", ["suppress", "import", EX / "bajas.csv", "--kind", "unsubscribe"]),
        ("clean", ["clean", EX / "clientes.csv", "-r", ROOT / "rules", "--out", out]),
        ("validate", ["validate", EX / "clientes.csv", "-r", ROOT / "rules"]),
        ("dedupe", ["dedupe", out / "clientes.clean.csv", "-r", ROOT / "rules" / "30-dedupe.yaml", "--out",
                    tmp / "dd"]),
        ("emails", ["emails", EX / "clientes.csv", "--out", tmp / "em"]),
        ("bounces import", ["bounces", "import", ROOT / "tests" / "emails" / "bounces" / "generic.csv"]),
        ("segment", ["segment", "run", EX / "clientes.csv", "--segments", ROOT / "segments.yaml", "--orders",
                     EX / "pedidos.csv", "--events", EX / "eventos.csv", "--out", seg, "--as-of", "2026-11-01"]),
        ("audience", ["segment", "export-audience", "champions", "--platform", "google", "--from", seg,
                      "--segments", ROOT / "segments.yaml"]),
        ("campaign start", ["campaign", "start", "c1", "--segment", "high_value", "--start-date", "2026-09-01",
                            "--out", seg]),
        ("campaign results", ["campaign", "results", "c1", "--orders", EX / "pedidos.csv", "--window", "60d",
                              "--segments", ROOT / "segments.yaml"]),
        ("diff", ["diff", EX / "clientes.csv", EX / "clientes-next.csv", "--key", "customer_id", "--out", tmp / "df"]),
        ("export", ["export", EX / "clientes.csv", "--policy", EX / "policy-sales.yaml", "--out", tmp / "x.csv"]),
        ("subject export", ["subject", "export", "nobody@example.com", "--out", tmp / "subj"]),
        ("erase", ["erase", "--requests", requests, "--out", tmp / "er"]),
        ("retention", ["retention", "apply", "-r", ROOT / "rules", "--out", out, "--as-of", "2026-11-01"]),
        ("kpis", ["kpis", "--kpis", EX / "kpis.yaml"]),
        ("report", ["report", "--out", tmp / "report.html"]),
        ("run", ["run", EX / "pipeline.yaml", "--root", ROOT, "--date", "2026-11-01"]),
    ]


@pytest.mark.slow
def test_every_command_that_records_a_run_names_it_last_in_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ws = tmp_path / "crm.duckdb"
    seen: dict[str, str] = {}
    for step, args in _walk(tmp_path):
        log = tmp_path / "logs" / f"{step.replace(' ', '-')}.log"
        extra: list[str | Path] = ["--log-file", log]
        if step not in OWN_WORKSPACE:
            extra += ["-w", ws]
        result = cli(*args, *extra, env=KEY)
        assert result.exit_code in (0, 1), (step, result.output)
        last = log.read_text(encoding="utf-8").strip().splitlines()[-1]
        match = END.search(last)
        assert match, (step, last)
        run_id = match.group(1)
        assert run_id != "-", (step, last)
        assert int(match.group(2)) == result.exit_code, (step, last)
        seen[step] = run_id
    con = duckdb.connect(str(ws), read_only=True)
    recorded = dict(con.execute("SELECT run_id, command FROM crm_runs").fetchall())
    con.close()
    for step, run_id in seen.items():
        if step in OWN_WORKSPACE:
            continue
        assert recorded.get(run_id) == step, (step, run_id)
    # every kind of run the workspace holds was walked: a new command that records runs joins the walk
    assert set(recorded.values()) <= set(seen), set(recorded.values()) - set(seen)
