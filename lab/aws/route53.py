"""Route 53 in the lab: health checkers that really probe, and failover records answered by their state.

moto keeps hosted zones, failover record sets and health checks, but probes nothing: its
GetHealthCheckStatus reports one `Success` observation forever. Here, as the Route 53 Developer Guide
documents it (*How Amazon Route 53 determines whether a health check is healthy*; *Values that you
specify when you create or update health checks*):

- health checkers in several regions probe the endpoint independently (uncoordinated: each starts at a
  random point of its interval), every `RequestInterval` (10 or 30 s), from the health check's own
  settings in moto, read again at each check (an update takes effect as on AWS);
- an HTTP(S) check succeeds when a TCP connection is made within 4 s and a 2xx/3xx status arrives
  within 2 s of it (`*_STR_MATCH`: the string in the first 5,120 bytes of the body, within 2 s more);
  HTTPS checks do not validate the certificate;
- a checker changes its view of the endpoint after `FailureThreshold` consecutive results the other way;
- the health check is healthy while more than 18 % of the checkers say healthy.

The lab runs one checker in each of Route 53's eight default health-checker regions (AWS runs more
per region; the 18 % rule then needs 2 of 8). Every duration is divided by the lab's time scale.
GetHealthCheckStatus returns each checker's latest observation in the API's shape and wording.

Failover records (*Active-passive failover*): the PRIMARY answers while its health check is healthy,
else the SECONDARY (if both are unhealthy, Route 53 answers with the primary). An alias answers with
its target's addresses and the target's TTL: 60 s for ELB load balancers and CloudFront distributions
(Route 53 FAQ, DNS failover: "alias records with a fixed TTL of 60 seconds").
"""
from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.route53 import models as r53_models
from moto.route53 import responses as r53_responses

from lab.events import EventLog

# Route 53's default health-checker regions (HealthCheckConfig.Regions: when none are given, all of these).
CHECKER_REGIONS = ("us-east-1", "us-west-1", "us-west-2", "eu-west-1",
                   "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1")
HEALTHY_FRACTION = 0.18  # healthy while MORE than 18 % of checkers say healthy
CONNECT_SECONDS = 4.0
STATUS_SECONDS = 2.0
BODY_LIMIT = 5120
ALIAS_TTL = 60  # ELB and CloudFront alias targets

