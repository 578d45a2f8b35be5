"""``crmtool emails`` and ``crmtool bounces import`` through the real CLI, and the email_risk kind in clean."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from dnszone import DnsServer
from typer.testing import CliRunner

from crmtool.cli import app
from goldens import check_golden

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

SMALL = """id;correo;nota
1;Ana.Lopez@Gmail.com;ok
2;ana@gmial.com;typo
3;info@acme.es;role
4;x@mailinator.com;disposable
5;;empty
6;not an address;bad
7;ana@gmial.com;repeat
8;luis@empresa.con;tld
9;xk7qz9wv3p@acme.es;random
10;=cmd@evil.es;formula
"""


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    path.write_text(SMALL, encoding="cp1252")
    return path


def test_emails_writes_one_row_per_distinct_address(small: Path, tmp_path: Path) -> None:
    res = invoke("emails", small, "--column", "correo", "--out", tmp_path / "o", "-w", ":memory:",
                 "--lists", tmp_path)
    assert res.exit_code == 0, res.output
    written = (tmp_path / "o" / "emails.csv").read_text(encoding="utf-8")
    check_golden("emails/emails_small.csv", written)
    for word in ("valid", "risky", "invalid", "typo_domain", "disposable", "role", "random_local", "bad_tld"):
        assert word in res.output
    assert "ana@gmial.com" not in res.output  # counts only on the terminal
    again = invoke("emails", small, "--column", "correo", "--out", tmp_path / "o2", "-w", ":memory:",
                   "--lists", tmp_path)
    assert again.exit_code == 0
    assert (tmp_path / "o2" / "emails.csv").read_bytes() == (tmp_path / "o" / "emails.csv").read_bytes()


def test_emails_json_and_parquet(small: Path, tmp_path: Path) -> None:
    res = invoke("emails", small, "-c", "correo", "--out", tmp_path / "o", "--output-format", "parquet",
                 "--format", "json", "-w", ":memory:")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["rows"] == 10 and payload["rows_without_address"] == 1 and payload["addresses"] == 8
    assert payload["by_status"]["risky"] == {"addresses": 4, "rows": 5}
    assert payload["by_reason"]["typo_domain"] == {"addresses": 2, "rows": 3}
    rows = duckdb.sql(f"SELECT email, reasons, tags FROM '{tmp_path / 'o' / 'emails.parquet'}' "
                      "WHERE email = 'ana@gmial.com'").fetchall()
    assert rows == [("ana@gmial.com", ["disposable", "typo_domain"], [])]


def test_missing_column_is_a_clear_error(small: Path) -> None:
    res = invoke("emails", small, "-w", ":memory:")
    assert res.exit_code == 2
    assert "column 'email' is not in the data (columns: id, correo, nota)" in res.output
    assert "Traceback" not in res.output


def test_empty_column_and_non_text_values(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("id,email\n1,\n2,\n", encoding="utf-8")
    res = invoke("emails", empty, "--format", "json", "-w", ":memory:")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["addresses"] == 0 and payload["rows_without_address"] == 2
    numbers = tmp_path / "numbers.parquet"
    duckdb.sql(f"COPY (SELECT i AS email FROM range(3) t(i)) TO '{numbers}' (FORMAT parquet)")
    res = invoke("emails", numbers, "--format", "json", "-w", ":memory:")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["by_status"]["invalid"] == {"addresses": 3, "rows": 3}


def test_lists_folder_must_exist(small: Path, tmp_path: Path) -> None:
    res = invoke("emails", small, "-c", "correo", "--lists", tmp_path / "nope", "-w", ":memory:")
    assert res.exit_code == 2 and "no such folder" in res.output


def test_resolver_must_be_an_address(small: Path) -> None:
    res = invoke("emails", small, "-c", "correo", "--mx", "--resolver", "dns.example", "-w", ":memory:")
    assert res.exit_code == 2 and "not an IP address" in res.output


def test_mx_with_a_down_server_finishes_and_says_how_many(tmp_path: Path, dead_resolver: str) -> None:
    path = tmp_path / "mx.csv"
    path.write_text("email\nana@conmx.es\nluis@soloa.es\nbad\n", encoding="utf-8")
    res = invoke("emails", path, "--mx", "--resolver", dead_resolver, "--mx-timeout", "0.2", "-w", ":memory:")
    assert res.exit_code == 0, res.output
    assert "2 unanswered (dns_timeout)" in res.output
    assert "unknown" in res.output


def test_mx_cache_lives_in_the_workspace(tmp_path: Path, dns_server: DnsServer) -> None:
    path = tmp_path / "mx.csv"
    path.write_text("email\nana@conmx.es\nluis@nullmx.es\neva@noexiste.es\n", encoding="utf-8")
    ws = tmp_path / "ws.duckdb"
    args = ("emails", path, "--mx", "--resolver", dns_server.address, "--format", "json", "-w", ws)
    first = json.loads(invoke(*args).stdout)
    assert first["mx"]["asked_dns"] == 3 and first["by_reason"]["no_mx"]["addresses"] == 1
    assert first["by_reason"]["domain_not_found"]["addresses"] == 1
    second = json.loads(invoke(*args).stdout)
    assert second["mx"]["asked_dns"] == 0 and second["mx"]["from_cache"] == 3
    assert second["by_status"] == first["by_status"]


def test_bounces_import_then_emails(tmp_path: Path) -> None:
    ws = tmp_path / "ws.duckdb"
    res = invoke("bounces", "import", HERE / "bounces" / "mailchimp_bounces.csv", "--format", "json", "-w", ws)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["by_type"] == {"hard": 1, "soft": 3}
    res = invoke("bounces", "import", HERE / "bounces" / "ses_notifications.jsonl", "--platform", "ses", "-w", ws)
    assert res.exit_code == 0 and "imported 4" in res.output
    path = tmp_path / "list.csv"
    path.write_text("email\nhard3@conmx.es\nsoft1@conmx.es\nhard10@conmx.es\nok@conmx.es\n", encoding="utf-8")
    payload = json.loads(invoke("emails", path, "--format", "json", "-w", ws).stdout)
    assert payload["by_reason"]["hard_bounced"]["addresses"] == 2
    assert payload["by_reason"]["soft_bounced_repeatedly"]["addresses"] == 1
    bad = invoke("bounces", "import", HERE / "bounces" / "generic.csv", "--platform", "nope", "-w", ws)
    assert bad.exit_code == 2 and "unknown bounce format" in bad.output
    bad = invoke("bounces", "import", HERE / "bounces" / "generic.csv", "--format", "nope", "-w", ws)
    assert bad.exit_code == 2 and "bounces import writes text or json" in bad.output


def test_bounces_import_old_option_names_still_work_with_a_warning(tmp_path: Path) -> None:
    ws = tmp_path / "ws.duckdb"
    res = invoke("bounces", "import", HERE / "bounces" / "ses_notifications.jsonl", "--format", "ses", "-w", ws)
    assert res.exit_code == 0 and "imported 4" in res.output
    assert "'--format ses' names the platform only until 0.2: write '--platform ses'" in res.output
    res = invoke("bounces", "import", HERE / "bounces" / "mailchimp_bounces.csv", "--output", "json", "-w", ws)
    assert res.exit_code == 0 and "'--output' is now '--format'" in res.output
    assert json.loads(res.stdout)["platform"] == "mailchimp"


RULES = """version: 1
rules:
  - name: email_bad
    kind: email_risk
    column: email
    reasons: [bad_tld, syntax]
  - name: email_fix_typos
    kind: email_risk
    column: email
    severity: warning
    action: fix
    reasons: [typo_domain, disposable]
    ignore: [role]
