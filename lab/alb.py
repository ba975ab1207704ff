"""The ALB of the lab: health checks and request routing for one target group, as AWS documents them.

Source: Elastic Load Balancing, Application Load Balancers User Guide, *Health checks for
Application Load Balancer target groups* and *Troubleshoot your Application Load Balancers*:
- "Each load balancer node routes requests only to the healthy targets"; "After your target is
  registered, it must pass one health check to be considered healthy" (`initial` → `healthy` on the
  first pass, whatever HealthyThresholdCount says); a target is taken out of service after
  UnhealthyThresholdCount consecutive failures and put back after HealthyThresholdCount consecutive
  successes; checks go every HealthCheckIntervalSeconds, each independent of how long the last one
  took, and a check with no answer within HealthCheckTimeoutSeconds fails.
- "If a target group contains only unhealthy registered targets, the load balancer routes requests
  to all those targets" (fail open). `initial` and `draining` targets are not unhealthy ones and get
  no requests; with no target to route to the ALB answers 503 ("The target groups for the load
  balancer have no registered targets").
- A TCP RST from the target when connecting → 502; no answer within the idle timeout → 504.

Every setting is read from the target group in moto at each check (so modify_target_group takes
effect as on AWS) and played divided by the lab's time scale. Targets are whatever is registered in
the target group; `resolve` says where a target's traffic port is — or None when connecting to it
is refused (an EKS node whose pod was evicted: kube-proxy rejects connections to a NodePort that
has no endpoints).
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.aws.elbv2 import TargetHealthRegistry
from lab.events import EventLog
from lab.httpfwd import Request, Response, Server, UpstreamError, forward
from lab.ports import free_port

ALB_503 = (b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
           b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n")
ALB_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
           b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")
ALB_504 = (b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
           b"<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n")
ALB_HEADERS = [("Content-Type", "text/html"), ("Server", "awselb/2.0")]

# Where a target's traffic goes: (host, port), or None when a connection to it is refused.
Resolver = Callable[[str, int], "tuple[str, int] | None"]


def parse_matcher(http_code: str) -> Callable[[int], bool]:
    """The target group's Matcher HttpCode ("200", "200,202", "200-299") as a predicate."""
    ranges: list[tuple[int, int]] = []
    for part in str(http_code).split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        ranges.append((int(lo), int(hi or lo)))
    if not ranges:
        raise ValueError(f"empty matcher {http_code!r}")
    return lambda status: any(lo <= status <= hi for lo, hi in ranges)


@dataclass(frozen=True)
class HealthCheckSettings:
    """A target group's health-check settings, durations in wall seconds at the lab's time scale."""

    path: str
    interval_seconds: float
    timeout_seconds: float
    healthy_threshold: int
    unhealthy_threshold: int
    matcher: str
    deregistration_delay_seconds: float

    @classmethod
    def of(cls, tg: Any, time_scale: float) -> HealthCheckSettings:
        """Read from moto's FakeTargetGroup (its values may be strings, as the API's query form gives)."""
        attrs = getattr(tg, "attributes", {}) or {}
        return cls(
            path=str(tg.health_check_path or "/"),
            interval_seconds=float(tg.health_check_interval_seconds) / time_scale,
            timeout_seconds=float(tg.health_check_timeout_seconds) / time_scale,
            healthy_threshold=int(tg.healthy_threshold_count),
            unhealthy_threshold=int(tg.unhealthy_threshold_count),
            matcher=str((tg.matcher or {}).get("HttpCode", "200")),
            deregistration_delay_seconds=float(attrs.get("deregistration_delay.timeout_seconds", 300)) / time_scale,
        )


@dataclass
class _Target:
    target_id: str
    port: int
    next_check: float
    checked: int = 0
    ok_streak: int = 0
    fail_streak: int = 0
    in_flight: bool = False


def routing_pool(states: list[tuple[str, str]]) -> list[str]:
    """Target ids a request may go to, from (target id, state) pairs: the documented routing rule.

    Healthy targets if any; else every registered target when all of them are unhealthy (fail
    open); else none (only `initial`, or `initial` beside `unhealthy`: not "only unhealthy").
    `draining` targets are deregistered and never get new requests.
    """
    registered = [(tid, st) for tid, st in states if st != "draining"]
    healthy = [tid for tid, st in registered if st == "healthy"]
    if healthy:
        return healthy
    if registered and all(st == "unhealthy" for _, st in registered):
        return [tid for tid, _ in registered]
    return []


