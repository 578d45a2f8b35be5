"""Consent: the ``consent`` rule-file section and the value table granted / denied / unknown.

Real exports spell consent in many ways. A value is trimmed, lower-cased, stripped of accents and
its inner spaces/underscores become ``-``; then it is looked up in :data:`GRANTED` and
:data:`DENIED`. Anything else, blanks included, is ``unknown``, and **unknown never counts as
granted**.

Ambiguous spellings, decided on purpose (see ``tests/privacy/test_consent.py``):

* ``x``, ``*``, ``✓`` (a mark in a box: ticked or crossed out?) -> unknown
* ``n/a``, ``na`` (not applicable, not "no") -> unknown
* ``soft-opt-in``, ``legitimate-interest`` (no consent was asked) -> unknown
* ``pending``, ``pendiente``, ``double-opt-in-pending`` (not confirmed) -> unknown
* ``2``, ``-1`` and other numbers -> unknown; ``1``/``1.0`` granted, ``0``/``0.0`` denied
* ``s`` / ``n`` (Spanish Sí/No abbreviations) and ``y`` -> granted / denied / granted
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, Location
from crmtool.sqltext import ident, sql_list

if TYPE_CHECKING:
    from crmtool.ruleset import RuleSet

GRANTED = frozenset(
    {
        "yes",
        "y",
        "si",
        "s",
        "true",
        "t",
        "1",
        "1.0",
        "opt-in",
        "optin",
        "opted-in",
        "subscribed",
        "subscribe",
        "granted",
        "accepted",
        "accept",
        "agreed",
        "agree",
        "consent",
        "consented",
        "on",
        "ok",
        "acepta",
        "aceptado",
        "aceptada",
        "consiente",
        "suscrito",
        "suscrita",
        "alta",
        "oui",
        "sim",
        "ja",
    }
)
DENIED = frozenset(
    {
        "no",
        "n",
        "false",
        "f",
        "0",
        "0.0",
        "opt-out",
        "optout",
        "opted-out",
        "unsubscribed",
        "unsubscribe",
        "denied",
        "rejected",
        "refused",
        "declined",
        "revoked",
        "withdrawn",
        "off",
        "rechaza",
        "rechazado",
        "rechazada",
        "no-consiente",
        "baja",
        "dado-de-baja",
        "dada-de-baja",
        "non",
        "nao",
        "nein",
    }
)
STATES = ("granted", "denied", "unknown")
_BLANKS = " \t\n\r\f\v"
_SEPARATORS = re.compile(r"[ \t_]+")


def consent_key(value: Any) -> str:
    """The lookup form of a raw consent value (Python twin of the SQL in :func:`normalise_consent_sql`)."""
    if value is None:
        return ""
    text = str(value).strip(_BLANKS).lower()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return _SEPARATORS.sub("-", text)


def normalise_consent(value: Any, granted: frozenset[str] = frozenset(), denied: frozenset[str] = frozenset()) -> str:
    """``'Sí'`` -> ``'granted'``; ``'opt-out'`` -> ``'denied'``; blanks and anything else -> ``'unknown'``."""
    key = consent_key(value)
    if key in GRANTED or key in granted:
        return "granted"
    if key in DENIED or key in denied:
        return "denied"
    return "unknown"


def _sql_list(values: frozenset[str]) -> str:
    return sql_list(sorted(values))


def consent_key_sql(column_sql: str) -> str:
    """SQL twin of :func:`consent_key`."""
    trimmed = f"regexp_replace(CAST({column_sql} AS VARCHAR), '^[ \\t\\n\\r\\f\\v]+|[ \\t\\n\\r\\f\\v]+$', '', 'g')"
    return f"regexp_replace(strip_accents(lower({trimmed})), '[ \\t_]+', '-', 'g')"


def normalise_consent_sql(
    column_sql: str,
    granted: frozenset[str] | tuple[str, ...] = (),
    denied: frozenset[str] | tuple[str, ...] = (),
) -> str:
    """SQL expression giving ``'granted' | 'denied' | 'unknown'`` for ``column_sql`` (NULL -> unknown).

    ``granted``/``denied`` add site-specific spellings (compared after the same normalisation).
    """
    extra_g = frozenset(consent_key(v) for v in granted)
    extra_d = frozenset(consent_key(v) for v in denied)
    key = consent_key_sql(column_sql)
    return (
        f"(CASE WHEN {key} IN ({_sql_list(GRANTED | extra_g)}) THEN 'granted' "
        f"WHEN {key} IN ({_sql_list(DENIED | extra_d)}) THEN 'denied' ELSE 'unknown' END)"
    )


DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
)


def date_sql(column_sql: str, formats: tuple[str, ...] | list[str] = DATE_FORMATS) -> str:
    """SQL parsing a text date with the first format that fits (NULL when none does)."""
    v = f"trim(CAST({column_sql} AS VARCHAR))"
    tries = ", ".join(f"CAST(try_strptime({v}, '{f.replace(chr(39), chr(39) * 2)}') AS DATE)" for f in formats)
    return f"coalesce({tries})"


@dataclass(frozen=True)
class ChannelConsent:
    """How one channel's consent is read from a customer table."""

    channel: str
    column: str
    date_column: str | None
    granted: tuple[str, ...]
    denied: tuple[str, ...]
    loc: Location

    def state_sql(self, alias: str = "") -> str:
        col = (f"{alias}." if alias else "") + ident(self.column)
        return normalise_consent_sql(col, self.granted, self.denied)

    def date_sql(self, alias: str = "") -> str | None:
        if not self.date_column:
            return None
        return date_sql((f"{alias}." if alias else "") + ident(self.date_column))


def parse_consent(ruleset: RuleSet) -> dict[str, ChannelConsent]:
    """The ``consent`` section of a rule set (already schema-checked), per channel; empty when absent."""
    if "consent" not in ruleset.sections:
        return {}
    doc, data = ruleset.sections["consent"]
    out: dict[str, ChannelConsent] = {}
    for channel, raw in sorted(data.items()):
        out[channel] = ChannelConsent(
            channel,
            raw["column"],
            raw.get("date_column"),
            tuple(str(v) for v in raw.get("granted", ())),
            tuple(str(v) for v in raw.get("denied", ())),
            doc.loc(("consent", channel)),
        )
    return out


def consent_column_problems(consent: dict[str, ChannelConsent], columns: list[str]) -> list[tuple[Location, str]]:
    """Consent settings naming columns the data lacks."""
    have = set(columns)
    problems = []
    for spec in consent.values():
        for col in (spec.column, spec.date_column):
            if col and col not in have:
                problems.append((spec.loc, f"consent {spec.channel}: column '{col}' is not in the data"))
    return problems


def check_consent_columns(consent: dict[str, ChannelConsent], columns: list[str]) -> None:
    problems = consent_column_problems(consent, columns)
    if problems:
        raise ConfigError(problems)
