"""Fixtures of the email tests: a real DNS server on loopback with the zone the MX tests need."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dnszone import DnsServer, Zone

ZONE = Zone(
    mx={"conmx.es": [(10, "mx1.conmx.es"), (20, "mx2.conmx.es")]},
    a={"soloa.es"},
    addresses={"loopback.es": ["127.0.0.1", "::1"]},
    null_mx={"nullmx.es"},
    drop={"lento.es"},
    servfail={"roto.es"},
    ttl=300,
)


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture
def dead_resolver() -> str:
    """A loopback port where nothing listens (bound then closed)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"
