"""Email syntax with python-email-validator (no network), per distinct address.

:func:`syntax_verdict` returns ``(ok, normalized, detail)`` where ``detail`` is a short code
(``syntax:no_at``, ``syntax:bad_domain`` ...) that never contains the address itself, so it can
be written to reports and audit logs.

For speed, :func:`fast_path_sql` gives a DuckDB expression that recognises the common case (a
plain ASCII dot-atom address on an ordinary host name) which email-validator certainly accepts,
together with :func:`fast_normalized_sql`, the identical normalised form (local part unchanged,
domain lower-cased). Everything else goes through :func:`syntax_verdict`. A hypothesis test
(``tests/emails/test_syntax_fast_path.py``) checks that the two agree.
"""

from __future__ import annotations

from functools import lru_cache

from crmtool.sqltext import sql_str

MAX_LENGTH = 1024  # longer strings are not addresses; don't hand 10 kB to the parser

_DETAILS = [
    ("an @-sign", "syntax:no_at"),
    ("one @-sign", "syntax:many_at"),
    ("too long", "syntax:too_long"),
    ("period", "syntax:bad_dots"),
    ("before the @-sign", "syntax:bad_local"),
    ("after the @-sign", "syntax:bad_domain"),
    ("domain", "syntax:bad_domain"),
    ("quoted", "syntax:quoted_local"),
    ("special-use", "syntax:special_use_domain"),
    ("unsafe", "syntax:unsafe_character"),
    ("invalid character", "syntax:bad_character"),
    ("not allowed", "syntax:bad_character"),
    ("empty", "syntax:empty"),
]

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: plain ASCII address that email-validator accepts unchanged apart from the domain's case
FAST_PATTERN = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}"
#: special-use names email-validator rejects (and their subdomains)
SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _detail(message: str) -> str:
    lower = message.lower()
    for needle, code in _DETAILS:
        if needle in lower:
            return code
    return "syntax:invalid"


def fast_path_sql(value_sql: str) -> str:
    """SQL boolean: ``value_sql`` is an address the fast path may accept without email-validator."""
    special = "(?i)\\.(" + "|".join(SPECIAL_USE) + ")$"
    return (f"(length({value_sql}) <= 254 AND strpos({value_sql}, '@') <= 65 "
            f"AND regexp_full_match({value_sql}, {sql_str(FAST_PATTERN)}) "
            f"AND NOT regexp_matches({value_sql}, {sql_str(special)}) "
            f"AND strpos(split_part({value_sql}, '@', 2), '--') = 0)")


def fast_normalized_sql(value_sql: str) -> str:
    """SQL: email-validator's normalised form of a fast-path address (domain lower-cased)."""
    return f"(split_part({value_sql}, '@', 1) || '@' || lower(split_part({value_sql}, '@', 2)))"


@lru_cache(maxsize=1_000_000)
def syntax_verdict(value: str) -> tuple[bool, str | None, str | None]:
    """``(True, normalized, None)`` for a valid address, ``(False, None, detail)`` otherwise."""
    from email_validator import EmailNotValidError, validate_email

    if not value or not value.strip():
        return False, None, "syntax:empty"
    if len(value) > MAX_LENGTH:
        return False, None, "syntax:too_long"
    if value != value.strip():
        return False, None, "syntax:whitespace"
    if "\x00" in value:
        return False, None, "syntax:bad_character"
    if "@" not in value:
        return False, None, "syntax:no_at"  # email-validator's verdict, without the cost of asking it
    if value.count("@") > 1 and '"' not in value:
        return False, None, "syntax:many_at"
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return False, None, _detail(str(exc))
    except Exception:  # the library's own bugs on exotic input must not stop a run
        return False, None, "syntax:invalid"
    return True, info.normalized, None
