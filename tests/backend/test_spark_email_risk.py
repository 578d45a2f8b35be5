"""email_risk as backend steps: per distinct address where the rows are (map_values), per
distinct domain (and its MX answer) on this machine. The same outcomes, reasons, changes and
violation rows as the DuckDB engine, on the DuckDB backend and on Spark; MX from a DNS server
on loopback (tests/emails/dnszone.py), never the internet."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.backend.checks import CHANGES, VIOLATIONS, run_checks
from crmtool.backend.duckdb_backend import DuckDBBackend
from crmtool.backend.spark_backend import SparkBackend
from crmtool.cli import app
from crmtool.engine import run_rules
from crmtool.errors import ConfigError
from crmtool.io.readers import load_file
from crmtool.rulefile import load_rules

from .conftest import engine_run, outcome_rows

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "emails"))

from dnszone import DnsServer, Zone  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
ZONE = Zone(mx={"conmx.es": [(10, "mx1.conmx.es")]}, a={"soloa.es"}, null_mx={"nullmx.es"}, drop={"lento.es"},
            servfail={"roto.es"}, ttl=300)
#: every reason the offline classifier gives (the labelled corpus of tests/emails), plus the
#: MX outcomes of the zone above and repeated addresses
MX_ADDRESSES = ["ana@conmx.es", "luis@soloa.es", "eva@nullmx.es", "pau@lento.es", "iker@roto.es",
                "zoe@nohay.es", "Ana@CONMX.es", "ana@conmx.es"]
RULES = """version: 1
rules:
  - name: everything
    kind: email_risk
    column: email
    reasons: [syntax, bad_tld, disposable, homoglyph, mixed_script, typo_domain, random_local, role]
    action: fix
    fix_reasons: [typo_domain, homoglyph, syntax]
    severity: warning
  - {name: invalid, kind: email_risk, column: email, severity: warning}
  - {name: no_roles, kind: email_risk, column: email, reasons: [role, disposable], ignore: [typo_domain],
     severity: warning}
"""
MX_RULES = """version: 1
rules:
  - name: mx
    kind: email_risk
    column: email
    reasons: [domain_not_found, no_mx, dns_timeout, bad_tld, syntax]
    mx: true
    resolver: "{resolver}"
    mx_timeout: 0.3
    severity: warning
