"""DuckDB SQL -> Spark SQL: the covered DuckDB-only functions, the refused ones, the date patterns."""

from __future__ import annotations

import pytest

from crmtool.backend.dialect import COVERED, DUCKDB_ONLY, UnsupportedOnSpark, spark_datetime_pattern, to_spark
from crmtool.errors import ExitCode


def test_full_match_becomes_an_anchored_rlike() -> None:
    sql = to_spark("SELECT regexp_full_match(CAST(t.a AS VARCHAR), 'C[0-9]{7}') FROM t")
    assert sql == "SELECT CAST(t.a AS STRING) RLIKE '\\\\A(?:C[0-9]{7})\\\\z' FROM t"


def test_try_strptime_with_a_list_tries_each_format_in_order() -> None:
    sql = to_spark("SELECT try_strptime(x, ['%d/%m/%Y', '%Y-%m-%d']) FROM t")
    assert sql == ("SELECT COALESCE(TRY_TO_TIMESTAMP(x, 'd/M/yyyy'), TRY_TO_TIMESTAMP(x, 'yyyy-M-d')) FROM t")
    assert to_spark("SELECT try_strptime(x, '%Y-%m-%d')") == "SELECT TRY_TO_TIMESTAMP(x, 'yyyy-M-d')"


def test_strftime_patterns_quote_letters_and_refuse_unknown_codes() -> None:
    assert spark_datetime_pattern("%d.%m.%Y") == "d.M.yyyy"
    assert spark_datetime_pattern("%YT%H:%M") == "yyyy'T'H:m"
    with pytest.raises(UnsupportedOnSpark, match="'%j'"):
        spark_datetime_pattern("%Y-%j")


def test_accents_and_byte_length_have_spark_forms() -> None:
    assert "TRANSLATE(x, 'ÀÁ" in to_spark("SELECT strip_accents(x)")
    assert to_spark("SELECT strlen(x)") == "SELECT OCTET_LENGTH(x)"
    assert set(COVERED) == {"regexp_full_match", "try_strptime", "strip_accents", "strlen"}


@pytest.mark.parametrize("func", ["nfc_normalize", "hash", "crm_token", "list_sum"])
def test_duckdb_only_functions_are_refused_by_name(func: str) -> None:
    assert func in DUCKDB_ONLY
    with pytest.raises(UnsupportedOnSpark) as caught:
        to_spark(f"SELECT {func}(x) FROM t")
    assert f"{func}()" in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_each_statement_is_transpiled_once() -> None:
    to_spark.cache_clear()
    for _ in range(3):
        to_spark("SELECT trim(CAST(a AS VARCHAR)) FROM t")
    info = to_spark.cache_info()
    assert (info.misses, info.hits) == (1, 2)
