"""A small authoritative DNS server for the tests and the MX benchmark: real packets on loopback.

It answers from a dict zone with dnslib; names listed as ``drop`` never get an answer (the
timeout path). Runs in a daemon thread on 127.0.0.1 and a random free UDP port.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from dnslib import AAAA, MX, QTYPE, RCODE, RR, SOA, A, DNSRecord


@dataclass
class Zone:
    """``mx``: name -> [(pref, host)]; ``a``: names with an A record; ``null_mx``; ``drop``; ``suffix_mx``."""

    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    a: set[str] = field(default_factory=set)
    aaaa: set[str] = field(default_factory=set)
    null_mx: set[str] = field(default_factory=set)
    drop: set[str] = field(default_factory=set)
    servfail: set[str] = field(default_factory=set)
    suffix_mx: tuple[str, ...] = ()  # every name under these answers MX 10 mx.<suffix>
    addresses: dict[str, list[str]] = field(default_factory=dict)  # explicit A/AAAA answers
    ttl: int = 300


class DnsServer:
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # so that stopping does not wait on a blocked recvfrom
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DnsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()

    def _exists(self, name: str) -> bool:
        z = self.zone
        return (
            name in z.mx
            or name in z.a
            or name in z.aaaa
            or name in z.null_mx
            or name in z.addresses
            or any(name.endswith("." + s) or name == s for s in z.suffix_mx)
        )

    def _answer(self, request: DNSRecord) -> DNSRecord | None:
        z = self.zone
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        if name in z.drop:
            return None
        reply = request.reply()
        if name in z.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if not self._exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(
                RR(name, QTYPE.SOA, ttl=z.ttl, rdata=SOA("ns.test", "admin.test", (1, 60, 60, 60, 120)))
            )
            return reply
        if qtype == "MX":
            if name in z.null_mx:
                reply.add_answer(RR(name, QTYPE.MX, ttl=z.ttl, rdata=MX(".", 0)))
            elif name in z.mx:
                for pref, host in z.mx[name]:
                    reply.add_answer(RR(name, QTYPE.MX, ttl=z.ttl, rdata=MX(host, pref)))
            elif any(name.endswith("." + s) for s in z.suffix_mx):
                reply.add_answer(RR(name, QTYPE.MX, ttl=z.ttl, rdata=MX("mx." + name, 10)))
        elif qtype == "A" and name in z.a:
            reply.add_answer(RR(name, QTYPE.A, ttl=z.ttl, rdata=A("93.184.215.14")))
        elif qtype == "AAAA" and name in z.aaaa:
            reply.add_answer(RR(name, QTYPE.AAAA, ttl=z.ttl, rdata=AAAA("2606:2800:21f:cb07:6820:80da:af6b:8b2c")))
        for ip in z.addresses.get(name, []):
            if qtype == ("AAAA" if ":" in ip else "A"):
                reply.add_answer(RR(name, getattr(QTYPE, qtype), ttl=z.ttl, rdata=(AAAA if ":" in ip else A)(ip)))
        if not reply.rr:
            reply.add_auth(
                RR(name, QTYPE.SOA, ttl=z.ttl, rdata=SOA("ns.test", "admin.test", (1, 60, 60, 60, 120)))
            )
        return reply

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            try:
                reply = self._answer(DNSRecord.parse(data))
            except Exception:
                continue
            if reply is not None:
                try:
                    self.sock.sendto(reply.pack(), peer)
                except OSError:
                    return
