"""Bounce exports of each platform -> email_bounces, and the history they give addresses."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from crmtool.emails.bounces import import_bounces
from crmtool.emails.classify import ClassifyOptions, classify_list
from crmtool.errors import InputError, UsageError
from crmtool.workspace import Workspace

FILES = Path(__file__).parent / "bounces"

# file -> (platform detected, {bounce_type: count})
EXPECTED = {
    "mailchimp_cleaned.csv": ("mailchimp", {"hard": 2}),
    "mailchimp_bounces.csv": ("mailchimp", {"hard": 1, "soft": 3}),
    "sendgrid_bounces.csv": ("sendgrid", {"hard": 1, "soft": 1}),
    "sendgrid_events.json": ("sendgrid", {"hard": 1, "soft": 2, "complaint": 1}),
    "brevo_logs.csv": ("brevo", {"hard": 1, "soft": 1}),
    "brevo_webhook.json": ("brevo", {"hard": 1, "soft": 1, "complaint": 1}),
    "mailgun_bounces.csv": ("mailgun", {"hard": 1, "soft": 1}),
    "mailgun_events.jsonl": ("mailgun", {"hard": 1, "soft": 1, "complaint": 1}),
    "ses_notifications.jsonl": ("ses", {"hard": 2, "soft": 1, "complaint": 1}),
    "generic.csv": ("generic", {"hard": 1, "soft": 1, "complaint": 1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_platform_is_detected_and_mapped(ws: Workspace, name: str) -> None:
    result = import_bounces(ws, FILES / name)
    platform, by_type = EXPECTED[name]
    assert result.platform == platform
    assert result.by_type == by_type
    assert result.undated == (1 if name == "generic.csv" else 0)
    rows = ws.con.execute("SELECT token, domain, platform, source FROM email_bounces").fetchall()
    assert all(len(t) == 32 and d == "conmx.es" and p == platform and s == name for t, d, p, s in rows)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_explicit_format_gives_the_same(ws: Workspace, name: str) -> None:
    assert import_bounces(ws, FILES / name, EXPECTED[name][0]).by_type == EXPECTED[name][1]


def test_times_are_utc(ws: Workspace) -> None:
    import_bounces(ws, FILES / "brevo_logs.csv")
    import_bounces(ws, FILES / "mailgun_bounces.csv")
    times = {r[0] for r in ws.con.execute("SELECT occurred_at FROM email_bounces").fetchall()}
    assert times == {datetime(2024, 3, 1, 9, 0), datetime(2024, 3, 1, 10, 0)}


def test_no_address_in_clear(ws: Workspace) -> None:
    import_bounces(ws, FILES / "mailchimp_cleaned.csv")
    dump = str(ws.con.execute("SELECT * FROM email_bounces").fetchall())
    assert "hard1" not in dump and "@" not in dump
    assert ws.con.execute("SELECT count(DISTINCT token) FROM email_bounces").fetchone() == (2,)
    assert ws.con.execute("SELECT command, status FROM crm_runs").fetchall() == [("bounces import", "pass")]


def test_reimport_adds_nothing_but_history_grows(ws: Workspace) -> None:
    first = import_bounces(ws, FILES / "sendgrid_events.json")
    again = import_bounces(ws, FILES / "sendgrid_events.json")
    assert first.imported == 4 and again.imported == 0 and again.duplicates == 4
    import_bounces(ws, FILES / "mailchimp_bounces.csv")
    assert ws.con.execute("SELECT count(*) FROM email_bounces").fetchone() == (8,)


def test_history_marks_addresses(ws: Workspace) -> None:
    for name in EXPECTED:
        import_bounces(ws, FILES / name)
    got = classify_list(ws.con, ["HARD1@conmx.es", "soft1@conmx.es", "soft3@conmx.es", "spam4@conmx.es",
                                 "ok1@conmx.es", "new@conmx.es"])
    assert got["HARD1@conmx.es"]["status"] == "invalid" and got["HARD1@conmx.es"]["reasons"] == ["hard_bounced"]
    assert got["soft1@conmx.es"]["reasons"] == ["soft_bounced_repeatedly"]  # 3 within 19 days
    assert got["soft3@conmx.es"]["reasons"] == []  # 2 soft bounces only
    assert got["spam4@conmx.es"]["reasons"] == ["suppressed"]  # complaint
    assert got["ok1@conmx.es"]["reasons"] == [] and got["new@conmx.es"]["status"] == "valid"


def test_soft_bounce_window_is_configurable(ws: Workspace) -> None:
    import_bounces(ws, FILES / "mailchimp_bounces.csv")
    narrow = classify_list(ws.con, ["soft1@conmx.es"], ClassifyOptions(soft_window_days=10))
    assert narrow["soft1@conmx.es"]["reasons"] == []  # 3 bounces span 19 days
    two = classify_list(ws.con, ["soft1@conmx.es"], ClassifyOptions(soft_bounces=2, soft_window_days=10))
    assert two["soft1@conmx.es"]["reasons"] == ["soft_bounced_repeatedly"]


def test_privacy_suppressions_mark_suppressed(ws: Workspace) -> None:
    ws.con.execute("CREATE TABLE privacy_suppressions (channel VARCHAR, token VARCHAR, kind VARCHAR, "
                   "source VARCHAR, added_at TIMESTAMP)")
    ws.con.execute("INSERT INTO privacy_suppressions VALUES ('email', ?, 'unsubscribe', 'test', now())",
                   [ws.hasher.token("ana@acme.es")])
    got = classify_list(ws.con, [" Ana@Acme.es", "luis@acme.es"])
    assert got["luis@acme.es"]["reasons"] == []
    assert "suppressed" in got[" Ana@Acme.es"]["reasons"]


def test_bad_inputs(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        import_bounces(ws, tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError):
        import_bounces(ws, empty)
    with pytest.raises(UsageError):
        import_bounces(ws, FILES / "generic.csv", "hotmail")
    with pytest.raises(InputError, match="not a mailgun bounce export"):
        import_bounces(ws, FILES / "generic.csv", "mailgun")
    statuses = [r[0] for r in ws.con.execute("SELECT status FROM crm_runs WHERE command = 'bounces import'").fetchall()]
    assert statuses and set(statuses) == {"error"}
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"foo": 1}\n')
    with pytest.raises(InputError, match="cannot tell which platform"):
        import_bounces(ws, odd)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"email": "a@b.es", "event": "bounce"\n')
    with pytest.raises(InputError, match="cannot read"):
        import_bounces(ws, broken)