"""


def corpus() -> list[str]:
    with (ROOT / "tests" / "emails" / "labeled_emails.csv").open(encoding="utf-8") as f:
        return [json.loads(row["email_json"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(ZONE) as server:
        yield server


def _table(tmp_path: Path, emails: list[str]) -> Path:
    data = tmp_path / "emails.parquet"
    con = duckdb.connect()
    con.execute("CREATE TABLE e (customer_id VARCHAR, email VARCHAR)")
    con.executemany("INSERT INTO e VALUES (?, ?)", [(f"C{i:05d}", e) for i, e in enumerate(emails, 1)])
    con.execute(f"COPY e TO '{data}' (FORMAT parquet)")
    return data


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "risk.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("mx", [False, True], ids=["offline", "mx"])
def test_email_risk_steps_on_the_duckdb_backend_match_the_engine(tmp_path: Path, dns: DnsServer, mx: bool) -> None:
    data = _table(tmp_path, MX_ADDRESSES if mx else corpus() + corpus()[:20])
    rules = _rules(tmp_path, MX_RULES.format(resolver=dns.address) if mx else RULES)
    con, engine, violations, changes, _work = engine_run(data, rules, "e")
    result = run_checks(DuckDBBackend(con), "data_e", load_rules([rules]), keep_results=True,
                        home=duckdb.connect())  # an empty MX cache of its own: DNS asked again
    assert outcome_rows(result) == outcome_rows(engine)
    assert con.execute(f"SELECT * FROM {VIOLATIONS} ORDER BY ALL").fetchall() == violations
    assert con.execute(f"SELECT * FROM {CHANGES} ORDER BY ALL").fetchall() == changes
    reasons = {r.split(":")[0] for o in engine.outcomes for r in o.reasons}
    if mx:
        assert reasons == {"domain_not_found", "no_mx", "dns_timeout"}
    else:
        # typo domains are fixed before the checks run, so they show as fixes
        assert reasons >= {"syntax", "bad_tld", "disposable", "homoglyph", "mixed_script", "random_local", "role"}
        assert {o.spec.name: o.fixed for o in engine.outcomes}["everything"] > 5


def test_email_risk_on_spark_matches_the_engine_row_for_row(spark: SparkBackend, tmp_path: Path,
                                                            dns: DnsServer) -> None:
    for mx in (False, True):
        folder = tmp_path / ("mx" if mx else "offline")
        folder.mkdir()
        data = _table(folder, MX_ADDRESSES if mx else corpus() + corpus()[:20])
        rules = _rules(folder, MX_RULES.format(resolver=dns.address) if mx else RULES)
        con, engine, violations, changes, _work = engine_run(data, rules, "e")
        staged = folder / "loaded.parquet"
        DuckDBBackend(con).write_parquet("SELECT * FROM data_e", staged)
        spark.read_parquet(staged, "risk_input")
        try:
            result = run_checks(spark, "risk_input", load_rules([rules]), work_table="risk_work", keep_results=True,
                                home=duckdb.connect())
            got_violations = sorted(spark.fetch(f"SELECT * FROM {VIOLATIONS}"))
            got_changes = sorted(spark.fetch(f"SELECT * FROM {CHANGES}"))
        finally:
            for name in ("risk_work", VIOLATIONS, CHANGES, "risk_input"):
                spark.drop_table(name)
        assert outcome_rows(result) == outcome_rows(engine), mx
        assert got_violations == violations, mx
        assert got_changes == changes, mx
        assert len(violations) > (3 if mx else 30)


def test_clean_with_the_example_email_risk_rules_on_spark(spark: SparkBackend, tmp_path: Path) -> None:
    rules = ["--rules", str(ROOT / "rules" / "10-normalise.yaml"), "--rules", str(ROOT / "rules" / "20-checks.yaml"),
             "--rules", str(ROOT / "rules" / "25-email-risk.yaml")]
    outs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / engine
        result = CliRunner().invoke(app, ["clean", str(ROOT / "examples" / "clientes.csv"), *rules, "--out",
                                          str(out / "out"), "--workspace", str(out / "ws.duckdb"), "--quiet",
                                          "-f", "json", "--engine", engine])
        assert result.exit_code == 0, result.output
        outs[engine] = out
    for name in ("clientes.clean.csv", "clientes.rejects.csv"):
        assert (outs["spark"] / "out" / name).read_bytes() == (outs["duckdb"] / "out" / name).read_bytes(), name
    sets = [sorted((d / "ws.audit" / "sets").glob("*.parquet")) for d in outs.values()]
    digests = [[hashlib.sha256(f.read_bytes()).hexdigest() for f in files] for files in sets]
    assert digests[1] == digests[0] and digests[0]


def test_history_in_the_workspace_is_refused_naming_the_rule(tmp_path: Path) -> None:
    from crmtool.emails.run import history_ready
    from crmtool.workspace import Workspace

    data = _table(tmp_path, ["hard1@conmx.es", "ana@conmx.es"])
    rules = _rules(tmp_path, RULES.replace("reasons: [syntax,", "reasons: [hard_bounced, syntax,"))
    imported = CliRunner().invoke(app, ["bounces", "import", str(ROOT / "tests" / "emails" / "bounces" /
                                                                 "mailchimp_cleaned.csv"),
                                        "--workspace", str(tmp_path / "ws.duckdb")])
    assert imported.exit_code == 0, imported.output
    with Workspace(tmp_path / "ws.duckdb") as ws:
        history_ready(ws)
        load_file(ws.con, data, "data_h")
        engine = run_rules(ws.con, "data_h", load_rules([rules]), work_table="work_h")
        assert engine.outcomes[0].reasons.get("hard_bounced") == 1  # the engine reads the history
        with pytest.raises(ConfigError, match="rule 'everything': email_risk with the workspace's bounce"):
            run_checks(DuckDBBackend(ws.con), "data_h", load_rules([rules]))
