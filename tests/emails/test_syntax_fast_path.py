"""The SQL fast path accepts only what email-validator accepts, with the identical normalised form."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.emails.syntax import fast_normalized_sql, fast_path_sql, syntax_verdict

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
LOCAL = st.lists(st.text(ATEXT + "é ", min_size=0, max_size=12), min_size=1, max_size=4).map(".".join)
LABEL = st.text("abcdeXYZ0189-", min_size=0, max_size=12)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
TLD = st.sampled_from(["com", "ES", "c0m", "1", "co-uk", "test", "local", "a", "arpa", "xn--p1ai", "cat"])
ADDRESS = st.builds(
    lambda loc, sep, dom, tld: f"{loc}{sep}{dom}.{tld}",
    LOCAL,
    st.sampled_from(["@", "@@", ".@", " @"]),
    DOMAIN,
    TLD,
)


CON = duckdb.connect()


def fast(values: list[str]) -> list[tuple[bool, str | None]]:
    rows = CON.execute(f"SELECT {fast_path_sql('value')}, {fast_normalized_sql('value')} "
                       "FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS value)", [values]).fetchall()
    return [(bool(ok), norm) for ok, norm in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(ADDRESS, min_size=1, max_size=40))
def test_fast_path_agrees_with_email_validator(values: list[str]) -> None:
    for value, (ok, norm) in zip(values, fast(values), strict=True):
        if ok:
            assert syntax_verdict(value) == (True, norm, None), value


@pytest.mark.parametrize(
    "value", ["Ana.Lopez@Gmail.COM", "a+tag@sub.example.es", "x@a-b.co", "o'brien@example.ie"]
)
def test_fast_path_takes_the_common_cases(value: str) -> None:
    ((ok, norm),) = fast([value])
    assert ok and syntax_verdict(value) == (True, norm, None)


@pytest.mark.parametrize(
    "value",
    [
        "a@b",
        "a..b@c.com",
        "a@localhost.localhost",
        "a@x.test",
        "a@ab--c.com",
        "a@1.2.3.4",
        "a" * 65 + "@x.com",
        "ñ@x.com",
        "a@xn--p1ai.xn--p1ai",
        ".a@b.com",
    ],
)
def test_fast_path_leaves_the_rest_to_email_validator(value: str) -> None:
    ((ok, _),) = fast([value])
    assert not ok
