"""Every SQL fast path agrees with the library it stands in for, wherever it decides."""

from __future__ import annotations

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.emails.syntax import syntax_verdict
from crmtool.kinds.decimal import decimal_sql
from crmtool.kinds.email_sql import valid_email_fast_sql
from crmtool.kinds.es_id_sql import LETTERS, es_id_fast_sql
from crmtool.kinds.national_id import es_id_verdict
from crmtool.kinds.phone_sql import e164_fast_sql, invalid_fast_sql
from crmtool.normalise import parse_decimal, phone_e164

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _eval(expr_of_v: str, values: list[str]) -> list[str | None]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [r[0] for r in con.execute(f"SELECT {expr_of_v} FROM t ORDER BY i").fetchall()]


phones = st.builds(lambda prefix, digits, sep: prefix + sep.join(digits[i:i + 3] for i in range(0, len(digits), 3)),
                   st.sampled_from(["", "+34", "0034", "+34 ", "+33", "(", "34"]),
                   st.text("0123456789", min_size=6, max_size=11),
                   st.sampled_from(["", " ", "-", "."]))


@SETTINGS
@given(st.lists(phones | st.text(max_size=14), min_size=1, max_size=40))
def test_phone_fast_path_agrees_with_phonenumbers(values: list[str]) -> None:
    for value, fast in zip(values, _eval(e164_fast_sql("v", "ES"), values), strict=True):
        if fast is not None:
            assert fast == phone_e164(value, "ES"), value


@SETTINGS
@given(st.lists(phones | st.text("0123456789 -.()+", max_size=12) | st.text(max_size=14), min_size=1, max_size=40))
def test_phone_invalid_fast_path_only_rejects_what_phonenumbers_rejects(values: list[str]) -> None:
    for value, invalid in zip(values, _eval(invalid_fast_sql("v", "ES"), values), strict=True):
        if invalid:
            assert phone_e164(value, "ES") is None, value


def test_phone_invalid_fast_path_decides_short_numbers_only() -> None:
    values = ["11985", "1 234", "12345678", "123456789", "0034600", "+34600", "600 ABC", "34600123456"]
    assert _eval(invalid_fast_sql("v", "ES"), values) == [True, True, True, False, False, False, False, False]
    assert _eval(invalid_fast_sql("v", "FR"), ["123"]) == [False]


def test_phone_fast_path_decides_common_spanish_formats() -> None:
    values = ["600 12 34 56", "+34 600-123-456", "0034600123456", "(91) 240 65 80", "612345678"]
    assert _eval(e164_fast_sql("v", "ES"), values) == [phone_e164(v, "ES") for v in values]
    assert all(_eval(e164_fast_sql("v", "ES"), values))


def test_phone_fast_path_declines_regions_with_a_national_prefix() -> None:
    assert _eval(e164_fast_sql("v", "FR"), ["0612345678"]) == [None]


ids = st.builds(lambda body, letter, sep: body[:4] + sep + body[4:] + letter,
                st.text("0123456789", min_size=8, max_size=8) | st.builds(
                    lambda p, d: p + d, st.sampled_from("XYZ"), st.text("0123456789", min_size=7, max_size=7)),
                st.sampled_from([*LETTERS, "a", "z", "Ñ"]), st.sampled_from(["", " ", "-"]))


@SETTINGS
@given(st.lists(ids | st.text(max_size=12), min_size=1, max_size=40))
def test_dni_nie_fast_path_agrees_with_stdnum(values: list[str]) -> None:
    for value, fast in zip(values, _eval(es_id_fast_sql("v"), values), strict=True):
        if fast is None:
            continue
        expected = es_id_verdict(value, "nif")[0]
        assert (fast or None) == expected, value


atext = st.text("abcXYZ019.!#$%&'*+/=?^_`{|}~-é\"", min_size=1, max_size=12)
domains = st.builds(lambda a, b: a + b, st.text("abcXY-01.", min_size=1, max_size=12),
                    st.sampled_from([".com", ".es", ".c", ".123", "", ".COM", ".test", ".xn--p1ai", ".local"]))


@SETTINGS
@given(st.lists(st.builds(lambda a, b: f"{a}@{b}", atext, domains) | st.text(max_size=20), min_size=1, max_size=40))
def test_email_fast_path_is_a_subset_of_email_validator(values: list[str]) -> None:
    for value, fast in zip(values, _eval(valid_email_fast_sql("v"), values), strict=True):
        if fast is not None:
            ok, normalized, _ = syntax_verdict(value)
            assert ok and normalized == fast, value


@SETTINGS
@given(st.lists(st.text("0123456789.,- +€\u00a0", max_size=12), min_size=1, max_size=40), st.booleans())
def test_decimal_sql_equals_python(values: list[str], comma: bool) -> None:
    for value, fast in zip(values, _eval(decimal_sql("v", comma), values), strict=True):
        if fast is not None:
            assert fast == parse_decimal(value, comma), value
