"""Every rule kind on tiny tables built in the test: fixes, checks, where, thresholds, severities, actions.

The ``run`` fixture (conftest) takes ``{column: values}`` and a rule-file snippet and returns the
engine result with helpers: ``column`` (values after fixes), ``reasons``, ``failing``,
``rejected`` and ``outcome``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

Run = Callable[..., Any]


# --- normalisers ------------------------------------------------------------------------------

def test_trim_collapses_spaces_tabs_nbsp_and_newlines(run: Run) -> None:
    r = run({"s": ["  a \t b\u00a0 c  ", "x", None, "\u3000y\u3000", "a\nb", ""]},
            "rules: [{name: t, kind: trim, column: s}]")
    assert r.column("s") == ["a b c", "x", None, "y", "a b", ""]
    o = r.outcome("t")
    assert (o.fixed, o.failed, o.status, o.spec.severity, o.spec.action) == (3, 0, "pass", "warning", "fix")


def test_trim_with_action_flag_reports_instead_of_fixing(run: Run) -> None:
    r = run({"s": [" a", "b", "c  c"]}, "rules: [{name: t, kind: trim, column: s, action: flag}]")
    assert r.column("s") == [" a", "b", "c  c"]
    assert r.reasons("t") == [(1, "value not normalised"), (3, "value not normalised")]
    assert r.outcome("t").status == "warn"  # default severity warning


@pytest.mark.parametrize(("to", "expected"), [
    ("lower", ["josé maría de la fuente", "o'neill", None]),
    ("upper", ["JOSÉ MARÍA DE LA FUENTE", "O'NEILL", None]),
    ("title", ["José María de la Fuente", "O'Neill", None]),
])
def test_case(run: Run, to: str, expected: list[str | None]) -> None:
    r = run({"n": ["JOSÉ MARÍA DE LA FUENTE", "o'neill", None]},
            f"rules: [{{name: c, kind: case, column: n, to: {to}}}]")
    assert r.column("n") == expected


def test_title_case_keeps_spanish_particles_lower_except_first_word(run: Run) -> None:
    values = ["JOSÉ MARÍA DE LA FUENTE-LÓPEZ", "maría del carmen y lópez", "DE LA CRUZ", "van der berg",
              "  ana   luz ", "d’angelo DE LOS RÍOS", ""]
    r = run({"n": values}, "rules: [{name: c, kind: case, column: n, to: title}]")
    assert r.column("n") == ["José María de la Fuente-López", "María del Carmen y López", "De la Cruz",
                             "Van der Berg", "Ana Luz", "D’Angelo de los Ríos", ""]


def test_unicode_nfc(run: Run) -> None:
    r = run({"s": ["Jose\u0301", "José", None]}, "rules: [{name: u, kind: unicode_nfc, column: s}]")
    assert r.column("s") == ["José", "José", None]
    assert r.outcome("u").fixed == 1


def test_mojibake_is_repaired_and_clean_text_untouched(run: Run) -> None:
    r = run({"n": ["MuÃ±oz", "JosÃ©", "Muñoz", "plain", "", None, "Ã\x81lvaro", "PeÃ±a NÃºÃ±ez"]},
            "rules: [{name: m, kind: mojibake, column: n}]")
    assert r.column("n") == ["Muñoz", "José", "Muñoz", "plain", "", None, "Álvaro", "Peña Núñez"]
    assert r.outcome("m").fixed == 4


def test_email_normalise(run: Run) -> None:
    r = run({"e": [" <MAILTO:Ana@Example.COM> ", "a b@x.com", "ok@x.es", None, "  ", "Ñu@X.ES"]},
            "rules: [{name: e, kind: email_normalise, column: e}]")
    assert r.column("e") == ["ana@example.com", "ab@x.com", "ok@x.es", None, "", "ñu@x.es"]


def test_decimal_comma_is_fixed_and_non_numbers_flagged(run: Run) -> None:
    r = run({"a": ["1.234,56", "1234,5", "12", "-3,5", "abc", "", None, "1,234.56", "€ 5,00", "1 234,56"]},
            "rules: [{name: d, kind: decimal, column: a}]")
    assert r.column("a") == ["1234.56", "1234.5", "12", "-3.5", "abc", "", None, "1234.56", "5.00", "1234.56"]
    assert r.reasons("d") == [(5, "not a number")]
    assert r.outcome("d").status == "fail"  # decimal defaults to severity error


def test_decimal_point_mode(run: Run) -> None:
    r = run({"a": ["1,234.56", "1234.5", "1.234,56"]},
            "rules: [{name: d, kind: decimal, column: a, decimal_comma: false}]")
    assert r.column("a") == ["1234.56", "1234.5", "1.234,56"]
    assert r.failing("d") == [3]


# --- date -------------------------------------------------------------------------------------

DATE_RULE = """
rules:
  - name: d
    kind: date
    column: d
    formats: ['%d/%m/%Y']
    excel_serial: true
    not_future: true
    min: '1900-01-01'
    action: {action}
