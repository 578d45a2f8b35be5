"""Keyed hashing (where the key comes from) and the profile of an export."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.errors import UsageError
from crmtool.keys import ENV_KEY, ENV_KEY_FILE, load_key

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clientes.csv"


def test_key_precedence_explicit_file_then_env_key_then_env_file_then_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = tmp_path / "explicit.key"
    explicit.write_text("e" * 32 + "\n", encoding="utf-8")
    env_file = tmp_path / "env.key"
    env_file.write_text("f" * 32, encoding="utf-8")
    default = tmp_path / "ws" / "crm.key"
    monkeypatch.setenv(ENV_KEY, "k" * 20)
    monkeypatch.setenv(ENV_KEY_FILE, str(env_file))
    assert load_key(explicit, default).key == b"e" * 32  # trailing newline stripped
    assert load_key(None, default).key == b"k" * 20
    monkeypatch.delenv(ENV_KEY)
    assert load_key(None, default).key == b"f" * 32
    monkeypatch.delenv(ENV_KEY_FILE)
    created = load_key(None, default)
    assert created.created and created.source == str(default)
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    again = load_key(None, default)
    assert not again.created and again.key == created.key
    assert again.fingerprint == created.fingerprint and len(again.fingerprint) == 16
    assert created.key.decode() not in again.fingerprint


def test_key_problems_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, "short")
    with pytest.raises(UsageError, match="shorter than 16"):
        load_key(None, tmp_path / "k")
    monkeypatch.delenv(ENV_KEY)
    with pytest.raises(UsageError, match="no key configured"):
        load_key(None, None)
    monkeypatch.setenv(ENV_KEY_FILE, str(tmp_path / "missing.key"))
    with pytest.raises(UsageError, match="does not exist"):
        load_key(None, tmp_path / "k")
    assert not (tmp_path / "k").exists()  # a configured but broken key never falls back to a new one


def test_tokens_are_keyed_and_stable() -> None:
    from crmtool.keys import KeyedHasher

    a, b = KeyedHasher(b"a" * 32, "a"), KeyedHasher(b"b" * 32, "b")
    assert a.token("x") == a.token("x") != b.token("x")
    assert len(a.token("x") or "") == 32
    assert a.token(None) is None


def test_profile_json_hides_personal_values_unless_asked() -> None:
    result = CliRunner().invoke(app, ["profile", str(EXAMPLE), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["rows"] == 301 and payload["parse_rejects"] == 2
    assert payload["detected"] == {"format": "csv", "encoding": "cp1252", "delimiter": ";"}
    columns = {c["name"]: c for c in payload["columns"]}
    assert list(columns)[:3] == ["customer_id", "first_name", "last_name"]
    assert columns["email"]["personal_data"] == "email" and columns["email"]["top_values"] is None
    assert columns["phone"]["personal_data"] == "phone"
    assert columns["email"]["type"] == "email"
    assert columns["country"]["personal_data"] is None
    assert columns["country"]["top_values"][0] == ["ES", 245]
    assert columns["customer_id"]["top_shapes"] == [["A9999999", 301]]
    assert columns["total_spent"]["type"] == "decimal"
    assert "@" not in json.dumps([c["top_values"] for c in payload["columns"]])
    shown = CliRunner().invoke(app, ["profile", str(EXAMPLE), "--format", "json", "--show-values"])
    emails = next(c for c in json.loads(shown.stdout)["columns"] if c["name"] == "email")
    assert emails["top_values"] and "@" in emails["top_values"][0][0]


def test_profile_text_on_a_non_tty_has_no_colour_codes() -> None:
    result = CliRunner().invoke(app, ["profile", str(EXAMPLE)])
    assert result.exit_code == 0
    assert "\x1b[" not in result.stdout + result.stderr
    assert "customer_id" in result.stdout
    assert "clientes.csv: csv, encoding cp1252, delimiter semicolon, 301 rows" in result.stderr


def test_profile_bad_input_is_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    result = CliRunner().invoke(app, ["profile", str(empty)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {empty}: file is empty")


def test_profile_negative_top_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["profile", str(EXAMPLE), "--top", "-1"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --top must be 0 or more")
