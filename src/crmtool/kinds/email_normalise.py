"""``email_normalise``: trim, drop ``mailto:`` and angle brackets, lower-case.

Plain ASCII addresses (the bulk) are normalised in SQL; the rest (non-ASCII, ``<>``, ``mailto:``)
go once per distinct value through :func:`crmtool.normalise.normalise_email`, so the result is
exactly the Python function's (tested equal on arbitrary text).
"""

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec
from crmtool.normalise import normalise_email
from crmtool.sqltext import ident

# the ASCII characters Python's \s matches (RE2's \s lacks \v and \x1c-\x1f)
_ASCII_SPACE = r"[\t\n\x0B\f\r \x1C-\x1F]"


def _plain_sql(v: str) -> str:
    """normalise_email for plain values: drop every white-space character, lower-case."""
    # most addresses hold no white space: finding none costs less than rewriting them
    return (f"lower(CASE WHEN regexp_matches({v}, '{_ASCII_SPACE}') "
            f"THEN regexp_replace({v}, '{_ASCII_SPACE}', '', 'g') ELSE {v} END)")


def _is_plain_sql(v: str) -> str:
    # ASCII exactly when every character is one byte: cheaper than a regular expression; and
    # 'mailto:' can only appear once spaces are gone where the value holds a colon (CASE evaluates
    # its branch on those rows alone: 0.30 -> 0.03 s over 956k distinct addresses)
    return (f"(strlen({v}) = length({v}) AND NOT contains({v}, '<') AND NOT contains({v}, '>') "
            f"AND CASE WHEN contains({v}, ':') THEN NOT contains({_plain_sql(v)}, 'mailto:') ELSE true END)")


class EmailNormalise(Kind):
    name = "email_normalise"
    summary = "Trim an email address, drop mailto: and <>, remove inner spaces, lower-case it."
    columns = "many"
    actions = ("fix", "flag")
    default_action = "fix"
    default_severity = "warning"

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan:
        c = f"t.{ident(column)}"
        table = ctx.map_distinct(c, lambda v: (normalise_email(v),), [("new", "VARCHAR")],
                                 ("email_normalise",), prefilter=f"NOT {_is_plain_sql('v')}")
        return FixPlan(f"CASE WHEN {_is_plain_sql(c)} THEN {_plain_sql(c)} ELSE m.new END",
                       f"LEFT JOIN {table} m ON m.value = {c}")
