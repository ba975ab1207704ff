"""Route 53 DNS failover through boto3, and what its name servers answer.

`health_check(id)` reads GetHealthCheckStatus: each health checker's latest observation, and Route 53's
rule over them (healthy while more than 18 % of checkers report success: Route 53 Developer Guide,
*How Amazon Route 53 determines whether a health check is healthy*). The rule is applied to the
checkers' latest results; Route 53 itself acts after FailureThreshold consecutive results, so the
moment its answers change is read where it shows: from an authoritative name server of the zone
(`AnswerWatch`, no cache), recorded with the instants it changed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from drivers.aws import Aws
from drivers.dns_resolver import CachingResolver, ResolveError

HEALTHY_FRACTION = 0.18


@dataclass(frozen=True)
class HealthCheckStatus:
    healthy: bool  # Route 53's rule over the checkers' latest reports
    reporting_success: int
    checkers: int
    observations: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "reporting_success": self.reporting_success, "checkers": self.checkers,
                "observations": self.observations}


class Route53:
    def __init__(self, aws: Aws) -> None:
        self.r53 = aws.client("route53")

    def health_check(self, health_check_id: str) -> HealthCheckStatus:
        obs = self.r53.get_health_check_status(HealthCheckId=health_check_id)["HealthCheckObservations"]
        ok = sum(1 for o in obs if str(o["StatusReport"]["Status"]).startswith("Success"))
        return HealthCheckStatus(bool(obs) and ok / len(obs) > HEALTHY_FRACTION, ok, len(obs),
                                 [{"region": o.get("Region"), "status": o["StatusReport"]["Status"]} for o in obs])

    def health_check_config(self, health_check_id: str) -> dict[str, Any]:
        return dict(self.r53.get_health_check(HealthCheckId=health_check_id)["HealthCheck"]["HealthCheckConfig"])

    def failover_records(self, zone_id: str, name: str) -> dict[str, dict[str, Any]]:
        """The zone's record sets of `name` by set identifier (failover role, alias target, health check)."""
        want = name.rstrip(".").lower() + "."
        out: dict[str, dict[str, Any]] = {}
        for rs in self.r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=want)["ResourceRecordSets"]:
            if rs["Name"].lower() == want:
                out[rs.get("SetIdentifier") or rs["Type"]] = {
                    k: rs.get(k) for k in ("Type", "Failover", "HealthCheckId", "AliasTarget", "TTL", "ResourceRecords")
                    if rs.get(k) is not None}
        return out


@dataclass
class AnswerChange:
    mono: float
    wall: float
    address: str | None  # None: no answer (an error)
    ttl: int | None


@dataclass
class AnswerWatch:
    """Polls an authoritative name server for `name` and keeps every change of its answer."""

    nameserver: str
    name: str
    poll_seconds: float = 0.1
    changes: list[AnswerChange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._resolver = CachingResolver(self.nameserver, honour_ttl=False, timeout=2.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dns-watch:{self.name}", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> AnswerWatch:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        try:
            address, ttl = self._resolver.query(self.name)
        except ResolveError:
            address, ttl = None, None
        with self._lock:
            if not self.changes or self.changes[-1].address != address:
                self.changes.append(AnswerChange(time.monotonic(), time.time(), address, ttl))

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._sample()

    def current(self) -> str | None:
        with self._lock:
            return self.changes[-1].address if self.changes else None

    def first_change_after(self, mono: float, to: str | None = None, away_from: str | None = None) -> AnswerChange | None:
        with self._lock:
            for c in self.changes:
                if c.mono >= mono and (to is None or c.address == to) and (away_from is None or c.address != away_from):
                    return c
        return None

    def as_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"at": c.wall, "address": c.address, "ttl": c.ttl} for c in self.changes]
