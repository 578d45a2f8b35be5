"""Audience files for ad platforms: SHA-256 of emails and phones normalised as each platform says.

The platforms document different normalisations, and a hash only matches when the bytes match,
so each is followed exactly (checked 2026-11; the links are the sources):

Meta (Custom Audiences from a customer list; developers.facebook.com/docs/marketing-api/audiences/
guides/custom-audiences, "Hashing and normalization"):
  - email: trim leading/trailing white space, lower-case. Nothing else: dots and ``+tags`` in
    Gmail addresses are kept.
  - phone: digits only (drop symbols, letters, spaces and the ``+``), no leading zeros, with the
    country code: ``+34 600 12 34 56`` -> ``34600123456``.
Google (Customer Match / enhanced conversions; developers.google.com/google-ads/api/docs/
conversions/enhance-conversions, "Normalize and hash user-provided data", and the Customer Match
data formatting guidelines, support.google.com/google-ads/answer/7476159):
  - email: trim, lower-case, and for ``gmail.com`` / ``googlemail.com`` addresses remove every
    ``.`` before the ``@``. ``+tags`` are kept (Google does not document removing them).
  - phone: E.164 *with* the leading ``+``: ``+34600123456``.
Both: SHA-256 of the UTF-8 bytes, lower-case hex. Phones without a country code get the region of
``inputs.customers.phone_region`` (default ES) through libphonenumber; numbers it finds invalid and
emails without exactly one ``@`` are skipped and counted, never guessed.
"""

from __future__ import annotations

import hashlib

from crmtool.normalise import phone_e164

PLATFORMS = ("meta", "google")
_GMAIL = ("gmail.com", "googlemail.com")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalise_email(value: str | None, platform: str) -> str | None:
    """The email as the platform wants it before hashing; ``None`` when it is not an address."""
    if value is None:
        return None
    v = value.strip().lower()
    if v.count("@") != 1 or not v.split("@")[0] or "." not in v.split("@")[1] or " " in v:
        return None
    if platform == "google":
        local, domain = v.split("@")
        if domain in _GMAIL:
            v = local.replace(".", "") + "@" + domain
    return v


def normalise_phone(value: str | None, platform: str, region: str = "ES") -> str | None:
    """E.164 (Google) or E.164 digits without ``+`` (Meta); ``None`` when not a valid number."""
    if value is None or not value.strip():
        return None
    e164 = phone_e164(value, region)
    if e164 is None:
        return None
    return e164 if platform == "google" else e164.lstrip("+")


def hash_email(value: str | None, platform: str) -> str | None:
    n = normalise_email(value, platform)
    return sha256_hex(n) if n else None


def hash_phone(value: str | None, platform: str, region: str = "ES") -> str | None:
    n = normalise_phone(value, platform, region)
    return sha256_hex(n) if n else None
