"""Canonical identifiers: SQL fast paths equal the Python twins; provider rules only where documented."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.es import dni, nie, nif

from crmtool.identity.canonical import (
    SQL_TRIM_CHARS,
    canonical_email,
    canonical_id,
    canonical_nif,
    canonical_phone,
    id_sql,
    nif_is_valid,
    phone_key,
    plain_email,
    providers,
)
from crmtool.identity.keys import values_sql
from crmtool.keys import KeyedHasher
from crmtool.normalise import phone_e164

_CON = duckdb.connect()

email_like = st.one_of(
    st.text(max_size=25),
    st.from_regex(
        r"[ <]{0,2}(mailto:|MAILTO:)?[A-Za-zÁÉñ0-9._+\-]{1,8}@(gmail\.com|GoogleMail\.com|hotmail\.com|"
        r"[A-Za-z0-9\-]{1,8}\.(es|COM|org))[ >]{0,2}",
        fullmatch=True,
    ),
)


def _sql_values(kind: str, values: list[str], plain: bool = False) -> list[str | None]:
    con = _CON
    con.execute("CREATE OR REPLACE TABLE t (rid INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    sql, made = values_sql(con, kind, "SELECT rid, v FROM t", plain=plain)
    got = dict(con.execute(f"SELECT rid, value FROM ({sql})").fetchall())
    for m in made:
        con.execute(f"DROP TABLE {m}")
    return [got.get(i) for i in range(len(values))]


@settings(max_examples=120, deadline=None)
@given(st.lists(email_like, min_size=1, max_size=20))
def test_sql_canonical_email_equals_python(values: list[str]) -> None:
    values = [v.replace("\x00", "") for v in values]
    assert _sql_values("email", values) == [canonical_email(v) for v in values]


@settings(max_examples=80, deadline=None)
@given(st.lists(email_like, min_size=1, max_size=10))
def test_canonical_email_is_idempotent(values: list[str]) -> None:
    for v in values:
        c = canonical_email(v)
        assert c is None or canonical_email(c) == c


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("J.Doe+news@GoogleMail.com", "jdoe@gmail.com"),
        (" j.d.o.e@gmail.com ", "JDoe@Gmail.com"),
        ("ana+crm@hotmail.com", "ana@hotmail.com"),
        ("mailto:<Ana@Example.es>", "ana@example.es"),
    ],
)
def test_variants_of_one_mailbox_are_one_canonical_address(a: str, b: str) -> None:
    assert canonical_email(a) == canonical_email(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("j.doe@hotmail.com", "jdoe@hotmail.com"),  # Outlook keeps dots
        ("ana+crm@example.es", "ana@example.es"),  # unknown provider: a + may be part of the name
        ("j.doe@example.com", "jdoe@example.com"),
    ],
)
def test_provider_rules_apply_only_where_the_provider_does_so(a: str, b: str) -> None:
    assert canonical_email(a) != canonical_email(b)


def test_provider_table_documents_each_rule() -> None:
    table = providers()
    assert table["googlemail.com"].canonical_domain == "gmail.com"
    assert table["gmail.com"].ignore_dots and table["gmail.com"].plus_tags
    assert not table["outlook.com"].ignore_dots
    assert "yahoo.com" not in table


def test_plain_form_keeps_what_the_provider_rules_drop() -> None:
    assert plain_email(" J.Doe+x@GMAIL.com") == "j.doe+x@gmail.com"
    assert _sql_values("email", ["J.Doe+x@GMAIL.com"], plain=True)[0] in ("jdoe@gmail.com", "j.doe+x@gmail.com")


def _dni(n: int) -> str:
    return f"{n:08d}" + dni.calc_check_digit(f"{n:08d}")


def _nie(prefix: str, n: int) -> str:
    return f"{prefix}{n:07d}" + dni.calc_check_digit(f"{'XYZ'.index(prefix)}{n:07d}")


def _spell(number: str, sep: str, lower: bool) -> str:
    text = number[:-1] + sep + number[-1]
    return text.lower() if lower else text


nif_spelling = st.builds(
    lambda number, sep, lower, es: es + _spell(number, sep, lower),
    st.one_of(
        st.integers(0, 99_999_999).map(_dni),
        st.builds(_nie, st.sampled_from("XYZ"), st.integers(0, 9_999_999)),
    ),
    st.sampled_from(["", "-", " ", ".", " - "]),
    st.booleans(),
    st.sampled_from(["", "ES", "es "]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(nif_spelling, min_size=1, max_size=10))
def test_every_spelling_of_a_nif_is_one_canonical_value_in_sql_and_python(values: list[str]) -> None:
    got = _sql_values("nif", values)
    assert got == [canonical_nif(v) for v in values]
    for v in values:
        c = canonical_nif(v)
        assert c is not None and nif_is_valid(c), v
        assert c == nif.compact(c) or c == nie.compact(c)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=14), min_size=1, max_size=10))
def test_sql_canonical_nif_equals_python_on_any_text(values: list[str]) -> None:
    values = [v.replace("\x00", "") for v in values]
    assert _sql_values("nif", values) == [canonical_nif(v) for v in values]


def test_nif_examples() -> None:
    assert canonical_nif("16783115-S") == canonical_nif("16783115s") == canonical_nif("ES 16783115S") == "16783115S"
    assert canonical_nif("X-1234567-L") == "X1234567L"


@settings(max_examples=150, deadline=None)
@given(
    national=st.from_regex(r"[6789][0-9]{8}", fullmatch=True),
    style=st.sampled_from(["{n}", "+34 {n}", "0034{n}", "{a} {b} {c} {d}", "+34-{a}-{b}{c}{d}", "({a}) {b} {c} {d}"]),
)
def test_every_phone_spelling_is_one_canonical_value(national: str, style: str) -> None:
    raw = style.format(n=national, a=national[:3], b=national[3:5], c=national[5:7], d=national[7:])
    canon = canonical_phone(raw)
    assert canon is not None
    assert phone_key(raw) == phone_key(canon)
    if phone_e164(national):
        assert canon == phone_e164(national)
    assert _sql_values("phone", [raw, national]) == [canonical_phone(raw), canonical_phone(national)]


def test_sql_token_macro_equals_python_token_for_canonical_values() -> None:
    hasher = KeyedHasher(b"k" * 40, "test")
    con = duckdb.connect()
    hasher.register_sql(con)
    for value in ["ana@x.es", "+34600123456", "C0000001", "josé@ñ.es", "16783115S"]:
        assert con.execute("SELECT crm_token(?)", [value]).fetchall()[0][0] == hasher.token(value)


id_like = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[ \t\u00a0\u2003]{0,2}[A-Za-z0-9ñ\- ]{0,8}[ \t\n\u00a0\u3000]{0,2}", fullmatch=True),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), id_like), min_size=1, max_size=12))
def test_sql_id_is_the_trimmed_text_for_any_text(values: list[str | None]) -> None:
    """id_sql keeps the text as it is only where trim would not change it: equal to nullif(trim(v), '')
    on any text (spaces, tabs, Unicode spaces, empty, NULL), also as a row filter ``IN``."""
    con = _CON
    values = [v.replace("\x00", "") if v else v for v in values]
    con.execute("CREATE OR REPLACE TABLE ids (rid INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO ids VALUES (?, ?)", list(enumerate(values)))
    got = con.execute(f"SELECT rid, {id_sql('v')}, nullif(trim(v), '') FROM ids ORDER BY rid").fetchall()
    assert [(r, a) for r, a, _b in got] == [(r, b) for r, _a, b in got]
    asked = "SELECT nullif(trim(v), '') FROM ids WHERE rid % 2 = 0"
    assert con.execute(f"SELECT rid FROM ids WHERE {id_sql('v')} IN ({asked}) ORDER BY rid").fetchall() == \
        con.execute(f"SELECT rid FROM ids WHERE nullif(trim(v), '') IN ({asked}) ORDER BY rid").fetchall()


#: every character DuckDB's trim or Python's strip might treat as space, and some that are not
_EDGE_CHARS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\u200b\ufeff" + SQL_TRIM_CHARS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), id_like, st.text(alphabet=_EDGE_CHARS + "C7ñ", max_size=8),
                          st.text(max_size=10)), min_size=1, max_size=12))
def test_the_python_id_is_the_sql_id_for_any_text(values: list[str | None]) -> None:
    """canonical_id (the form of an id a user types) equals id_sql (the form of an id in a table) on
    any text: one canonical form, so ``subject export`` and ``suppress`` find the rows SQL matches."""
    values = [v.replace("\x00", "") if v else v for v in values]
    _CON.execute("CREATE OR REPLACE TABLE ids (rid INTEGER, v VARCHAR)")
    _CON.executemany("INSERT INTO ids VALUES (?, ?)", list(enumerate(values)))
    got = [v for _r, v in _CON.execute(f"SELECT rid, {id_sql('v')} FROM ids ORDER BY rid").fetchall()]
    assert got == [canonical_id(v) for v in values]


def test_sql_trim_chars_are_what_duckdb_trims() -> None:
    """Every character of the Basic Multilingual Plane at the end of an id: Python removes it exactly
    when DuckDB's trim does (a DuckDB upgrade that changes trim fails here)."""
    chars = [chr(i) for i in range(1, 0x10000) if not 0xD800 <= i < 0xE000]
    _CON.execute("CREATE OR REPLACE TABLE edge (c VARCHAR)")
    _CON.executemany("INSERT INTO edge VALUES (?)", [[c] for c in chars])
    trimmed = {r[0] for r in _CON.execute("SELECT c FROM edge WHERE trim('a' || c || c) = 'a'").fetchall()}
    assert trimmed == set(SQL_TRIM_CHARS)
    assert {c for c in chars if canonical_id("a" + c + c) == "a"} == trimmed
