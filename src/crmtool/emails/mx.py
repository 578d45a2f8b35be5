"""Can a domain receive mail? MX lookups with dnspython, concurrent, bounded, cached in the workspace.

For each distinct domain (ASCII form):

* an MX answer -> ``ok``; a single MX of preference 0 with the root as exchange is a *null MX*
  (RFC 7505: the domain accepts no mail) -> ``null_mx``;
* no MX records but the name exists -> the RFC 5321 section 5.1 fallback: an A or AAAA record
  makes the domain itself the mail host -> ``ok_fallback``; neither, or only addresses that are
  not globally routable (``127.0.0.1``, ``::1``, private ranges) -> ``no_mx``;
* NXDOMAIN -> ``not_found``; no answer within the per-query ``timeout`` or the run's total
  ``budget`` -> ``timeout``; SERVFAIL / refused -> ``error``.

Queries run concurrently (``concurrency`` at a time) on asyncio. Definite answers are kept in
``email_mx_cache`` until their DNS TTL runs out (clamped to :data:`MIN_TTL`..:data:`MAX_TTL`;
negative answers for :data:`NEGATIVE_TTL` unless the zone's SOA says less), so a daily cron run
asks DNS only for new or expired domains. Timeouts and errors are never cached.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmtool.errors import UsageError

if TYPE_CHECKING:
    import duckdb

TABLE = "email_mx_cache"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (domain VARCHAR PRIMARY KEY, status VARCHAR, mx JSON, "
    "checked_at TIMESTAMP, expires_at TIMESTAMP)"
)
MIN_TTL = 60
MAX_TTL = 7 * 24 * 3600
NEGATIVE_TTL = 3600
CACHED = ("ok", "ok_fallback", "null_mx", "no_mx", "not_found")
STATUSES = (*CACHED, "timeout", "error")


@dataclass
class MxReport:
    """Per-domain status plus how the run went (counts only)."""

    statuses: dict[str, str]
    asked: int = 0
    cached: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "domains": len(self.statuses),
            "asked_dns": self.asked,
            "from_cache": self.cached,
            "seconds": round(self.seconds, 3),
            "budget_exhausted": self.budget_exhausted,
            "by_status": dict(sorted(self.counts.items())),
        }


def _global(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def parse_resolver(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or bare IPv6 -> (ip, port)."""
    import ipaddress

    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.lstrip(":"), text)
    elif text.count(":") == 1:
        host, raw_port = text.split(":")
        port = _port(raw_port, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(
            f"--resolver {text!r} is not an IP address[:port]", "e.g. 127.0.0.1:5353 or [::1]:53"
        ) from None
    return host, port


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise UsageError(f"--resolver {text!r}: bad port", "e.g. 127.0.0.1:5353")
    return int(raw)


def _negative_ttl(exc: Exception) -> int:
    """SOA minimum of a negative answer (RFC 2308), else :data:`NEGATIVE_TTL`."""
    try:
        for response in exc.kwargs["responses"].values():  # type: ignore[attr-defined]
            for rrset in response.authority:
                if rrset.rdtype == 6:  # SOA
                    return int(min(rrset.ttl, rrset[0].minimum))
    except Exception:
        pass
    return NEGATIVE_TTL


async def _lookup(resolver: Any, domain: str, timeout: float) -> tuple[str, list[Any], int]:
    import dns.exception
    import dns.name
    import dns.resolver

    try:
        answer = await resolver.resolve(domain + ".", "MX", lifetime=timeout, search=False)
        records = sorted((int(r.preference), r.exchange.to_text(omit_final_dot=True)) for r in answer)
        ttl = int(answer.rrset.ttl) if answer.rrset is not None else MIN_TTL
        if any(r.exchange == dns.name.root for r in answer) and len(records) == 1:
            return "null_mx", [list(r) for r in records], ttl
        return "ok", [list(r) for r in records], ttl
    except dns.resolver.NXDOMAIN as exc:
        return "not_found", [], _negative_ttl(exc)
    except dns.resolver.NoAnswer as exc:
        negative = _negative_ttl(exc)
    except dns.exception.Timeout:
        return "timeout", [], 0
    except (dns.resolver.NoNameservers, dns.exception.DNSException):
        return "error", [], 0
    for rdtype in ("A", "AAAA"):  # RFC 5321 5.1: the implicit MX
        try:
            answer = await resolver.resolve(domain + ".", rdtype, lifetime=timeout, search=False)
            ttl = int(answer.rrset.ttl) if answer.rrset is not None else MIN_TTL
            if not any(_global(r.address) for r in answer):
                continue  # 127.0.0.1, ::1, private ranges: no host on the internet takes the mail
            return "ok_fallback", [[0, domain]], ttl
        except dns.resolver.NoAnswer:
            continue
        except dns.resolver.NXDOMAIN as exc:
            return "not_found", [], _negative_ttl(exc)
        except dns.exception.Timeout:
            return "timeout", [], 0
        except dns.exception.DNSException:
            return "error", [], 0
    return "no_mx", [], negative


async def _lookup_all(
    domains: list[str], server: tuple[str, int] | None, timeout: float, budget: float, concurrency: int
) -> tuple[dict[str, tuple[str, list[Any], int]], bool]:
    import dns.asyncresolver
    import dns.resolver

    try:
        resolver = dns.asyncresolver.Resolver(configure=server is None)
    except dns.resolver.NoResolverConfiguration:
        raise UsageError("no DNS resolver configured on this machine", "give --resolver IP[:PORT]") from None
    if server is not None:
        resolver.nameservers = [server[0]]
        resolver.port = server[1]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    gate = asyncio.Semaphore(max(1, concurrency))
    results: dict[str, tuple[str, list[Any], int]] = {}

    async def one(domain: str) -> None:
        async with gate:
            results[domain] = await _lookup(resolver, domain, timeout)

    tasks = [asyncio.ensure_future(one(d)) for d in domains]
    exhausted = False
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=budget)
        if pending:
            exhausted = True
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    for d in domains:
        results.setdefault(d, ("timeout", [], 0))
    return results, exhausted


