"""Email syntax with python-email-validator (no network), per distinct address.

:func:`syntax_verdict` returns ``(ok, normalized, detail)`` where ``detail`` is a short code
(``syntax:no_at``, ``syntax:bad_domain`` ...) that never contains the address itself, so it can
be written to reports and audit logs.
"""

from __future__ import annotations

from functools import lru_cache

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


def _detail(message: str) -> str:
    lower = message.lower()
    for needle, code in _DETAILS:
        if needle in lower:
            return code
    return "syntax:invalid"


@lru_cache(maxsize=1_000_000)
def syntax_verdict(value: str) -> tuple[bool, str | None, str | None]:
    """``(True, normalized, None)`` for a valid address, ``(False, None, detail)`` otherwise."""
    from email_validator import EmailNotValidError, validate_email

    if not value or not value.strip():
        return False, None, "syntax:empty"
    if len(value) > MAX_LENGTH:
        return False, None, "syntax:too_long"
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return False, None, _detail(str(exc))
    except Exception:  # the library's own bugs on exotic input must not stop a run
        return False, None, "syntax:invalid"
    return True, info.normalized, None
