"""Identifier normalisation in SQL equals the contract's Python normalisers; phone keys never miss."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.keys import KeyedHasher
from crmtool.normalise import normalise_email, phone_e164
from crmtool.privacy.identity import drop_maps, email_norm, norm_phone, phone_key

_CON = duckdb.connect()

email_like = st.one_of(
    st.text(max_size=25),
    st.from_regex(
        r"[ <]{0,2}(mailto:|MAILTO:)?[A-Za-zÁÉñ0-9._+\-]{1,8}@[A-Za-z0-9\-]{1,8}\.(es|COM|org)[ >]{0,2}", fullmatch=True
    ),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(email_like, min_size=1, max_size=20))
def test_sql_email_normalisation_equals_normalise_email(values: list[str]) -> None:
    values = [v.replace("\x00", "") for v in values]
    con = _CON
    con.execute("CREATE OR REPLACE TABLE t (i INTEGER, e VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    expr, join = email_norm(con, "t", "e", "t")
    got = [r[0] for r in con.execute(f"SELECT nullif({expr}, '') FROM t {join} ORDER BY t.i").fetchall()]
    drop_maps(con)
    assert got == [normalise_email(v) or None for v in values]


@settings(max_examples=150, deadline=None)
@given(
    national=st.from_regex(r"[6789][0-9]{8}", fullmatch=True),
    style=st.sampled_from(["{n}", "+34 {n}", "0034{n}", "{a} {b} {c} {d}", "+34-{a}-{b}{c}{d}", "({a}) {b} {c} {d}"]),
)
def test_phone_key_of_any_spelling_equals_the_key_of_the_normalised_phone(national: str, style: str) -> None:
    raw = style.format(n=national, a=national[:3], b=national[3:5], c=national[5:7], d=national[7:])
    normalised = norm_phone(raw)
    assert normalised is not None
    assert phone_key(raw) == phone_key(normalised)
    if phone_e164(raw):
        assert normalised == phone_e164(national)


def test_sql_token_macro_equals_python_token_for_normalised_values() -> None:
    hasher = KeyedHasher(b"k" * 40, "test")
    con = duckdb.connect()
    hasher.register_sql(con)
    for value in ["ana@x.es", "+34600123456", "C0000001", "josé@ñ.es"]:
        assert con.execute("SELECT crm_token(?)", [value]).fetchall()[0][0] == hasher.token(value)
