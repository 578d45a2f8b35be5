"""The labeled corpus (tests/emails/labeled_emails.csv): expected status, reasons and suggestion."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crmtool.emails.classify import classify_list, reason_name

CORPUS = Path(__file__).parent / "labeled_emails.csv"
with CORPUS.open(encoding="utf-8") as _fh:
    ROWS = list(csv.DictReader(_fh))


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    return classify_list(duckdb.connect(), [json.loads(r["email_json"]) for r in ROWS])


@pytest.mark.parametrize("row", ROWS, ids=[r["note"][:40] or r["email_json"][:30] for r in ROWS])
def test_corpus_row(row: dict[str, str], results: dict[str, dict[str, Any]]) -> None:
    email = json.loads(row["email_json"])
    got = results[email]
    assert got["status"] == row["status"]
    assert sorted({reason_name(r) for r in got["reasons"]}) == sorted(filter(None, row["reasons"].split(";")))
    if "syntax" not in row["reasons"]:
        assert (got["suggestion"] or "") == row["suggestion"]
    assert 0 <= got["risk"] <= 100
    assert (got["risk"] == 0) == (got["reasons"] == [])


def test_corpus_covers_every_offline_reason() -> None:
    seen = {r for row in ROWS for r in row["reasons"].split(";") if r}
    assert {"syntax", "bad_tld", "disposable", "role", "typo_domain", "random_local", "homoglyph",
            "mixed_script"} <= seen
    assert len(ROWS) >= 120
