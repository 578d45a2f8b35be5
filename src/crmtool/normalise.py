"""Pure normalisers shared by every floor: text, names, emails, phones.

Each function is total (never raises on any text) and idempotent (``f(f(x)) == f(x)``); both
properties are tested with hypothesis. They run once per *distinct* value and are cached.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"\s+")
# lower-case particles of Spanish, Portuguese, French, Italian, Dutch and German surnames
NAME_PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos",
                            "di", "du", "le", "van", "von", "der", "den", "zu"})
# a letter, then letters or combining accents ('İ'.lower() is 'i' + U+0307: one word, not two)
_LETTERS = r"[^\W\d_](?:[^\W\d_]|[\u0300-\u036f])*"
_WORD = re.compile(rf"{_LETTERS}(?:['’]{_LETTERS})*", re.UNICODE)


def collapse_spaces(value: str) -> str:
    """Trim and collapse every run of white space (including NBSP, tabs, newlines) to one space."""
    return _SPACES.sub(" ", value).strip()


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def strip_accents(value: str) -> str:
    """``Muñoz`` -> ``Munoz``; other scripts are kept."""
    decomposed = unicodedata.normalize("NFKD", value)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


#: Spanish and Catalan letters that ftfy never takes for mojibake among printable ASCII, unless a
#: lower-case one stands right before an upper-case one (``ñÑ``: ftfy's badness pattern of a
#: lower-case accented letter before an upper-case one). Checked against ftfy on every string of
#: up to three such characters (tests/core/test_mojibake_fast.py).
_PLAIN_LOWER = "áéíóúàèòïüçñ"
_PLAIN_UPPER = "ÁÉÍÓÚÀÈÒÏÜÇÑ"
_PLAIN = re.compile(f"[\x20-\x7e{_PLAIN_LOWER}{_PLAIN_UPPER}]*")
_PLAIN_BAD = re.compile(f"[{_PLAIN_LOWER}][{_PLAIN_UPPER}]")
#: those letters' UTF-8 read as cp1252 (``Ã±`` for ``ñ``) where ftfy's badness finds the pair bad
#: on its own; not ``Ã’`` (Ò, not bad alone), nor Í, à and í (a byte cp1252 lacks, a no-break
#: space, a soft hyphen): those are left to ftfy
_PAIR_LETTERS = "ÀÇÈÉÑÓÚÜáçèéïñòóúü"
_PAIRS = {"Ã" + c.encode("utf-8")[1:].decode("cp1252"): c for c in _PAIR_LETTERS}
_PAIRED = re.compile("(?:[\x20-\x7e]|" + "|".join(map(re.escape, _PAIRS)) + ")*")
_PAIR = re.compile("|".join(map(re.escape, _PAIRS)))


def _mojibake_without_ftfy(value: str) -> str | None:
    """What ftfy makes of ``value`` (with :func:`fix_mojibake`'s options) where that is certain
    without ftfy, else None: printable ASCII with the plain letters above is left as it is (ftfy
    finds nothing bad in it), and printable ASCII with the mojibake pairs above (and no other
    non-ASCII) becomes the letters (ftfy's first step: the text encodes to Latin-1 or cp1252 as
    ASCII and ``C3 xx`` pairs, which decode as UTF-8 to plain text). Spares loading ftfy (about
    40 ms) and calling it once per distinct value for most Spanish names."""
    if _PLAIN.fullmatch(value):
        return None if _PLAIN_BAD.search(value) else value
    if _PAIRED.fullmatch(value):
        fixed = _PAIR.sub(lambda m: _PAIRS[m.group(0)], value)
        if _PLAIN.fullmatch(fixed) and not _PLAIN_BAD.search(fixed):
            return fixed
    return None


@lru_cache(maxsize=200_000)
def fix_mojibake(value: str) -> str:
    """Repair UTF-8 read as Latin-1/cp1252 (``MuÃ±oz`` -> ``Muñoz``) with ftfy, then NFC."""
    known = _mojibake_without_ftfy(value)
    return known if known is not None else _mojibake_with_ftfy(value)


def _mojibake_with_ftfy(value: str) -> str:
    """:func:`fix_mojibake`'s ftfy path (the tests hold the fast path equal to it)."""
    import ftfy

    fixed = ftfy.fix_text(value, normalization="NFC", unescape_html=False, fix_line_breaks=False,
                          uncurl_quotes=False, fix_latin_ligatures=False, fix_character_width=False)
    # ftfy is not always idempotent on already-odd text; stop at a fixed point
    for _ in range(3):
        again = ftfy.fix_text(fixed, normalization="NFC", unescape_html=False, fix_line_breaks=False,
                              uncurl_quotes=False, fix_latin_ligatures=False, fix_character_width=False)
        if again == fixed:
            break
        fixed = again
    return fixed


def _cap(word: str) -> str:
    # O'Neill, D'Angelo; McDonald is left as McDonald only when written so (no guessing)
    parts = re.split(r"(['’])", word)
    return "".join(_upper_first(p) + p[1:].lower() if p not in ("'", "’") else p for p in parts)


def _upper_first(part: str) -> str:
    # 'ß'.upper() is 'SS': a letter whose capital is two letters stays as written (idempotence)
    upper = part[:1].upper()
    return upper if len(upper) == 1 else part[:1]


@lru_cache(maxsize=200_000)
def title_name(value: str) -> str:
    """Names in title case with lower-case particles: ``JOSÉ MARÍA DE LA FUENTE-LÓPEZ`` ->
    ``José María de la Fuente-López``. The first word is always capitalised."""
    value = collapse_spaces(value)
    out: list[str] = []
    pos = 0
    first = True
    for match in _WORD.finditer(value):
        out.append(value[pos:match.start()])
        word = match.group(0)
        lower = word.lower()
        if not first and lower in NAME_PARTICLES and value[match.start() - 1: match.start()] == " ":
            out.append(lower)
        else:
            out.append(_cap(word))
        first = False
        pos = match.end()
    out.append(value[pos:])
    return "".join(out)


def normalise_email(value: str) -> str:
    """Trim, drop surrounding angle brackets and ``mailto:``, lower-case the whole address.

    Lower-casing the local part is what CRMs and email platforms do in practice (RFC 5321 allows
    case-sensitive local parts, but no mainstream provider uses them).
    """
    v = _email_once(value)
    # one pass can uncover more to strip ('mailto:mailto:a', 'mailto:<a>'): repeat to a fixed point
    for _ in range(len(v) + 1):
        again = _email_once(v)
        if again == v:
            break
        v = again
    return v


def _email_once(value: str) -> str:
    v = collapse_spaces(value).strip("<>").strip()
    if v.lower().startswith("mailto:"):
        v = v[7:]
    return v.replace(" ", "").lower()


@lru_cache(maxsize=500_000)
def phone_e164(value: str, region: str = "ES") -> str | None:
    """E.164 form of a phone number (``600 12 34 56`` -> ``+34600123456``), ``None`` if invalid."""
    import phonenumbers

    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_DECIMAL_COMMA = re.compile(r"^[+-]?\d{1,3}(\.\d{3})*(,\d+)?$|^[+-]?\d+(,\d+)?$")
_DECIMAL_POINT = re.compile(r"^[+-]?\d{1,3}(,\d{3})*(\.\d+)?$|^[+-]?\d+(\.\d+)?$")


def parse_decimal(value: str, decimal_comma: bool = True) -> str | None:
    """``1.234,56`` -> ``1234.56`` (with decimal comma); ``None`` when not a number."""
    v = collapse_spaces(value).replace(" ", "").replace("€", "").replace("\u00a0", "")
    if decimal_comma and _DECIMAL_COMMA.match(v):
        return v.replace(".", "").replace(",", ".")
    if _DECIMAL_POINT.match(v):
        return v.replace(",", "")
    return None
