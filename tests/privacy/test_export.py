"""Pseudonymised export: per-column actions, stable keyed hashes, key fingerprint, bad policies."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from crmtool.errors import ConfigError
from crmtool.privacy.export import export
from crmtool.workspace import Workspace

from .conftest import EXAMPLES, cli, read_csv

POLICY = EXAMPLES / "policy-sales.yaml"


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(
        "customer_id,first_name,last_name,email,phone,birth_date,postal_code,national_id,notes\n"
        "C1,Ana,García,Ana.Garcia@Gmail.com,600 12 34 56,10/07/1985,8246,12345678Z,vip\n"
        "C2,Luis,Pérez,luis@hotmail.es,+34 699 000 111,2001-03-08,28001,,\n",
        encoding="utf-8",
    )
    return path


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_actions_per_column(ws: Workspace, tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        "version: 1\ncolumns:\n  customer_id: hash\n  first_name: keep\n  email: mask\n"
        "  phone: mask\n  birth_date: {generalise: age_band}\n  postal_code: {generalise: province}\n"
        "  national_id: {mask: text}\n",
    )
    result = export(ws, _input(tmp_path), policy, tmp_path / "out.csv", as_of=date(2026, 11, 1))
    rows = read_csv(tmp_path / "out.csv")
    assert list(rows[0]) == ["customer_id", "first_name", "email", "phone", "birth_date", "postal_code", "national_id"]
    assert rows[0]["customer_id"] == ws.hasher.token("C1") and rows[0]["first_name"] == "Ana"
    assert [r["email"] for r in rows] == ["a***@gmail.com", "l***@hotmail.es"]
    assert [r["phone"] for r in rows] == ["***456", "***111"]
    assert [r["birth_date"] for r in rows] == ["40-49", "20-29"]
    assert [r["postal_code"] for r in rows] == ["Barcelona", "Madrid"]
    assert [r["national_id"] for r in rows] == ["1***", ""]
    # dropped columns are really absent (the default is drop), values too
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "García" not in text and "vip" not in text and "12345678Z" not in text and "Gmail" not in text
    assert result.dropped_columns == ["last_name", "notes"]
    assert set(result.personal_remaining) == {
        "customer_id",
        "first_name",
        "email",
        "phone",
        "birth_date",
        "postal_code",
        "national_id",
    }


def test_keyed_hashes_are_stable_per_key_and_differ_across_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = _policy(tmp_path, "version: 1\ncolumns:\n  customer_id: hash\n  email: hash\n  phone: hash\n")
    src = _input(tmp_path)

    def run(name: str) -> tuple[list[dict[str, str]], dict[str, object]]:
        with Workspace(":memory:") as ws:
            export(ws, src, policy, tmp_path / name)
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text(encoding="utf-8"))
        return read_csv(tmp_path / name), manifest

    first, m1 = run("a.csv")
    second, m2 = run("b.csv")
    assert first == second and m1["key_fingerprint"] == m2["key_fingerprint"]
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    monkeypatch.setenv("CRMTOOL_KEY", "another-key-9876543210fedcba")
    third, m3 = run("c.csv")
    assert m3["key_fingerprint"] != m1["key_fingerprint"]
    for col in ("customer_id", "email", "phone"):
        assert [r[col] for r in third] != [r[col] for r in first]
        assert all(len(r[col]) == 32 for r in third)
    for path in tmp_path.iterdir():
        assert "another-key" not in path.read_text(encoding="utf-8", errors="replace")
        assert "test-key-0123456789abcdef" not in path.read_text(encoding="utf-8", errors="replace")


def test_same_person_same_token_across_spellings(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text(
        "email,phone\n ANA.GARCIA@gmail.com ,0034600123456\nana.garcia@gmail.com,600 12 34 56\n", encoding="utf-8"
    )
    policy = _policy(tmp_path, "version: 1\ncolumns:\n  email: hash\n  phone: hash\n")
    export(ws, src, policy, tmp_path / "o.csv")
    rows = read_csv(tmp_path / "o.csv")
    assert rows[0] == rows[1]
    assert rows[0]["email"] == ws.hasher.token("anagarcia@gmail.com")  # Gmail ignores dots: one mailbox
    assert rows[0]["phone"] == ws.hasher.token("+34600123456")


def test_policy_naming_a_missing_column_stops_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = _policy(tmp_path, "version: 1\ncolumns:\n  customer_id: hash\n  loyalty_card: drop\n")
    out = tmp_path / "o.csv"
    code, output = cli("export", _input(tmp_path), "--policy", policy, "--out", out, "-w", tmp_path / "w.duckdb")
    assert code == 2
    assert f"{policy}:4: column 'loyalty_card' is not in the file" in output
    assert not out.exists() and not Path(str(out) + ".manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.csv")] == []


def test_bad_policy_actions_are_reported_with_lines(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "version: 1\ncolumns:\n  a: scramble\n  b: {generalise: month}\n")
    with Workspace(":memory:") as ws, pytest.raises(ConfigError) as err:
        export(ws, _input(tmp_path), policy, tmp_path / "o.csv")
    text = str(err.value)
    assert f"{policy}:3:" in text and f"{policy}:4:" in text


def test_missing_key_stops_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    src = _input(tmp_path)
    code, output = cli(
        "export",
        src,
        "--policy",
        POLICY,
        "--out",
        tmp_path / "o.csv",
        "-w",
        tmp_path / "w.duckdb",
        "--key-file",
        tmp_path / "nope.key",
    )
    assert code == 2 and "does not exist" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_example_policies_on_the_example_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("policy-sales.yaml", "policy-support.yaml"):
        code, output = cli(
            "export",
            EXAMPLES / "clientes.csv",
            "--policy",
            EXAMPLES / name,
            "--out",
            tmp_path / f"{name}.csv",
            "-w",
            ":memory:",
            "--as-of",
            "2026-11-01",
        )
        assert code == 0, output
        assert "reminder: these columns still carry personal data" in output
    sales = read_csv(tmp_path / "policy-sales.yaml.csv")
    assert "national_id" not in sales[0] and "last_name" not in sales[0]
    manifest = json.loads((tmp_path / "policy-sales.yaml.csv.manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["key_fingerprint"]) == 16 and manifest["policy"]["name"] == "sales"
