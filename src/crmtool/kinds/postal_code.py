"""``postal_code``: postal code format by country (fixed ``country`` or a ``country_column``).

Patterns are the national formats (ES: 5 digits with a province prefix 01-52, PT: 9999-999,
FR/DE/IT: 5 digits, GB: the Royal Mail outward/inward shape, US: ZIP or ZIP+4, ...). Countries
without a pattern pass.
"""

from typing import Any, ClassVar

from crmtool.kinds.base import Kind, PlanContext, RuleSpec, failing_rows
from crmtool.sqltext import ident, sql_str

PATTERNS = {
    "ES": r"(0[1-9]|[1-4][0-9]|5[0-2])[0-9]{3}",
    "PT": r"[1-9][0-9]{3}-?[0-9]{3}",
    "FR": r"[0-9]{5}",
    "DE": r"[0-9]{5}",
    "IT": r"[0-9]{5}",
    "NL": r"[1-9][0-9]{3} ?[A-Z]{2}",
    "BE": r"[1-9][0-9]{3}",
    "AT": r"[1-9][0-9]{3}",
    "CH": r"[1-9][0-9]{3}",
    "GB": r"[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}",
    "IE": r"[AC-FHKNPRTV-Y][0-9]{2}[0-9W] ?[0-9AC-FHKNPRTV-Y]{4}",
    "US": r"[0-9]{5}(-[0-9]{4})?",
    "MX": r"[0-9]{5}",
    "AR": r"([A-Z][0-9]{4}[A-Z]{3}|[0-9]{4})",
    "CO": r"[0-9]{6}",
    "CL": r"[0-9]{7}",
    "BR": r"[0-9]{5}-?[0-9]{3}",
}


class PostalCode(Kind):
    name = "postal_code"
    summary = "Postal code format by country (ES with province prefix 01-52, PT, FR, DE, GB, US, ...)."
    options_schema: ClassVar[dict[str, Any]] = {
        "country": {"type": "string", "enum": sorted(PATTERNS)},
        "country_column": {"type": "string"},
    }

    def checks_value_only(self, spec: RuleSpec) -> bool:
        return not spec.opt("country_column")

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        column = spec.columns[0]
        c = f"upper(trim(CAST(t.{ident(column)} AS VARCHAR)))"
        if spec.opt("country_column"):
            country = f"upper(trim(t.{ident(spec.opt('country_column'))}))"
        else:
            country = sql_str(spec.opt("country", "ES"))
        cases = " ".join(f"WHEN {sql_str(k)} THEN regexp_full_match({c}, {sql_str(v)})" for k, v in PATTERNS.items())
        ok = f"(CASE {country} {cases} ELSE true END)"
        return failing_rows(ctx, column, f"{c} <> '' AND NOT {ok}", "'not a postal code of the country'")
