"""Retention rules, the personal-data inventory, and --help of every privacy command."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crmtool.errors import ConfigError
from crmtool.pii import category_from_name, pii_inventory
from crmtool.privacy.retention import parse_period
from crmtool.rule_paths import apply_retention
from crmtool.workspace import Workspace

from .conftest import EXAMPLES, RULES, cli, read_csv


def _rules(tmp_path: Path, action: str, extra: str = "") -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(
        "version: 1\ndataset:\n  key: customer_id\n  personal_data: [name, email]\n"
        "consent:\n  email:\n    column: consent\n    date_column: consent_date\n"
        f"retention:\n  - name: old\n    inactive_for: 3y\n    activity_columns: [last_order]\n"
        f"    consent_renewal: email\n    action: {action}\n{extra}",
        encoding="utf-8",
    )
    return path


def _table(ws: Workspace) -> None:
    ws.con.execute("""CREATE TABLE clean_c AS SELECT * FROM (VALUES
        (1, 'C1', 'Ana', 'a@x.es', '2020-01-01', 'yes', NULL),
        (2, 'C2', 'Bob', 'b@x.es', '2025-06-01', 'yes', NULL),
        (3, 'C3', 'Eva', 'e@x.es', '2019-01-01', 'yes', '01/02/2025'),
        (4, 'C4', 'Leo', 'l@x.es', NULL, 'no', NULL)) v(_row, customer_id, name, email, last_order, consent,
        consent_date)""")


def test_delete_counts_reason_and_undated_rows_kept(ws: Workspace, tmp_path: Path) -> None:
    _table(ws)
    result = apply_retention(ws, [_rules(tmp_path, "delete")], out_dir=tmp_path / "out", as_of=date(2026, 11, 1))
    assert result.rules == [
        {
            "rule": "old",
            "dataset": "c",
            "action": "delete",
            "rows": 1,
            "people": 1,
            "reason": "no activity in 3 years",
            "last_activity_before": "2023-11-01",
        }
    ]
    assert [r[0] for r in ws.con.execute("SELECT customer_id FROM clean_c ORDER BY 1").fetchall()] == ["C2", "C3", "C4"]
    from crmtool.audit import show

    entries = list(show(tmp_path / "out" / "crmtool.audit"))
    assert [e["type"] for e in entries] == ["run", "retention", "seal", "retention_record"]  # the chain, then the set
    assert entries[3]["record"] == "k:" + ws.hasher.token("C1")


def test_anonymise_blanks_personal_columns_only(ws: Workspace, tmp_path: Path) -> None:
    _table(ws)
    apply_retention(
        ws, [_rules(tmp_path, "anonymise", "    undated: apply\n")], out_dir=tmp_path / "out", as_of=date(2026, 11, 1)
    )
    got = ws.con.execute("SELECT _row, name, email, last_order FROM clean_c ORDER BY _row").fetchall()
    assert got == [
        (1, None, None, "2020-01-01"),
        (2, "Bob", "b@x.es", "2025-06-01"),
        (3, "Eva", "e@x.es", "2019-01-01"),
        (4, None, None, None),
    ]


def test_retention_errors(ws: Workspace, tmp_path: Path) -> None:
    _table(ws)
    bad = _rules(tmp_path, "delete").read_text(encoding="utf-8").replace("[last_order]", "[last_event]")
    (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match="column 'last_event' is not in clean_c"):
        apply_retention(ws, [tmp_path / "bad.yaml"], out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert parse_period("36 months") == (0, 36, 0) and parse_period("3y") == (3, 0, 0)


def test_retention_cli_on_the_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    assert cli("clean", EXAMPLES / "clientes.csv", "-r", RULES, "--out", out, "-w", db)[0] in (0, 1)
    before = read_csv(out / "clientes.clean.csv")
    code, output = cli("retention", "apply", "-r", RULES, "--out", out, "-w", db, "--as-of", "2026-11-01")
    assert code == 0, output
    assert "inactive_3y on clientes: anonymise" in output
    after = read_csv(out / "clientes.clean.csv")
    assert len(after) == len(before)
    blanked = sum(1 for r in after if not r["email"] and not r["first_name"])
    assert f"anonymise {blanked} rows" in output and blanked > 0
    assert cli("audit", "verify", "-w", db)[0] == 0


def test_pii_inventory_of_the_example(ws: Workspace) -> None:
    from crmtool.io.readers import load_file

    load_file(ws.con, EXAMPLES / "clientes.csv", "data_x")
    inventory = {r["column"]: r["category"] for r in pii_inventory(ws.con, "data_x")}
    assert inventory == {
        "customer_id": "customer_id",
        "first_name": "name",
        "last_name": "name",
        "email": "email",
        "phone": "phone",
        "birth_date": "birth_date",
        "national_id": "national_id",
        "postal_code": "address",
        "city": "location",
        "country": None,
        "signup_date": None,
        "last_order_date": None,
        "total_spent": None,
        "email_consent": None,
    }


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("email_consent", None),
        ("email_status", None),
        ("fecha_nacimiento", "birth_date"),
        ("Teléfono", "phone"),
        ("correo", "email"),
        ("ip", "ip_address"),
        ("IBAN", "bank"),
        ("last_order_date", None),
        ("ciudad", "location"),
    ],
)
def test_pii_names(name: str, category: str | None) -> None:
    assert category_from_name(name) == category


def test_pii_by_content_only(ws: Workspace) -> None:
    ws.con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('a@x.es', '192.168.1.10', '12345678Z', 'x')) v(c1, c2, c3, c4)"
    )
    found = {r["column"]: (r["category"], r["evidence"]) for r in pii_inventory(ws.con, "t")}
    assert found == {
        "c1": ("email", "content"),
        "c2": ("ip_address", "content"),
        "c3": ("national_id", "content"),
        "c4": (None, None),
    }


def test_pii_cli() -> None:
    code, output = cli("pii", EXAMPLES / "clientes.csv")
    assert code == 0 and "9 of 14 columns look like personal data" in output


@pytest.mark.parametrize("args", [["suppress", "import"], ["erase"], ["export"], ["pii"], ["retention", "apply"]])
def test_every_command_has_help(args: list[str]) -> None:
    code, output = cli(*args, "--help")
    assert code == 0 and "Usage:" in output


def test_loaded_and_working_copies_follow_only_for_the_same_customer(ws: Workspace, tmp_path: Path) -> None:
    _table(ws)
    ws.con.execute("CREATE TABLE data_c AS SELECT _row, customer_id, name FROM clean_c")
    ws.con.execute("UPDATE data_c SET customer_id = 'C7', name = 'Other' WHERE _row = 1")  # another load, row 1
    ws.con.execute("CREATE TABLE work_c AS SELECT _row, name FROM clean_c")  # no key: cannot tell people apart
    apply_retention(ws, [_rules(tmp_path, "delete")], out_dir=tmp_path / "out", as_of=date(2026, 11, 1))
    assert ws.con.execute("SELECT count(*) FROM clean_c WHERE _row = 1").fetchall()[0][0] == 0
    assert ws.con.execute("SELECT name FROM data_c WHERE _row = 1").fetchall() == [("Other",)]
    assert ws.con.execute("SELECT count(*) FROM work_c").fetchall()[0][0] == 4


def test_activity_in_other_files_counts(ws: Workspace, tmp_path: Path) -> None:
    _table(ws)
    (tmp_path / "pedidos.csv").write_bytes("order_id;customer_id;order_date\nP1; C1 ;15/03/2025\n".encode("cp1252"))
    rules = _rules(
        tmp_path,
        "delete",
        "    activity_files:\n      - {path: pedidos.csv, key: customer_id, date_column: order_date}\n",
    )
    result = apply_retention(ws, [rules], out_dir=tmp_path / "out", as_of=date(2026, 11, 1))
    assert result.rules[0]["rows"] == 0  # C1 ordered in 2025: not inactive
    bad = rules.read_text(encoding="utf-8").replace("order_date}", "fecha}")
    rules.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"r\.yaml:\d+: retention 'old': column 'fecha' is not in"):
        apply_retention(ws, [rules], out_dir=tmp_path / "out", as_of=date(2026, 11, 1))
