"""Audience hashing: each platform's documented normalisation, with vectors derived by hand."""

from __future__ import annotations

import hashlib

import pytest

from crmtool.errors import InputError, UsageError
from crmtool.segments import api
from crmtool.segments.audience import hash_email, hash_phone, normalise_email, normalise_phone

# sha256 of the normalised strings (lower-case hex), computed once with hashlib from the strings below
META_EMAIL = "0bce3ed0bcbcc8d9dab97b42bf2ffa075b5782c10f543f0be1d8d53803efab15"  # john.doe+news@gmail.com
GOOGLE_EMAIL = "61fbbb1bf4c3f4edb2629791e6f6df6f0f438830256b217e98ac52b6ee368959"  # johndoe+news@gmail.com
META_PHONE = "14976e7970d2191d37cb8853db2d372d671594e432cae1f6602668060303222a"  # 34600123456
GOOGLE_PHONE = "38dbd333ed8ecfb8fa0c220691021d4e44ffb673ea4c1571e625d7909d8f6b2b"  # +34600123456


@pytest.mark.parametrize(("raw", "meta", "google"), [
    ("  John.Doe+news@Gmail.COM ", "john.doe+news@gmail.com", "johndoe+news@gmail.com"),
    ("a.b.c@googlemail.com", "a.b.c@googlemail.com", "abc@googlemail.com"),
    ("Ana.Lopez@Hotmail.es", "ana.lopez@hotmail.es", "ana.lopez@hotmail.es"),  # dots kept off Gmail
    ("no-at-sign.example.com", None, None),
    ("two@@x.es", None, None),
])
def test_email_normalisation_per_platform(raw: str, meta: str | None, google: str | None) -> None:
    assert normalise_email(raw, "meta") == meta
    assert normalise_email(raw, "google") == google


@pytest.mark.parametrize(("raw", "meta", "google"), [
    ("600 12 34 56", "34600123456", "+34600123456"),  # national number: country code from the region (ES)
    ("0034 600-123-456", "34600123456", "+34600123456"),
    ("+1 (650) 253-0000", "16502530000", "+16502530000"),
    ("12345", None, None),  # not a valid number: skipped, never guessed
])
def test_phone_normalisation_per_platform(raw: str, meta: str | None, google: str | None) -> None:
    assert normalise_phone(raw, "meta") == meta
    assert normalise_phone(raw, "google") == google


def test_hash_vectors() -> None:
    assert hash_email(" John.Doe+news@Gmail.com", "meta") == META_EMAIL
    assert hash_email("JOHN.DOE+news@gmail.com", "google") == GOOGLE_EMAIL
    assert hash_phone("600 12 34 56", "meta") == META_PHONE
    assert hash_phone("+34 600 123 456", "google") == GOOGLE_PHONE
    assert hashlib.sha256(b"34600123456").hexdigest() == META_PHONE


def test_export_audience_from_a_send_list(ws, kit) -> None:  # type: ignore[no-untyped-def]
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "consent", "signup"], [
        ["C1", "John.Doe+news@gmail.com", "600 12 34 56", "yes", ""],
        ["C2", "bad-email", "12345", "yes", ""],
        ["C3", "x@y.es", "", "yes", ""],
        ["C5", "-dash@y.es", "", "yes", ""],  # written as '-dash@y.es in the CSV send list
        ["C4", "nope@y.es", "", "no", ""],  # not consented: never in the send list, never in the audience
    ])
    kit.run(ws, "segments: [{name: all, when: 'TRUE'}]", path)
    res = api.export_audience(ws, "all", "google", source_dir=kit.tmp / "out")
    assert (res.rows, res.emails, res.phones, res.skipped_emails, res.skipped_phones) == (3, 3, 1, 1, 1)
    rows = kit.rows("out/audiences/all.google.csv")
    assert rows[0] == {"email": GOOGLE_EMAIL, "phone": GOOGLE_PHONE}
    assert rows[1] == {"email": hashlib.sha256(b"x@y.es").hexdigest(), "phone": ""}
    assert rows[2] == {"email": hashlib.sha256(b"-dash@y.es").hexdigest(), "phone": ""}
    meta = api.export_audience(ws, "all", "meta", source_dir=kit.tmp / "out", out=kit.tmp / "m.csv")
    assert kit.rows("m.csv")[0] == {"email": META_EMAIL, "phone": META_PHONE} and meta.rows == 3
    with pytest.raises(UsageError, match="unknown platform"):
        api.export_audience(ws, "all", "tiktok", source_dir=kit.tmp / "out")
    with pytest.raises(InputError, match="no send list"):
        api.export_audience(ws, "nope", "meta", source_dir=kit.tmp / "out")