# name -> IPv4 address of a public name in the lab (the addresses lab.addresses hands out), or None
NameMap = Callable[[str], "str | None"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Checker:
    region: str
    address: str  # the checker's own address, as GetHealthCheckStatus reports it
    healthy: bool = True  # its view of the endpoint, after FailureThreshold consecutive results
    streak: int = 0  # consecutive results against its current view
    last_status: str = "Success: HTTP Status Code 200, OK"
    last_checked: str = field(default_factory=now_iso)


class HealthCheckers:
    """Every health check in moto's Route 53 backend, probed by one checker per region."""

    def __init__(self, backend: Callable[[], Any], resolve: NameMap, port_of: Callable[[Any], int],
                 time_scale: float, events: EventLog | None = None) -> None:
        self.backend = backend
        self.resolve = resolve
        self.port_of = port_of
        self.time_scale = time_scale
        self.events = events
        self._checkers: dict[str, list[Checker]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._status: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"HealthCheckers({len(self._checkers)} health checks)"

    def start(self) -> HealthCheckers:
        for hc_id in list(self.backend().health_checks):
            self.watch(hc_id)
        return self

    def watch(self, hc_id: str) -> None:
        """Probe health check `hc_id` from every region (new health checks start healthy, as the lab's
        steady state: AWS's first status comes after the first checks)."""
        with self._lock:
            if hc_id in self._checkers:
                return
            checkers = [Checker(region, f"15.177.{i}.{10 + i}") for i, region in enumerate(CHECKER_REGIONS)]
            self._checkers[hc_id] = checkers
            self._status[hc_id] = True
        for c in checkers:
            t = threading.Thread(target=self._run, args=(hc_id, c), name=f"r53-check:{c.region}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)

    def healthy(self, hc_id: str) -> bool:
        """Route 53's view: more than 18 % of the checkers say healthy."""
        with self._lock:
            checkers = self._checkers.get(hc_id)
            if not checkers:
                return True
            return sum(c.healthy for c in checkers) / len(checkers) > HEALTHY_FRACTION

    def observations(self, hc_id: str) -> list[dict[str, Any]]:
        """GetHealthCheckStatus's HealthCheckObservations: each checker's latest result."""
        with self._lock:
            return [{"Region": c.region, "IPAddress": c.address,
                     "StatusReport": {"Status": c.last_status, "CheckedTime": c.last_checked}}
                    for c in self._checkers.get(hc_id, [])]

    def _config(self, hc_id: str) -> Any:
        return self.backend().health_checks.get(hc_id)

    def _run(self, hc_id: str, checker: Checker) -> None:
        rng = random.Random()
        hc = self._config(hc_id)
        interval = float(getattr(hc, "request_interval", 30) or 30) / self.time_scale
        self._stop.wait(rng.uniform(0, interval))  # uncoordinated checkers
        while not self._stop.is_set():
            hc = self._config(hc_id)
            if hc is None:
                return  # deleted
            interval = float(hc.request_interval or 30) / self.time_scale
            t0 = time.monotonic()
            ok, status = self._check(hc)
            self._record(hc_id, checker, int(hc.failure_threshold or 3), ok, status)
            self._stop.wait(max(0.0, interval - (time.monotonic() - t0)))

    def _record(self, hc_id: str, c: Checker, threshold: int, ok: bool, status: str) -> None:
        with self._lock:
            c.last_status, c.last_checked = status, now_iso()
            if ok == c.healthy:
                c.streak = 0
            else:
                c.streak += 1
                if c.streak >= threshold:
                    c.healthy, c.streak = ok, 0
            checkers = self._checkers[hc_id]
            now = sum(x.healthy for x in checkers) / len(checkers) > HEALTHY_FRACTION
            changed = now != self._status.get(hc_id)
            self._status[hc_id] = now
        if changed and self.events is not None:
            self.events.record("route53", "health check " + ("healthy" if now else "unhealthy"), health_check=hc_id)

    def _check(self, hc: Any) -> tuple[bool, str]:
        """One HTTP(S) check as a Route 53 checker makes it; (passed, the StatusReport's Status)."""
        kind = str(hc.type_ or "HTTP").upper()
        host = hc.ip_address or (self.resolve(str(hc.fqdn).rstrip(".").lower()) if hc.fqdn else None)
        if host is None:
            return False, f"Failure: DNS resolution failed: {hc.fqdn}"
        port = self.port_of(hc)
        path = hc.resource_path or "/"
        connect = CONNECT_SECONDS / self.time_scale
        answer = STATUS_SECONDS / self.time_scale
        try:
            sock = socket.create_connection((host, port), timeout=connect)
        except TimeoutError:
            return False, f"Failure: Resolved IP: {host}. The connection timed out."
        except OSError:
            return False, f"Failure: Resolved IP: {host}. The endpoint rejected the connection."
        try:
            sock.settimeout(answer)
            if kind.startswith("HTTPS"):  # no certificate validation, as documented
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                sock = ctx.wrap_socket(sock, server_hostname=hc.fqdn or None)
            conn = http.client.HTTPConnection(host, port, timeout=answer)
            conn.sock = sock
            conn.request("GET", path, headers={"Host": str(hc.fqdn or host).rstrip("."),
                                               "User-Agent": "Amazon-Route53-Health-Check-Service"})
            resp = conn.getresponse()
            body = resp.read(BODY_LIMIT) if kind.endswith("STR_MATCH") else b""
        except TimeoutError:
            return False, f"Failure: Resolved IP: {host}. The endpoint did not respond within {STATUS_SECONDS:g} seconds."
        except (OSError, http.client.HTTPException):
            return False, f"Failure: Resolved IP: {host}. The connection was closed by the endpoint."
        finally:
            sock.close()
        if not 200 <= resp.status < 400:
            return False, f"Failure: HTTP Status Code {resp.status}, {resp.reason}. Resolved IP: {host}."
        if kind.endswith("STR_MATCH") and str(hc.search_string or "").encode() not in body:
            return False, f"Failure: Resolved IP: {host}. The response body did not contain the search string."
        return True, f"Success: HTTP Status Code {resp.status}, {resp.reason}"


class FailoverAnswers:
    """What Route 53's name servers answer for a name of a hosted zone in moto, now."""

    def __init__(self, backend: Callable[[], Any], checkers: HealthCheckers, public: NameMap) -> None:
        self.backend = backend
        self.checkers = checkers
        self.public = public

    def lookup(self, name: str) -> list[tuple[str, int]] | None:
        name = name.rstrip(".").lower()
        sets = [rs for zone in list(self.backend().zones.values()) for rs in list(zone.rrsets)
                if str(rs.name).rstrip(".").lower() == name and rs.type == "A"]
        if not sets:
            address = self.public(name)  # a cloud resource's own public name (alias targets)
            return None if address is None else [(address, ALIAS_TTL)]
        failover = {str(rs.failover).upper(): rs for rs in sets if rs.failover}
        if failover:
            primary, secondary = failover.get("PRIMARY"), failover.get("SECONDARY")
            chosen = primary
            if primary is not None and secondary is not None and not self._healthy(primary) and self._healthy(secondary):
                chosen = secondary
            chosen = chosen or secondary
            return self._answer(chosen)
        return self._answer(sets[0])

    def _healthy(self, rs: Any) -> bool:
        return rs.health_check_id is None or self.checkers.healthy(rs.health_check_id)

    def _answer(self, rs: Any) -> list[tuple[str, int]]:
        if rs.alias_target:
            target = str(rs.alias_target.get("DNSName") or rs.alias_target.get("dns_name") or "").rstrip(".").lower()
            address = self.public(target)
            return [] if address is None else [(address, ALIAS_TTL)]
        return [(r["Value"] if isinstance(r, dict) else str(r), int(rs.ttl or 300)) for r in rs.records]


_CHECKERS: list[HealthCheckers] = []
_ORIGINAL_STATUS = r53_responses.Route53.get_health_check_status


def install(checkers: HealthCheckers) -> None:
    """GetHealthCheckStatus answers with the lab's checkers' observations (moto's own stays for others)."""
    _CHECKERS[:] = [checkers]

    def get_health_check_status(self: Any) -> Any:
        from moto.core.responses import ActionResult

        hc_id = self._get_param("HealthCheckId")
        self.backend.get_health_check(hc_id)  # NoSuchHealthCheck as moto raises it
        return ActionResult({"HealthCheckObservations": _CHECKERS[0].observations(hc_id)})

    r53_responses.Route53.get_health_check_status = get_health_check_status  # type: ignore[method-assign]


def backend(account_id: str) -> Any:
    return r53_models.route53_backends[account_id]["aws"]
