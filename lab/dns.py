"""The lab's DNS: an authoritative server on loopback (UDP and TCP, dnslib) answering for the names the
lab hosts, as the public DNS answers for them — a Route 53 hosted zone's records (lab.aws.route53
decides which failover record answers) and the public names of the clouds' resources (an ALB's DNS
name, a CloudFront distribution's domain, an Azure public IP's FQDN) that alias records point at.

Everything else is NXDOMAIN (the lab reaches no real DNS). Each answer carries the TTL the real
service gives it (60 s for failover aliases): a client's resolver is what honours it
(drivers.dns_resolver), with the target's time scale.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

# name (lower case, no trailing dot) -> [(IPv4 address, TTL seconds)], or None for "not ours"
Lookup = Callable[[str], "list[tuple[str, int]] | None"]


class _Resolver(BaseResolver):
    def __init__(self, lookup: Lookup, on_answer: Callable[[str, list[str]], None] | None) -> None:
        self.lookup = lookup
        self.on_answer = on_answer

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()  # aa=1: authoritative, as Route 53's name servers answer
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        records = self.lookup(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if q.qtype in (QTYPE.A, QTYPE.ANY):
            for address, ttl in records:
                reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(address), ttl=int(ttl)))
        if self.on_answer is not None:
            self.on_answer(name, [a for a, _ in records])
        return reply


class DnsServer:
    """UDP + TCP on 127.0.0.1:port (a free UDP port when 0)."""

    def __init__(self, lookup: Lookup, port: int = 0, address: str = "127.0.0.1",
                 on_answer: Callable[[str, list[str]], None] | None = None) -> None:
        resolver = _Resolver(lookup, on_answer)
        self._udp = DNSServer(resolver, port=port, address=address, logger=_Quiet())
        self.port = int(self._udp.server.server_address[1])
        self._tcp = DNSServer(resolver, port=self.port, address=address, tcp=True, logger=_Quiet())
        self.address = address
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DnsServer({self.address}:{self.port})"

    @property
    def nameserver(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> DnsServer:
        self._udp.start_thread()
        self._tcp.start_thread()
        return self

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            try:
                server.stop()
                server.server.server_close()
            except Exception:  # noqa: BLE001 — stopping: a server already closed is as good as stopped
                pass


class _Quiet:
    """dnslib's DNSLogger prints every query to stdout: the lab logs nothing per query."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None