def lookup(
    domains: list[str],
    *,
    resolver: str | None = None,
    timeout: float = 3.0,
    budget: float = 60.0,
    concurrency: int = 64,
) -> tuple[dict[str, tuple[str, list[Any], int]], bool]:
    """Ask DNS about ``domains`` (no cache): ``{domain: (status, [[pref, host]...], ttl)}``, budget hit."""
    server = parse_resolver(resolver) if resolver else None
    return asyncio.run(_lookup_all(sorted(set(domains)), server, timeout, budget, concurrency))


def check_domains(
    con: duckdb.DuckDBPyConnection,
    domains: list[str],
    *,
    resolver: str | None = None,
    timeout: float = 3.0,
    budget: float = 60.0,
    concurrency: int = 64,
    refresh: bool = False,
    now: datetime | None = None,
) -> MxReport:
    """Statuses of ``domains`` from the cache when fresh, else from DNS (then cached with their TTL)."""
    import pyarrow as pa

    start = time.perf_counter()
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    con.execute(SCHEMA)
    wanted = sorted({d.lower().rstrip(".") for d in domains if d})
    statuses: dict[str, str] = {}
    if not refresh and wanted:
        con.register("__mx_wanted", pa.table({"domain": pa.array(wanted, pa.string())}))
        rows = con.execute(
            f"SELECT c.domain, c.status FROM {TABLE} c SEMI JOIN __mx_wanted w ON w.domain = c.domain "
            f"WHERE c.expires_at > ?",
            [now],
        ).fetchall()
        con.unregister("__mx_wanted")
        statuses.update({d: s for d, s in rows})
    cached = len(statuses)
    todo = [d for d in wanted if d not in statuses]
    answers, exhausted = (
        lookup(todo, resolver=resolver, timeout=timeout, budget=budget, concurrency=concurrency)
        if todo
        else ({}, False)
    )
    keep: dict[str, list[Any]] = {"domain": [], "status": [], "mx": [], "checked_at": [], "expires_at": []}
    for d, (status, records, ttl) in answers.items():
        statuses[d] = status
        if status in CACHED:
            keep["domain"].append(d)
            keep["status"].append(status)
            keep["mx"].append(json.dumps(records))
            keep["checked_at"].append(now)
            keep["expires_at"].append(now + timedelta(seconds=min(MAX_TTL, max(MIN_TTL, ttl))))
    if keep["domain"]:
        con.register("__mx_new", pa.table(keep))
        con.execute(
            f"INSERT OR REPLACE INTO {TABLE} SELECT domain, status, CAST(mx AS JSON), checked_at, expires_at "
            f"FROM __mx_new"
        )
        con.unregister("__mx_new")
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s] = counts.get(s, 0) + 1
    return MxReport(statuses, len(todo), cached, time.perf_counter() - start, exhausted, counts)