"""


def test_date_fix_writes_iso_and_flags_impossible_future_and_too_old(run: Run) -> None:
    future = (date.today() + timedelta(days=400)).strftime("%d/%m/%Y")
    values = ["31/02/2020", "31/12/1990", "33238", future, "", None, "1990-12-31", "garbage", "29/02/2024",
              "01/01/1899"]
    r = run({"d": values}, DATE_RULE.format(action="fix"))
    fixed = r.column("d")
    assert fixed[:3] == ["31/02/2020", "1990-12-31", "1990-12-31"]  # Excel serial 33238 is 1990-12-31
    assert fixed[4:9] == ["", None, "1990-12-31", "garbage", "2024-02-29"]
    assert r.reasons("d") == [(1, "not a date in the accepted formats"), (4, "date in the future"),
                              (8, "not a date in the accepted formats"), (10, "date before 1900-01-01")]


def test_date_flag_does_not_change_values(run: Run) -> None:
    r = run({"d": ["31/12/1990", "31/02/2020", "1990-12-31"]}, DATE_RULE.format(action="flag"))
    assert r.column("d") == ["31/12/1990", "31/02/2020", "1990-12-31"]
    # with flag, only the declared formats are accepted
    assert r.reasons("d") == [(2, "not a date in the accepted formats"),
                              (3, "not a date in the accepted formats")]


def test_date_default_formats_and_max(run: Run) -> None:
    r = run({"d": ["2020-01-31", "31/01/2020", "2030-01-01", "2020/01/31"]},
            "rules: [{name: d, kind: date, column: d, max: '2025-12-31'}]")
    assert r.reasons("d") == [(3, "date after 2025-12-31"), (4, "not a date in the accepted formats")]


# --- phone, national id, postal code ----------------------------------------------------------

def test_phone_fix_to_e164_with_default_region_and_invalid_flagged(run: Run) -> None:
    values = ["600 12 34 56", "+34 600123456", "0034600123456", "12345", "", None, "+44 20 7946 0958", "abc",
              "612-345-678", "+1 202 555 0143"]
    r = run({"p": values}, "rules: [{name: p, kind: phone, column: p, action: fix}]")
    assert r.column("p") == ["+34600123456", "+34600123456", "+34600123456", "12345", "", None,
                             "+442079460958", "abc", "+34612345678", "+12025550143"]
    assert r.reasons("p") == [(4, "not a valid phone number"), (8, "not a valid phone number")]


def test_phone_region_column(run: Run) -> None:
    r = run({"p": ["202 555 0143", "600123456", "020 7946 0958", "600123456"], "cc": ["US", "es", "GB", ""]},
            "rules: [{name: p, kind: phone, column: p, region_column: cc, action: fix}]")
    assert r.column("p") == ["+12025550143", "+34600123456", "+442079460958", "+34600123456"]


def test_phone_flag_only_checks(run: Run) -> None:
    r = run({"p": ["600 12 34 56", "123"]}, "rules: [{name: p, kind: phone, column: p, region: ES}]")
    assert r.column("p") == ["600 12 34 56", "123"]
    assert r.failing("p") == [2]


def test_national_id_any_checks_letters_and_fixes_compact_form(run: Run) -> None:
    values = ["12345678Z", "12345678-z", "12345678A", "X1234567L", "X1234567A", "B12345674", "B12345670",
              "", None, "abc"]
    r = run({"n": values}, "rules: [{name: n, kind: national_id, column: n, action: fix}]")
    assert r.column("n")[:2] == ["12345678Z", "12345678Z"]
    assert r.failing("n") == [3, 5, 7, 10]
    assert r.reasons("n")[0] == (3, "not a valid NIF/NIE/CIF")


@pytest.mark.parametrize(("kind", "failing", "label"), [
    ("nif", [], "NIF"), ("nie", [1, 3], "NIE"), ("cif", [1, 2], "CIF"), ("dni", [2, 3], "DNI"),
])
def test_national_id_types(run: Run, kind: str, failing: list[int], label: str) -> None:
    r = run({"n": ["12345678Z", "X1234567L", "B12345674"]},
            f"rules: [{{name: n, kind: national_id, column: n, type: {kind}}}]")
    assert r.failing("n") == failing
    assert all(reason == f"not a valid {label}" for _, reason in r.reasons("n"))


def test_postal_code_by_country_column_and_fixed_country(run: Run) -> None:
    data = {"pc": ["28001", "53000", "00123", "2800", "", "1000-100", "SW1A 1AA", "sw1a 1aa", "12345-6789",
                   "X"],
            "cc": ["ES", "ES", "ES", "ES", "ES", "PT", "GB", "GB", "US", "ZZ"]}
    r = run(data, """
