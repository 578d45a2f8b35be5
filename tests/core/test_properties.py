"""Property tests: every normaliser is idempotent and total; SQL twins equal their Python originals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool import normalise
from crmtool.errors import Location
from crmtool.keys import KeyedHasher
from crmtool.kinds import KINDS
from crmtool.kinds.base import PlanContext, RuleSpec, Threshold

# arbitrary text, plus text built from the characters that make normalisers work hard
TRICKY = " \t\n\r\x0b\x0c\x1c\x85\xa0\u2007\u3000<>mailtoMAILTO:@.,;'’-AaZzßẞİıǅÑñéÉ\u0301Ã±€0123456789+()"
TEXT = st.text() | st.text(alphabet=TRICKY, max_size=40)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PY_NORMALISERS: dict[str, Callable[[str], Any]] = {
    "collapse_spaces": normalise.collapse_spaces,
    "nfc": normalise.nfc,
    "strip_accents": normalise.strip_accents,
    "fix_mojibake": normalise.fix_mojibake,
    "title_name": normalise.title_name,
    "normalise_email": normalise.normalise_email,
    "phone_e164": normalise.phone_e164,
    "phone_e164_us": lambda v: normalise.phone_e164(v, "US"),
    "parse_decimal_comma": normalise.parse_decimal,
    "parse_decimal_point": lambda v: normalise.parse_decimal(v, False),
}


@pytest.mark.parametrize("name", sorted(PY_NORMALISERS))
def test_python_normalisers_are_idempotent_and_total(name: str) -> None:
    func = PY_NORMALISERS[name]

    @FAST
    @given(TEXT)
    def check(value: str) -> None:
        once = func(value)  # never raises
        assert once is None or isinstance(once, str)
        if once is not None:
            assert func(once) == once

    check()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("mailto:mailto:Ana@X.es", "ana@x.es"), ("mailto: <ana@x.es>", "ana@x.es"), ("ß", "ß"), ("AİA", "Ai̇a")],
)
def test_regressions_found_by_the_properties(value: str, expected: str) -> None:
    func = normalise.title_name if "@" not in value else normalise.normalise_email
    assert func(value) == expected
    assert func(expected) == expected


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _spec(kind: str, **options: Any) -> RuleSpec:
    return RuleSpec(kind, kind, ("v",), "warning", "fix", Threshold(), options, Location("test"))


def _apply(con: duckdb.DuckDBPyConnection, spec: RuleSpec, values: list[str | None]) -> list[str | None]:
    """Run the kind's fix over ``values`` in DuckDB, as the engine does, in the given order."""
    import pyarrow as pa

    con.complete()
    con.register("__vals", pa.table({"i": pa.array(range(len(values)), pa.int64()),
                                     "v": pa.array(values, pa.string())}))
    con.execute("CREATE OR REPLACE TABLE vals AS SELECT * FROM __vals")
    con.unregister("__vals")
    plan = KINDS[spec.kind].fix(PlanContext(con, "vals"), spec, "v")
    assert plan is not None
    query = f"SELECT t.i, CAST({plan.expr} AS VARCHAR) FROM vals t {plan.join or ''} ORDER BY t.i"
    rows = con.execute(query).fetchall()
    return [r[1] for r in rows]


SQL_NORMALISERS = {
    "trim": _spec("trim"),
    "email_normalise": _spec("email_normalise"),
    "case_lower": _spec("case", to="lower"),
    "case_upper": _spec("case", to="upper"),
    "case_title": _spec("case", to="title"),
    "unicode_nfc": _spec("unicode_nfc"),
    "mojibake": _spec("mojibake"),
}


@pytest.mark.parametrize("name", sorted(SQL_NORMALISERS))
def test_sql_normalisers_are_idempotent_and_total(con: duckdb.DuckDBPyConnection, name: str) -> None:
    spec = SQL_NORMALISERS[name]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(TEXT, min_size=1, max_size=30))
    def check(values: list[str]) -> None:
        once = _apply(con, spec, [*values, None])
        assert once[-1] is None  # NULL stays NULL
        twice = _apply(con, spec, once)
        assert twice == once

    check()


def test_sql_email_normalise_equals_python(con: duckdb.DuckDBPyConnection) -> None:
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(TEXT, min_size=1, max_size=30))
    def check(values: list[str]) -> None:
        assert _apply(con, SQL_NORMALISERS["email_normalise"], values) == [
            normalise.normalise_email(v) for v in values]

    check()


def test_sql_trim_equals_python_collapse_spaces(con: duckdb.DuckDBPyConnection) -> None:
    values = ["  a \t b\u00a0 c  ", "x", "\u3000y\u3000", "a\r\nb", "\u202fz", "a\x1cb\x85c\u2003d\u2029"]
    assert _apply(con, SQL_NORMALISERS["trim"], values) == [normalise.collapse_spaces(v) for v in values]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(TEXT, min_size=1, max_size=30))
    def check(texts: list[str]) -> None:
        assert _apply(con, SQL_NORMALISERS["trim"], texts) == [normalise.collapse_spaces(v) for v in texts]

    check()


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=16, max_size=200), values=st.lists(st.text(), min_size=1, max_size=20))
def test_register_sql_gives_exactly_the_python_token(key: bytes, values: list[str]) -> None:
    hasher = KeyedHasher(key, "test")
    with duckdb.connect() as connection:
        hasher.register_sql(connection)
        connection.execute("CREATE TABLE v (i INTEGER, x VARCHAR)")
        connection.executemany("INSERT INTO v VALUES (?, ?)", list(enumerate(values)))
        got = [r[0] for r in connection.execute("SELECT crm_token(x) FROM v ORDER BY i").fetchall()]
        assert got == [hasher.token(v) for v in values]
        assert connection.execute("SELECT crm_token(NULL)").fetchall() == [(None,)]
