"""MX checks against a real authoritative DNS server on loopback (never the internet)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest
from dnszone import DnsServer

from crmtool.emails.classify import ClassifyOptions, classify_list
from crmtool.emails.mx import check_domains, lookup, parse_resolver
from crmtool.errors import UsageError

DOMAINS = ["conmx.es", "soloa.es", "nullmx.es", "noexiste.es", "lento.es", "roto.es", "loopback.es"]


def test_each_kind_of_answer(dns_server: DnsServer) -> None:
    answers, exhausted = lookup(DOMAINS, resolver=dns_server.address, timeout=0.5, budget=10)
    assert {d: a[0] for d, a in answers.items()} == {
        "conmx.es": "ok",
        "soloa.es": "ok_fallback",
        "nullmx.es": "null_mx",
        "noexiste.es": "not_found",
        "lento.es": "timeout",
        "roto.es": "error",
        "loopback.es": "no_mx",
    }
    assert answers["conmx.es"][1] == [[10, "mx1.conmx.es"], [20, "mx2.conmx.es"]]
    assert answers["conmx.es"][2] == 300
    assert not exhausted


def test_cache_keeps_answers_for_their_ttl(dns_server: DnsServer) -> None:
    con = duckdb.connect()
    now = datetime(2026, 1, 1, 12, 0)
    first = check_domains(con, DOMAINS, resolver=dns_server.address, timeout=0.3, now=now)
    assert first.asked == 7 and first.cached == 0
    rows = dict(con.execute("SELECT domain, status FROM email_mx_cache").fetchall())
    assert rows == {
        "conmx.es": "ok",
        "soloa.es": "ok_fallback",
        "nullmx.es": "null_mx",
        "loopback.es": "no_mx",
        "noexiste.es": "not_found",
    }
    ttl = con.execute(
        "SELECT expires_at - checked_at, mx FROM email_mx_cache WHERE domain = 'conmx.es'"
    ).fetchone()
    assert ttl is not None and ttl[0] == timedelta(seconds=300)
    assert json.loads(ttl[1]) == [[10, "mx1.conmx.es"], [20, "mx2.conmx.es"]]
    before = dns_server.queries
    again = check_domains(
        con, DOMAINS, resolver=dns_server.address, timeout=0.3, now=now + timedelta(seconds=100)
    )
    assert again.cached == 5 and again.asked == 2  # only the timeout and the SERVFAIL are asked again
    assert dns_server.queries > before
    later = check_domains(
        con, ["conmx.es"], resolver=dns_server.address, timeout=0.3, now=now + timedelta(seconds=400)
    )
    assert later.asked == 1 and later.statuses == {"conmx.es": "ok"}


def test_reasons_and_status_from_mx(dns_server: DnsServer) -> None:
    con = duckdb.connect()
    opts = ClassifyOptions(mx=True, resolver=dns_server.address, mx_timeout=0.3)
    got = classify_list(con, [f"ana@{d}" for d in DOMAINS], opts)
    assert {v: (r["status"], r["reasons"]) for v, r in got.items()} == {
        "ana@conmx.es": ("valid", []),
        "ana@soloa.es": ("valid", []),
        "ana@nullmx.es": ("invalid", ["no_mx"]),
        "ana@noexiste.es": ("invalid", ["domain_not_found"]),
        "ana@lento.es": ("unknown", ["dns_timeout"]),
        "ana@roto.es": ("unknown", ["dns_timeout"]),
        "ana@loopback.es": ("invalid", ["no_mx"]),
    }


def test_dead_server_gives_dns_timeout_and_finishes(dead_resolver: str) -> None:
    con = duckdb.connect()
    opts = ClassifyOptions(mx=True, resolver=dead_resolver, mx_timeout=0.2, mx_budget=5)
    got = classify_list(con, ["ana@conmx.es", "luis@soloa.es", "bad"], opts)
    assert got["ana@conmx.es"]["status"] == "unknown" and got["ana@conmx.es"]["reasons"] == ["dns_timeout"]
    assert got["bad"]["status"] == "invalid"
    assert con.execute("SELECT count(*) FROM email_mx_cache").fetchone() == (0,)


def test_total_budget_stops_the_run(dns_server: DnsServer) -> None:
    answers, exhausted = lookup(
        ["lento.es", "conmx.es"], resolver=dns_server.address, timeout=5, budget=0.3, concurrency=1
    )
    assert exhausted and answers["lento.es"][0] == "timeout"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("10.0.0.1:5353", ("10.0.0.1", 5353)),
        ("[::1]:5300", ("::1", 5300)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "1.2.3.4:99999", "1.2.3.4:x"])
def test_parse_resolver_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_resolver(text)
