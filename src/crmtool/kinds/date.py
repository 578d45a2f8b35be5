"""``date``: parse dates written in declared formats, check them, and fix them to ISO.

``formats`` are strftime patterns tried in order (default ``%Y-%m-%d``, ``%d/%m/%Y``);
``excel_serial: true`` also reads spreadsheet serial numbers (``33238`` -> ``1990-12-31``; five
digits, i.e. from 1927-05-18, so that a bare year such as ``1985`` is not read as a day in 1905).
A value that matches no format, or names an impossible day (31/02), fails. ``min``/``max``
(ISO dates, or ``today``) and ``not_future: true`` bound the value. ``action: fix`` rewrites
every parseable value as ``YYYY-MM-DD``.
"""

from datetime import date
from typing import Any, ClassVar

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, failing_rows
from crmtool.kinds.compiles import strptime_reads
from crmtool.sqltext import ident, sql_str

DEFAULT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
_DATE = {"type": "string", "pattern": r"^(today|\d{4}-\d{2}-\d{2})$",
         "description": "an ISO date (YYYY-MM-DD) or 'today'"}


def parsed_date_sql(column_sql: str, formats: list[str], excel_serial: bool) -> str:
    fmts = "[" + ", ".join(sql_str(f) for f in formats) + "]"
    v = f"trim(CAST({column_sql} AS VARCHAR))"
    expr = f"CAST(try_strptime({v}, {fmts}) AS DATE)"
    if excel_serial:
        # declared formats first (a '%Y' format must read 1985 as a year); serials are 5 digits
        # (1927-05-18 on): a bare 4-digit number in a CRM export is a year, not a day in 1900-1927
        expr = (f"coalesce({expr}, CASE WHEN regexp_full_match({v}, '[0-9]{{5}}(\\.[0-9]+)?') "
                f"THEN DATE '1899-12-30' + CAST(floor(CAST({v} AS DOUBLE)) AS INTEGER) END)")
    return expr


def _bound(raw: str) -> str:
    return "current_date" if raw == "today" else f"DATE {sql_str(raw)}"


class Date(Kind):
    name = "date"
    summary = "Dates in declared formats (and Excel serials): valid day, optional range; fix writes ISO."
    options_schema: ClassVar[dict[str, Any]] = {
        "formats": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "excel_serial": {"type": "boolean"},
        "min": _DATE,
        "max": _DATE,
        "not_future": {"type": "boolean"},
    }
    actions = ("fix", "flag", "reject")

    def problems(self, spec: RuleSpec) -> list[str]:
        out = []
        for fmt in spec.opt("formats", []):
            if isinstance(fmt, str) and strptime_reads(fmt):  # plain: no DuckDB instance needed to know
                continue
            import duckdb

            try:
                duckdb.execute("SELECT try_strptime('x', [?])", [fmt]).fetchall()
            except duckdb.Error as exc:
                out.append(f"formats: {fmt!r} is not a strptime format ({str(exc).splitlines()[0]})")
        for bound in ("min", "max"):
            raw = spec.opt(bound)
            if raw and raw != "today":
                try:
                    date.fromisoformat(raw)
                except ValueError:
                    out.append(f"{bound}: {raw!r} is not a real day")
        return out

    def _parsed(self, spec: RuleSpec, column: str) -> str:
        formats = list(spec.opt("formats", DEFAULT_FORMATS))
        if spec.action == "fix" and "%Y-%m-%d" not in formats:
            formats.append("%Y-%m-%d")  # what the fix wrote must pass the check
        return parsed_date_sql(f"t.{ident(column)}", formats, bool(spec.opt("excel_serial", False)))

    def fix_in_sql(self, spec: RuleSpec) -> bool:
        return True

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        parsed = self._parsed(spec, column)
        return FixPlan(f"coalesce(strftime({parsed}, '%Y-%m-%d'), t.{ident(column)})")

    def checks_value_only(self, spec: RuleSpec) -> bool:
        return True

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        column = spec.columns[0]
        c = f"t.{ident(column)}"
        parsed = self._parsed(spec, column)
        reasons = [f"WHEN {parsed} IS NULL THEN 'not a date in the accepted formats'"]
        if spec.opt("not_future"):
            reasons.append(f"WHEN {parsed} > current_date THEN 'date in the future'")
        if spec.opt("min"):
            reasons.append(f"WHEN {parsed} < {_bound(spec.opt('min'))} THEN 'date before {spec.opt('min')}'")
        if spec.opt("max"):
            reasons.append(f"WHEN {parsed} > {_bound(spec.opt('max'))} THEN 'date after {spec.opt('max')}'")
        reason = "CASE " + " ".join(reasons) + " END"
        rows = failing_rows(ctx, column, f"trim({c}) <> ''", reason)
        return f"SELECT * FROM ({rows}) WHERE reason IS NOT NULL"