"""


def test_email_risk_rule_in_clean_fixes_typos_with_audit(tmp_path: Path) -> None:
    data = tmp_path / "clientes.csv"
    data.write_text("id,email\n1,ana@gmial.com\n2,luis@hotmial.es\n3,info@acme.es\n4,eva@empresa.zz\n"
                    "5,x@mailinator.com\n", encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    res = invoke("clean", data, "--rules", rules, "--out", tmp_path / "out", "-w", ":memory:", "--format", "json")
    assert res.exit_code == 1, res.output  # eva@empresa.zz fails the error rule
    report = json.loads(res.stdout)
    clean = (tmp_path / "out" / "clientes.clean.csv").read_text(encoding="utf-8")
    assert "ana@gmail.com" in clean and "luis@hotmail.es" in clean and "info@acme.es" in clean
    from crmtool.audit import show

    audit = list(show(tmp_path / "out" / "crmtool.audit"))
    fixes = [e for e in audit if e.get("type") == "change" and e.get("rule") == "email_fix_typos"]
    assert len(fixes) == 2
    text = json.dumps(report)
    assert "email_bad" in text and "email_fix_typos" in text


def test_email_risk_rule_file_problems_have_lines(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - kind: email_risk\n    column: email\n    reasons: [nope]\n"
                     "  - kind: email_risk\n    column: email\n    resolver: 'x.y'\n    lists: missing\n",
                     encoding="utf-8")
    data = tmp_path / "d.csv"
    data.write_text("email\na@b.es\n", encoding="utf-8")
    res = invoke("validate", data, "--rules", rules, "-w", ":memory:")
    assert res.exit_code == 2
    assert "rules.yaml:5" in res.output or "rules.yaml:3" in res.output


def test_email_risk_rule_with_mx(tmp_path: Path, dns_server: DnsServer) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,email\n1,ana@conmx.es\n2,luis@nullmx.es\n3,eva@noexiste.es\n4,pep@soloa.es\n",
                    encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - name: deliverable\n    kind: email_risk\n    column: email\n"
                     f"    mx: true\n    resolver: '{dns_server.address}'\n    mx_timeout: 0.5\n"
                     "    reasons: [no_mx, domain_not_found]\n", encoding="utf-8")
    res = invoke("validate", data, "--rules", rules, "-w", ":memory:", "--format", "json")
    assert res.exit_code == 1, res.output
    rule = next(r for r in json.loads(res.stdout)["rules"] if r["rule"] == "deliverable")
    assert rule["failed"] == 2 and rule["reasons"] == {"domain_not_found": 1, "no_mx": 1}