rules:
  - {name: by_col, kind: postal_code, column: pc, country_column: cc}
  - {name: es, kind: postal_code, column: pc, country: ES}
""")
    assert r.failing("by_col") == [2, 3, 4]  # ZZ has no pattern: passes
    assert r.failing("es") == [2, 3, 4, 6, 7, 8, 9, 10]
    assert r.reasons("by_col")[0] == (2, "not a postal code of the country")


# --- checks -----------------------------------------------------------------------------------

CHECK_DATA = {"id": ["1", "2", "2", "", None, "3", "3", "3"],
              "cc": ["ES", "es", "ESPAÑA", "espana", "FR", "XX", "", None],
              "v": ["5", "-1", "1.000,5", "abc", "", "100", "99,9", "0"]}


def test_required(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: q, kind: required, column: id}]")
    assert r.reasons("q") == [(4, "missing value"), (5, "missing value")]
    assert (r.outcome("q").status, r.outcome("q").rejected) == ("fail", 0)


def test_required_reject_with_warning_severity(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: q, kind: required, column: id, action: reject, severity: warning}]")
    assert r.rejected() == [4, 5]
    assert (r.outcome("q").status, r.outcome("q").rejected) == ("warn", 2)
    assert not r.result.failed  # a warning never fails the run
    assert r.result.rejected_rows == 2


def test_unique_flag_reports_every_row_of_a_repeated_key(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: u, kind: unique, column: id}]")
    assert r.failing("u") == [2, 3, 6, 7, 8]  # blank keys are skipped
    assert r.rejected() == []


def test_unique_reject_keeps_the_first_row_of_each_key(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: u, kind: unique, column: id, action: reject}]")
    assert r.rejected() == [3, 7, 8]
    assert r.reasons("u")[0] == (3, "repeats the key of an earlier row")


def test_unique_on_several_columns(run: Run) -> None:
    r = run({"a": ["1", "1", "1"], "b": ["x", "y", "x"]}, "rules: [{name: u, kind: unique, columns: [a, b]}]")
    assert r.failing("u") == [1, 3]


def test_regex_whole_value_and_message(run: Run) -> None:
    r = run({"id": ["C0000001", "C12", "xC0000001", "", None]},
            "rules: [{name: x, kind: regex, column: id, pattern: 'C[0-9]{7}', message: bad id}]")
    assert r.reasons("x") == [(2, "bad id"), (3, "bad id")]


def test_allowed_values_exact_and_ignoring_case_and_accents(run: Run) -> None:
    r = run(CHECK_DATA, """
rules:
  - {name: exact, kind: allowed, column: cc, values: [ES, FR, España]}
  - {name: folded, kind: allowed, column: cc, values: [ES, FR, España], ignore_case: true}
""")
    assert r.failing("exact") == [2, 3, 4, 6]
    assert r.reasons("folded") == [(6, "not an allowed value")]


def test_numeric_range_reads_decimal_comma(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: r, kind: range, column: v, min: 0, max: 100}]")
    assert r.reasons("r") == [(2, "below 0"), (3, "above 100"), (4, "not a number")]


def test_email_syntax_fix_and_reasons_without_values(run: Run) -> None:
    values = ["ana@example.com", "bad@", "x@@y.com", "ANA@EXAMPLE.COM", "", None, "a@b", "José@correo.es"]
    r = run({"e": values}, "rules: [{name: e, kind: email, column: e, action: fix}]")
    assert r.column("e")[3] == "ANA@example.com"  # the domain is lower-cased, the local part kept
    assert r.failing("e") == [2, 3, 7]
    assert all(reason.startswith("syntax:") and "@" not in reason for _, reason in r.reasons("e"))


def test_sql_cross_field_with_null_handling(run: Run) -> None:
    r = run(CHECK_DATA, """
rules:
  - {name: s, kind: sql, expr: "cc <> 'XX'", message: no XX}
  - {name: s_null, kind: sql, expr: "cc <> 'XX'", null_fails: true}
