"""Consent: the value table value by value (SQL and Python agree), the rule-file section, its errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.errors import ConfigError
from crmtool.privacy.consent import (
    check_consent_columns,
    normalise_consent,
    normalise_consent_sql,
    parse_consent,
)
from crmtool.rulefile import load_rules

TABLE = [
    # granted
    ("yes", "granted"),
    ("YES", "granted"),
    (" Yes ", "granted"),
    ("y", "granted"),
    ("Sí", "granted"),
    ("SI", "granted"),
    ("si", "granted"),
    ("S", "granted"),
    ("s", "granted"),
    ("true", "granted"),
    ("TRUE", "granted"),
    ("1", "granted"),
    ("1.0", "granted"),
    ("opt-in", "granted"),
    ("Opt In", "granted"),
    ("opt_in", "granted"),
    ("optin", "granted"),
    ("subscribed", "granted"),
    ("Subscribed", "granted"),
    ("granted", "granted"),
    ("acepta", "granted"),
    ("\tsí\n", "granted"),
    ("oui", "granted"),
    # denied
    ("no", "denied"),
    ("No", "denied"),
    ("NO ", "denied"),
    ("n", "denied"),
    ("N", "denied"),
    ("false", "denied"),
    ("0", "denied"),
    ("0.0", "denied"),
    ("opt-out", "denied"),
    ("Opt Out", "denied"),
    ("optout", "denied"),
    ("unsubscribed", "denied"),
    ("baja", "denied"),
    ("dado de baja", "denied"),
    ("revoked", "denied"),
    # unknown: blanks and the ambiguous ones, decided on purpose
    ("", "unknown"),
    ("   ", "unknown"),
    (None, "unknown"),
    ("x", "unknown"),
    ("X", "unknown"),
    ("*", "unknown"),
    ("n/a", "unknown"),
    ("N/A", "unknown"),
    ("na", "unknown"),
    ("-", "unknown"),
    ("?", "unknown"),
    ("2", "unknown"),
    ("-1", "unknown"),
    ("pending", "unknown"),
    ("pendiente", "unknown"),
    ("soft opt-in", "unknown"),
    ("legitimate interest", "unknown"),
    ("double opt-in pending", "unknown"),
    ("yes/no", "unknown"),
    ("sí, pero no", "unknown"),
    ("nope", "unknown"),
    ("yess", "unknown"),
    ("opt- in", "unknown"),
]


_CON = duckdb.connect()


def _sql_states(values: list[str | None], **extra: tuple[str, ...]) -> list[str]:
    con = _CON
    con.execute("CREATE OR REPLACE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [r[0] for r in con.execute(f"SELECT {normalise_consent_sql('v', **extra)} FROM t ORDER BY i").fetchall()]


@pytest.mark.parametrize(("value", "expected"), TABLE)
def test_value_table_in_python(value: str | None, expected: str) -> None:
    assert normalise_consent(value) == expected


def test_value_table_in_sql_matches_python() -> None:
    values = [v for v, _e in TABLE]
    assert _sql_states(values) == [e for _v, e in TABLE]


def test_unknown_is_never_granted_and_extra_spellings_apply() -> None:
    assert _sql_states(["vale", "ni hablar", "x"], granted=("Vale",), denied=("ni hablar",)) == [
        "granted",
        "denied",
        "unknown",
    ]
    assert normalise_consent("vale") == "unknown"


def test_boolean_and_integer_columns() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (true, 1), (false, 0), (NULL, NULL)) v(b, n)")
    got = con.execute(f"SELECT {normalise_consent_sql('b')}, {normalise_consent_sql('n')} FROM t").fetchall()
    assert got == [("granted", "granted"), ("denied", "denied"), ("unknown", "unknown")]


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(max_size=12), st.sampled_from([v for v, _e in TABLE if v is not None])),
        min_size=1,
        max_size=30,
    )
)
def test_sql_and_python_agree_on_any_text(values: list[str | None]) -> None:
    values = [v.replace("\x00", "") if v is not None else None for v in values]
    assert _sql_states(values) == [normalise_consent(v) for v in values]


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "40-privacy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_section_parses_with_locations_and_checks_columns(tmp_path: Path) -> None:
    path = _rules(
        tmp_path,
        "version: 1\nconsent:\n  email:\n    column: email_consent\n    granted: [vale]\n"
        "  sms:\n    column: sms_ok\n    date_column: sms_date\n",
    )
    consent = parse_consent(load_rules(path))
    assert sorted(consent) == ["email", "sms"]
    assert consent["email"].granted == ("vale",)
    assert consent["sms"].loc.line == 7  # the first line of the channel block
    with pytest.raises(ConfigError) as err:
        check_consent_columns(consent, ["email_consent", "sms_ok"])
    assert f"{path}:7: consent sms: column 'sms_date' is not in the data" in str(err.value)


def test_section_schema_errors_carry_file_and_line(tmp_path: Path) -> None:
    path = _rules(tmp_path, "version: 1\nconsent:\n  email:\n    colum: email_consent\n  fax:\n    column: f\n")
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    text = str(err.value)
    assert f"{path}:4: consent/email: Additional properties are not allowed ('colum' was unexpected)" in text
    assert f"{path}:4: consent/email: 'column' is required" in text
    assert f"{path}:5: consent: Additional properties are not allowed ('fax' was unexpected)" in text  # the key's line


def test_example_rules_declare_consent_on_the_example_column() -> None:
    root = Path(__file__).resolve().parents[2]
    consent = parse_consent(load_rules(root / "rules"))
    assert consent["email"].column == "email_consent"