class Alb:
    """One listener forwarding to one target group: the health checker and the data plane."""

    def __init__(
        self,
        *,
        target_group: Any,
        registry: TargetHealthRegistry,
        time_scale: float,
        resolve: Resolver,
        events: EventLog,
        idle_timeout_seconds: float,
        tick_seconds: float = 0.02,
    ) -> None:
        self.tg = target_group  # moto's FakeTargetGroup (in-process)
        self.registry = registry
        self.time_scale = time_scale
        self.resolve = resolve
        self.events = events
        self.idle_timeout = idle_timeout_seconds
        self.tick = tick_seconds
        self._targets: dict[str, _Target] = {}
        self._draining: dict[str, float] = {}  # target id -> when deregistration completes
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._rr = itertools.count()
        # Metrics hook (lab.monitoring): called with each response's status and whether the load
        # balancer generated it (HTTPCode_ELB_*) or the target did (HTTPCode_Target_*).
        self.on_response: Callable[[int, bool], None] | None = None
        self._routable_before: int | None = None
        self._serving_before: int | None = None
        self.port = free_port()
        self.server = Server(self.port, self._route)
        self._thread = threading.Thread(target=self._loop, name="alb-health", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, healthy: set[str] | None = None) -> Alb:
        """Adopt what is registered now; targets in `healthy` start healthy (the lab's steady state)."""
        now = time.monotonic()
        settings = self.settings()
        with self._lock:
            for tid, port in self._registered().items():
                self._targets[tid] = _Target(tid, port, now + settings.interval_seconds)
                self.registry.set(self.tg.arn, tid, port, "healthy" if tid in (healthy or set()) else "initial")
        self.refresh()
        self.server.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.stop()

    def settings(self) -> HealthCheckSettings:
        return HealthCheckSettings.of(self.tg, self.time_scale)

    def _registered(self) -> dict[str, int]:
        return {tid: int(t.get("Port") or self.tg.port) for tid, t in list(self.tg.targets.items())}

    # -- health checks ---------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self._step(time.monotonic())
            except Exception as e:  # noqa: BLE001 — keep the lab alive; the event log says what went wrong
                self.events.record("alb", "health checker error", error=repr(e))

    def _step(self, now: float) -> None:
        settings = self.settings()
        due: list[_Target] = []
        with self._lock:
            registered = self._registered()
            for tid, port in registered.items():
                t = self._targets.get(tid)
                if t is None or tid in self._draining:
                    # Newly registered (or registered again): initial until its first check passes.
                    # AWS gives no delay for that first check (registration itself takes a while
                    # there); the lab sends it one HealthCheckIntervalSeconds after registration.
                    self._draining.pop(tid, None)
                    self._targets[tid] = _Target(tid, port, now + settings.interval_seconds)
                    self.registry.set(self.tg.arn, tid, port, "initial")
                    self.events.record("alb", "target registered", instance=tid)
            for tid in [tid for tid in self._targets if tid not in registered and tid not in self._draining]:
                # Deregistered: draining for the target group's deregistration delay, then gone.
                t = self._targets.pop(tid)
                self._draining[tid] = now + settings.deregistration_delay_seconds
                self.registry.set(self.tg.arn, tid, t.port, "draining")
                self.events.record("alb", "target draining", instance=tid)
            for tid, until in list(self._draining.items()):
                if until <= now:
                    del self._draining[tid]
                    self.registry.forget(self.tg.arn, tid)
                    self.events.record("alb", "target deregistered", instance=tid)
            for t in self._targets.values():
                if t.next_check <= now and not t.in_flight:
                    # The next check is due an interval after this one was, however long it takes.
                    t.next_check = max(t.next_check + settings.interval_seconds, now)
                    t.in_flight = True
                    due.append(t)
        for t in due:
            threading.Thread(target=self._check, args=(t, settings), name=f"alb-check-{t.target_id}", daemon=True).start()
        self.refresh()

    def _check(self, t: _Target, settings: HealthCheckSettings) -> None:
        ok, reason, description = self._probe(t, settings)
        with self._lock:
            t.in_flight = False
            if self._targets.get(t.target_id) is not t:
                return  # deregistered meanwhile
            st = self.registry.get(self.tg.arn, t.target_id)
            if st is None or st.state == "draining":
                return
            t.checked += 1
            t.ok_streak, t.fail_streak = (t.ok_streak + 1, 0) if ok else (0, t.fail_streak + 1)
            new = st.state
            if st.state == "initial" and ok:
                new = "healthy"  # one passed check after registration
            elif st.state == "unhealthy" and t.ok_streak >= settings.healthy_threshold:
                new = "healthy"
            elif st.state in ("initial", "healthy") and t.fail_streak >= settings.unhealthy_threshold:
                new = "unhealthy"
            if new == "unhealthy" and not ok:
                # The reason code says why the last check failed (refused, timed out, wrong code).
                self.registry.set(self.tg.arn, t.target_id, t.port, new, reason, description)
            elif new != st.state:
                self.registry.set(self.tg.arn, t.target_id, t.port, new)
            elif new == "initial" and t.checked == 1:
                self.registry.set(self.tg.arn, t.target_id, t.port, "initial",
                                  "Elb.InitialHealthChecking", "Initial health checks in progress")
            if new != st.state:
                self.events.record("alb", f"target {new}", instance=t.target_id, reason=reason)
        self.refresh()

    def _probe(self, t: _Target, settings: HealthCheckSettings) -> tuple[bool, str | None, str | None]:
        where = self.resolve(t.target_id, t.port)
        if where is None:
            return False, "Target.FailedHealthChecks", "Health checks failed"
        req = Request("GET", settings.path, {"User-Agent": "ELB-HealthChecker/2.0"}, b"")
        try:
            resp = forward(where[0], where[1], req, connect_timeout=settings.timeout_seconds,
                           read_timeout=settings.timeout_seconds)
        except UpstreamError as e:
            if e.timed_out:
                return False, "Target.Timeout", "Request timed out"
            return False, "Target.FailedHealthChecks", "Health checks failed"
        if parse_matcher(settings.matcher)(resp.status):
            return True, None, None
        return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{resp.status}]"

    # -- data plane --------------------------------------------------------------------------
    def pool(self) -> list[tuple[str, int]]:
        """(target id, port) pairs the ALB would send a request to now."""
        states = self.registry.states(self.tg.arn)
        ids = set(routing_pool([(s.target_id, s.state) for s in states]))
        return [(s.target_id, s.port) for s in states if s.target_id in ids]

    def refresh(self) -> None:
        """Record the ground truth when what the ALB can route to changes.

        "no routable targets": nothing to route to (the ALB answers 503 itself). "no serving
        targets": none of the targets it routes to accepts a connection either, so from this instant
        every request gets a 5xx from the ALB — the instant users lose the web tier.
        """
        with self._lock:
            pool = self.pool()
            serving = sum(1 for tid, port in pool if self.resolve(tid, port) is not None)
            self._note(len(pool), "_routable_before", "routable targets", "no routable targets")
            self._note(serving, "_serving_before", "serving targets", "no serving targets")

    def _note(self, n: int, attr: str, up: str, down: str) -> None:
        before = getattr(self, attr)
        if (before or 0) > 0 and n == 0:
            self.events.record("alb", down)
        elif before == 0 and n > 0:
            self.events.record("alb", up, count=n)
        setattr(self, attr, n)

    def _route(self, req: Request) -> Response:
        resp, by_elb = self._answer(req)
        if self.on_response is not None:
            self.on_response(resp.status, by_elb)
        return resp

    def _answer(self, req: Request) -> tuple[Response, bool]:
        """The response, and whether the load balancer generated it (True) or the target did."""
        pool = self.pool()
        if not pool:
            return Response(503, list(ALB_HEADERS), ALB_503), True
        tid, port = pool[next(self._rr) % len(pool)]
        where = self.resolve(tid, port)
        if where is None:
            return Response(502, list(ALB_HEADERS), ALB_502), True  # TCP RST from the target
        try:
            return forward(where[0], where[1], req, connect_timeout=1.0, read_timeout=self.idle_timeout), False
        except UpstreamError as e:
            body, code = (ALB_504, 504) if e.timed_out else (ALB_502, 502)
            return Response(code, list(ALB_HEADERS), body), True