""")
    assert r.reasons("s") == [(6, "no XX")]
    assert r.reasons("s_null") == [(6, "condition not met: cc <> 'XX'"), (8, "condition not met: cc <> 'XX'")]


# --- where, thresholds, severities, actions -----------------------------------------------------

def test_where_limits_checked_rows(run: Run) -> None:
    r = run(CHECK_DATA, "rules: [{name: w, kind: required, column: cc, where: \"id = '3'\"}]")
    assert r.failing("w") == [7, 8]
    assert r.outcome("w").checked == 3


def test_where_limits_fixes(run: Run) -> None:
    r = run({"id": ["1", "2"], "n": ["ANA", "BO"]},
            "rules: [{name: c, kind: case, column: n, to: lower, where: \"id = '2'\"}]")
    assert r.column("n") == ["ANA", "bo"]
    assert r.outcome("c").fixed == 1


@pytest.mark.parametrize(("threshold", "error_status", "warning_status"), [
    ("2", "fail", "warn"), ("3", "pass", "pass"), ("'2%'", "fail", "warn"), ("'3%'", "pass", "pass"),
    ("'2.5%'", "fail", "warn"), ("0", "fail", "warn"),
])
def test_thresholds_count_and_percent(run: Run, threshold: str, error_status: str,
                                      warning_status: str) -> None:
    data = {"x": ["a"] * 97 + [""] * 3}  # 3 failures in 100 rows
    r = run(data, f"""
rules:
  - {{name: e, kind: required, column: x, threshold: {threshold}}}
  - {{name: w, kind: required, column: x, threshold: {threshold}, severity: warning}}
""")
    assert (r.outcome("e").status, r.outcome("w").status) == (error_status, warning_status)
    assert r.result.failed is (error_status == "fail")
    assert r.outcome("e").failed == 3


def test_reject_rows_are_the_union_over_rules(run: Run) -> None:
    r = run(CHECK_DATA, """
rules:
  - {name: q, kind: required, column: id, action: reject}
  - {name: u, kind: unique, column: id, action: reject}
  - {name: r, kind: range, column: v, min: 0, max: 100}
""")
    assert r.rejected() == [3, 4, 5, 7, 8]
    assert r.result.rejected_rows == 5
    assert r.failing("r") == [2, 3, 4]  # flagged, not rejected


def test_fix_then_check_sees_the_fixed_value(run: Run) -> None:
    r = run({"e": [" ANA@X.ES "]}, """
rules:
  - {name: n, kind: email_normalise, column: e}
  - {name: s, kind: regex, column: e, pattern: '[a-z@.]+'}
""")
    assert r.column("e") == ["ana@x.es"]
    assert r.failing("s") == []


@pytest.mark.parametrize(("rule", "failing"), [
    ("{name: x, kind: regex, column: id, pattern: '[0-9]'}", [3]),
    ("{name: x, kind: allowed, column: id, values: [1, 2]}", [3]),
    ("{name: x, kind: allowed, column: flag, values: [true]}", [2]),
    ("{name: x, kind: required, column: id}", []),
    ("{name: x, kind: unique, column: flag}", [1, 3]),
    ("{name: x, kind: range, column: amt, min: 0}", [2]),
    ("{name: x, kind: date, column: d, not_future: true}", [2]),
    ("{name: x, kind: postal_code, column: pc}", [2]),
    ("{name: x, kind: phone, column: phone}", [2, 3]),
])
def test_checks_on_typed_columns_as_parquet_gives_them(ws: Any, tmp_path: Any, rule: str, failing: list[int]) -> None:
    from crmtool.engine import VIOLATIONS, run_rules
    from crmtool.rulefile import load_rules

    ws.con.execute("""CREATE TABLE typed AS SELECT * FROM (VALUES
        (1, 1, 28001, DATE '2020-01-01', 5.5, 600123456, true),
        (2, 2, 99999, DATE '2999-01-01', -1.0, 12, false),
        (3, 10, 28002, NULL, 0.0, 13, true)) v(_row, id, pc, d, amt, phone, flag)""")
    rules = tmp_path / "r.yaml"
    rules.write_text(f"rules:\n  - {rule}\n", encoding="utf-8")
    run_rules(ws.con, "typed", load_rules(rules))
    rows = ws.con.execute(f"SELECT DISTINCT _row FROM {VIOLATIONS} ORDER BY _row").fetchall()
    assert [r[0] for r in rows] == failing


def test_date_declared_formats_win_over_excel_serials_and_years_are_not_serials(run: Run) -> None:
    r = run({"d": ["1985", "33238", "44927.5"], "y": ["1985", "2001", "33238"]}, """
rules:
  - {name: d, kind: date, column: d, formats: ['%d/%m/%Y'], excel_serial: true, action: fix}
  - {name: y, kind: date, column: y, formats: ['%Y'], excel_serial: true, action: fix}
""")
    assert r.column("d") == ["1985", "1990-12-31", "2023-01-01"]
    assert r.reasons("d") == [(1, "not a date in the accepted formats")]
    assert r.column("y")[:2] == ["1985-01-01", "2001-01-01"]
