"""Issue 16, a first hour without friction: init, profile, 80 columns, failing rules with keys,
did-you-mean, completion, flags documented as flags."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from .conftest import EXAMPLE, RULES, cli, listing

KEY = {"CRMTOOL_KEY": "test-key-0123456789abcdef"}


def _other_export(path: Path, rows: int = 80) -> Path:
    """A differently named export (English headers, ISO dates, a comma delimiter)."""
    rng = random.Random(16)
    first = ["Ana", "Luis", "Marta", "Jorge", "Lucía", "Pablo", "Elena", "Sergio"]
    last = ["García", "Martínez", "López", "Sánchez", "Pérez", "Gómez"]
    lines = ["Client No,Given Name,Family Name,E-mail Address,Mobile,Date of Birth,Zip,Land,Balance"]
    for i in range(rows):
        f, surname = rng.choice(first), rng.choice(last)
        lines.append(f"K-{1000 + i},{f},{surname},{f.lower()}.{i}@example.es,6{rng.randint(10000000, 99999999)},"
                     f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)},"
                     f"{rng.randint(10000, 52999)},ES,{rng.randint(0, 9999)}.{rng.randint(10, 99)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("which", ["clientes", "other"])
def test_init_writes_starter_files_that_lint_and_clean(tmp_path: Path, which: str) -> None:
    export = EXAMPLE if which == "clientes" else _other_export(tmp_path / "crm-export.csv")
    folder = tmp_path / "project"
    result = cli("init", export, "--dir", folder)
    assert result.exit_code == 0, result.output
    assert sorted(listing(folder)) == ["rules", "rules/10-starter.yaml", "rules/30-dedupe.yaml", "segments.yaml"]
    rules_text = (folder / "rules" / "10-starter.yaml").read_text(encoding="utf-8")
    if which == "other":
        assert "key: Client No" in rules_text and "E-mail Address" in rules_text
        assert "recognised: key = Client No, email = E-mail Address, phone = Mobile" in result.stdout
        assert "first_name = Given Name, last_name = Family Name" in result.stdout
    assert cli("rules", "lint", folder / "rules").exit_code == 0
    assert cli("segment", "check", "--segments", folder / "segments.yaml").exit_code == 0
    out = tmp_path / "out"
    cleaned = cli("clean", export, "--rules", folder / "rules", "--out", out, "-w", ":memory:", "--format", "json",
                  env=KEY)
    assert cleaned.exit_code in (0, 1), cleaned.output  # checks may fail; the run works
    manifest = json.loads(cleaned.stdout)
    assert manifest["counts"]["rows_out"] > 0 and "dedupe" in manifest
    segmented = cli("segment", "run", export, "--segments", folder / "segments.yaml", "--out", tmp_path / "seg",
                    "-w", ":memory:", "-q", env=KEY)
    assert segmented.exit_code == 0, segmented.output


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    assert cli("init", EXAMPLE, "--dir", folder).exit_code == 0
    mine = folder / "segments.yaml"
    mine.write_text("# my own\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in folder.rglob("*.yaml")}
    again = cli("init", EXAMPLE, "--dir", folder)
    assert again.exit_code == 2
    assert "already exist; nothing written" in again.stderr and "--force" in again.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*.yaml")} == before
    assert cli("init", EXAMPLE, "--dir", folder, "--force").exit_code == 0
    assert mine.read_text(encoding="utf-8").startswith("# Starter segments")


def test_init_needs_an_export(tmp_path: Path) -> None:
    result = cli("init", "--dir", tmp_path)
    assert result.exit_code == 2 and "init needs your export" in result.stderr
    assert list(tmp_path.iterdir()) == []
    # the only export of the folder is taken; two are ambiguous
    _other_export(tmp_path / "a.csv")
    assert cli("init", "--dir", tmp_path).exit_code == 0
    assert (tmp_path / "rules" / "10-starter.yaml").exists()
    _other_export(tmp_path / "b.csv")
    two = cli("init", "--dir", tmp_path, "--force")
    assert two.exit_code == 2 and "2 exports in" in two.stderr


def test_profile_exact_distinct_and_bounds(tmp_path: Path) -> None:
    result = cli("profile", EXAMPLE, "--format", "json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    cols = {c["name"]: c for c in payload["columns"]}
    for c in cols.values():
        assert c["distinct"] <= payload["rows"] - c["nulls"]
    assert cols["customer_id"]["distinct"] == 297  # 301 rows, 4 repeated ids
    assert cols["total_spent"]["type"] == "decimal"
    assert float(cols["total_spent"]["min_value"]) <= float(cols["total_spent"]["max_value"])
    assert cols["signup_date"]["min_length"] == 10 == cols["signup_date"]["max_length"]
    # personal data: no values unless asked, bounds included
    assert cols["birth_date"]["min_value"] is None and cols["birth_date"]["top_values"] is None
    shown = json.loads(cli("profile", EXAMPLE, "--format", "json", "--show-values").stdout)
    assert next(c for c in shown["columns"] if c["name"] == "birth_date")["top_values"]
    small = tmp_path / "s.csv"
    small.write_text("a\n" + "\n".join(f"v{i}" for i in range(7)) + "\n", encoding="utf-8")
    assert json.loads(cli("profile", small, "--format", "json").stdout)["columns"][0]["distinct"] == 7


@pytest.mark.parametrize("args", [("validate", EXAMPLE, "--rules", RULES), ("profile", EXAMPLE)])
def test_tables_fit_80_columns(args: tuple[str | Path, ...]) -> None:
    result = cli(*args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    widths = [len(line) for line in result.stdout.splitlines()]
    assert widths and max(widths) <= 80, max(widths)
    if args[0] == "validate":
        assert "email_role_account" in result.stdout  # names fold, they do not vanish


def test_failing_validate_shows_rules_and_example_keys(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("dataset: {key: customer_id, max_unparseable: 2}\n"
                     "rules:\n  - {name: p, kind: phone, column: phone, region: ES}\n", encoding="utf-8")
    result = cli("validate", EXAMPLE, "--rules", rules)
    assert result.exit_code == 1
    assert f"FAIL p: 15 of 301 rows (5.0%), threshold 0 ({rules}:3)" in result.stdout.replace("\n", "")
    line = next(ln for ln in result.stdout.splitlines() if ln.strip().startswith("e.g."))
    keys = line.split("customer_id", 1)[1].split(",")
    assert 1 <= len(keys) <= 5 and all(k.strip().startswith("C") for k in keys)
    assert "+34" not in result.stdout and "688" not in result.stdout  # keys, never the phone numbers
    payload = json.loads(cli("validate", EXAMPLE, "--rules", rules, "--format", "json").stdout)
    assert payload["rules"][1]["example_keys"] == [k.strip() for k in keys]


def test_unknown_rule_keys_get_did_you_mean(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - name: p\n    kind: phone\n    colum: phone\n    treshold: 2\n", encoding="utf-8")
    result = cli("rules", "lint", rules)
    assert result.exit_code == 2
    assert f"{rules}:4: rules/0: Additional properties are not allowed ('colum' was unexpected) " \
           f"(did you mean 'column'?)" in result.stderr
    assert f"{rules}:5:" in result.stderr and "(did you mean 'threshold'?)" in result.stderr


def test_shell_completion_is_enabled() -> None:
    result = cli("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_boolean_options_are_documented_as_flags() -> None:
    for command in (("clean",), ("validate",), ("emails",), ("dedupe",), ("init",), ("segment", "run")):
        text = cli(*command, "--help", env={"COLUMNS": "200"}).stdout
        # (typer itself shows its own -h/--help with a type; every option of ours is a plain flag)
        assert not [ln for ln in text.splitlines() if "<bool>" in ln and "--help" not in ln], command
        assert "--quiet" in text and "--log-file" in text, command
