"""Plain regex patterns and strptime formats (crmtool.kinds.compiles) are ones DuckDB accepts:
whatever is called plain compiles in DuckDB; anything unsure is left to DuckDB, whose words the
rule loader reports as before."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.kinds.compiles import re2_compiles, strptime_reads

_CON = duckdb.connect()


def _duckdb_compiles(pattern: str) -> bool:
    try:
        _CON.execute("SELECT regexp_full_match('x', ?)", [pattern]).fetchall()
    except duckdb.Error:
        return False
    return True


def _duckdb_reads(fmt: str) -> bool:
    try:
        _CON.execute("SELECT try_strptime('x', [?])", [fmt]).fetchall()
    except duckdb.Error:
        return False
    return True


PLAIN_PATTERNS = ["C[0-9]{7}", "[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", "^[0-9]{5}$", "(ES|PT)-[0-9]+", r"\d{3}\.\d{2}",
                  "[^@ ]+@[^@ ]+", "a|b|", "(?:ab)+c*?", "x{2,}", "[a-zA-Z_-]+", r"[\d\-]+", "()", ".*", "a??",
                  r"\(\)\[\]\{\}\|\\\^\$\/\+\*\?", "[-a]", "[a-]", "%&'#=<>~!:/, ",
                  r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[+*?(){}|$.]", "[^+]"]
NOT_PLAIN = ["(", ")", "[", "[]", "[^]", "[z-a]", "*a", "a**", "a*+", "(?=a)", "(?P<x>a)", "(?i)a", r"\1", r"\Z",
             "a{1001}", "a{5,2}", "(ab){2}", "a{,3}", "[[:alpha:]]", "é", "a\nb", "^*", "|+", "a{101}", "[a^]",
             "x" * 301, r"\p{L}", "{", "}", "a{2}{3}", "[+-9]"]


@pytest.mark.parametrize("pattern", PLAIN_PATTERNS)
def test_plain_patterns_compile_in_duckdb(pattern: str) -> None:
    assert re2_compiles(pattern) is True
    assert _duckdb_compiles(pattern)


@pytest.mark.parametrize("pattern", NOT_PLAIN)
def test_other_patterns_are_left_to_duckdb(pattern: str) -> None:
    assert re2_compiles(pattern) is None


_PIECES = ["a", "Z", "0", " ", "-", ".", "\\d", "\\.", "\\", "[", "]", "^", "$", "(", ")", "(?:", "(?=", "|", "*",
           "+", "?", "{2}", "{1,3}", "{3,1}", "{,2}", "{200}", "a-z", "z-a", "[a-z]", "[^0-9]", "[]", "é", "{", "}",
           ","]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=10))
def test_whatever_is_called_plain_compiles_in_duckdb(pieces: list[str]) -> None:
    pattern = "".join(pieces)
    if re2_compiles(pattern):
        assert _duckdb_compiles(pattern), pattern


PLAIN_FORMATS = ["%d/%m/%Y", "%Y-%m-%d", "%d.%m.%y", "%Y-%m-%d %H:%M:%S", "%d %b %Y", "%A %d %B %Y", "%I:%M %p",
                 "%j/%Y", "%Y%m%d", "%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %Z", "100%%", "%a, %d"]
NOT_PLAIN_FORMATS = ["", "%", "%Q", "%-d/%m/%Y", "%d/%m/%Y\u00e9", "%e", "%Y\t%m"]


@pytest.mark.parametrize("fmt", PLAIN_FORMATS)
def test_plain_formats_are_read_by_duckdb(fmt: str) -> None:
    assert strptime_reads(fmt) is True
    assert _duckdb_reads(fmt)


@pytest.mark.parametrize("fmt", NOT_PLAIN_FORMATS)
def test_other_formats_are_left_to_duckdb(fmt: str) -> None:
    assert strptime_reads(fmt) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["%" + c for c in "aAbBdHIjmMpSyYfzZ%QeG-"] + ["/", "-", " ", ":", "T", "x", "%"]),
                min_size=1, max_size=8))
def test_whatever_format_is_called_plain_duckdb_reads(pieces: list[str]) -> None:
    fmt = "".join(pieces)
    if strptime_reads(fmt):
        assert _duckdb_reads(fmt), fmt


def test_a_rule_file_with_plain_patterns_loads_without_duckdbs_default_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the default connection is a second database instance (~25 ms of CPU): plain patterns and
    # formats need none, a pattern that does not compile is still reported in DuckDB's words
    from crmtool.errors import ConfigError
    from crmtool.rulefile import load_rules

    calls: list[str] = []
    real = duckdb.execute
    monkeypatch.setattr(duckdb, "execute", lambda sql, *a, **k: calls.append(sql) or real(sql, *a, **k))
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: id, kind: regex, column: id, pattern: 'C[0-9]{7}'}\n"
                     "  - {name: d, kind: date, column: d, formats: ['%d/%m/%Y', '%Y-%m-%d']}\n", encoding="utf-8")
    load_rules(rules)
    assert calls == []
    rules.write_text("rules:\n  - {name: id, kind: regex, column: id, pattern: 'C[0-9'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pattern does not compile: .*missing \]"):
        load_rules(rules)
    assert len(calls) == 1
