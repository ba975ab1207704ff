"""A small caching DNS resolver, as a user's resolver behaves: it keeps an answer for the record's TTL.

The probe's locustfile calls it for each request (drivers/probe_locustfile.py), so a user keeps going
to the old address after a DNS failover until the TTL they were given runs out — which is what the
Route 53 system's RTO includes. One resolver per vantage (a probe process): its own cache.

`time_scale` is the target's: a TTL on the wire is real-world seconds (Route 53 answers 60), and the
lab plays time that many times faster, as it does every documented delay. `honour_ttl=False` asks the
name server for every request (a resolver that ignores TTL: the lower bound of what users see).
No Locust or gevent import here: the locustfile imports this, not the other way round.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSRecord


class ResolveError(Exception):
    """No address: NXDOMAIN, no answer, or the name server did not respond."""


@dataclass(frozen=True)
class Answer:
    address: str
    ttl: int  # seconds, as the name server gave it (real-world)
    expires: float  # monotonic instant the cached answer expires (scaled)
    cached: bool  # served from the cache


def parse_nameserver(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    if not host:
        return spec, 53
    return host, int(port)


class CachingResolver:
    def __init__(self, nameserver: str, time_scale: float = 1.0, honour_ttl: bool = True, timeout: float = 2.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.host, self.port = parse_nameserver(nameserver)
        self.time_scale = time_scale
        self.honour_ttl = honour_ttl
        self.timeout = timeout
        self._cache: dict[str, Answer] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachingResolver({self.host}:{self.port}, time_scale={self.time_scale:g}, honour_ttl={self.honour_ttl})"

    def query(self, name: str) -> tuple[str, int]:
        """Ask the name server (no cache): (first A address, TTL)."""
        q = DNSRecord.question(name.rstrip(".") + ".", "A")
        try:
            raw = q.send(self.host, self.port, timeout=self.timeout)
        except OSError as e:
            raise ResolveError(f"{name}: name server {self.host}:{self.port} did not answer: {e}") from None
        reply = DNSRecord.parse(raw)
        if reply.header.rcode != RCODE.NOERROR:
            raise ResolveError(f"{name}: {RCODE.get(reply.header.rcode)}")
        for rr in reply.rr:
            if rr.rtype == QTYPE.A:
                return str(rr.rdata), int(rr.ttl)
        raise ResolveError(f"{name}: no A record")

    def resolve(self, name: str) -> Answer:
        key = name.rstrip(".").lower()
        now = time.monotonic()
        if self.honour_ttl:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and now < hit.expires:
                return Answer(hit.address, hit.ttl, hit.expires, True)
        address, ttl = self.query(key)
        answer = Answer(address, ttl, now + ttl / self.time_scale, False)
        with self._lock:
            self._cache[key] = answer
        return answer
