"""The lab's ALB (lab/alb.py), in-process, without moto: routing and health checks as AWS documents them.

A stand-in for moto's FakeTargetGroup holds the settings and the registered targets; small HTTP
servers play the targets and log every request they get. Pinned (ELB User Guide, *Health checks for
Application Load Balancer target groups*): requests only to healthy targets; fail open only when
every registered target is unhealthy; `initial` and `draining` targets get nothing, and with nothing
to route to the ALB answers 503; a target is healthy after its first passed check, then out after
UnhealthyThresholdCount failures and back after HealthyThresholdCount passes, at the target
group's own interval — read from the target group at each check.
"""
from __future__ import annotations

import itertools
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from lab.alb import Alb, HealthCheckSettings, parse_matcher, routing_pool
from lab.aws.elbv2 import TargetHealthRegistry
from lab.events import EventLog, read_events
from lab.httpfwd import Request, Response, Server
from lab.ports import free_port

SCALE = 30.0  # interval 3 s -> 0.1 s
V = TypeVar("V")


# -- pure rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("states, pool", [
    ([("a", "healthy"), ("b", "initial")], ["a"]),  # an initial target gets nothing beside a healthy one
    ([("a", "healthy"), ("b", "unhealthy"), ("c", "draining")], ["a"]),
    ([("a", "unhealthy"), ("b", "unhealthy")], ["a", "b"]),  # all registered unhealthy: fail open
    ([("a", "unhealthy"), ("b", "unhealthy"), ("c", "draining")], ["a", "b"]),  # draining is not registered
    ([("a", "unhealthy"), ("b", "initial")], []),  # not "only unhealthy": nothing
    ([("a", "initial")], []),
    ([("a", "draining")], []),
    ([], []),
])
def test_routing_pool_follows_the_documented_rules(states: list[tuple[str, str]], pool: list[str]) -> None:
    assert routing_pool(states) == pool


@pytest.mark.parametrize("code, yes, no", [
    ("200", [200], [201, 302, 500]),
    ("200,202", [200, 202], [201, 204]),
    ("200-299", [200, 250, 299], [199, 300]),
    ("200-299, 302", [204, 302], [301, 404]),
])
def test_matcher(code: str, yes: list[int], no: list[int]) -> None:
    m = parse_matcher(code)
    assert all(m(s) for s in yes) and not any(m(s) for s in no)


def test_settings_are_read_from_the_target_group_and_scaled() -> None:
    tg = fake_tg(interval=30, timeout=5, healthy="5", unhealthy="2", matcher="200-399", dereg="300")
    s = HealthCheckSettings.of(tg, 30.0)
    assert (s.interval_seconds, s.timeout_seconds, s.deregistration_delay_seconds) == pytest.approx((1.0, 5 / 30, 10.0))
    assert (s.healthy_threshold, s.unhealthy_threshold, s.matcher, s.path) == (5, 2, "200-399", "/actuator/health")
    tg.health_check_interval_seconds, tg.unhealthy_threshold_count = 60, "7"  # modify_target_group
    s = HealthCheckSettings.of(tg, 30.0)
    assert s.interval_seconds == pytest.approx(2.0) and s.unhealthy_threshold == 7


# -- the ALB against real HTTP targets ---------------------------------------------------------------
def fake_tg(*, interval: float = 3, timeout: float = 2, healthy: Any = 5, unhealthy: Any = 2,
            matcher: str = "200", dereg: Any = 0) -> Any:
    """The attributes of moto's FakeTargetGroup the lab's ALB reads."""
    return SimpleNamespace(
        arn="arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/t/1", port=80,
        health_check_path="/actuator/health", health_check_interval_seconds=interval,
        health_check_timeout_seconds=timeout, healthy_threshold_count=healthy, unhealthy_threshold_count=unhealthy,
        matcher={"HttpCode": matcher}, attributes={"deregistration_delay.timeout_seconds": dereg},
        targets=OrderedDict(),
    )


class Target:
    """A target: answers /actuator/health with `health_status`, anything else 200 "served by <name>"."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.health_status = 200
        self.checks: list[float] = []
        self.requests: list[str] = []
        self.server = Server(free_port(), self.handle).start()
        self.port = self.server.port

    def handle(self, req: Request) -> Response:
        if req.path == "/actuator/health":
            self.checks.append(time.monotonic())
            return Response(self.health_status, [("Content-Type", "text/plain")], b"health")
        self.requests.append(req.path)
        return Response(200, [("Content-Type", "text/plain")], f"served by {self.name}".encode())


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[SimpleNamespace]:
    tg, registry = fake_tg(), TargetHealthRegistry()
    events = EventLog(tmp_path / "events.jsonl")
    refused: set[str] = set()
    alb = Alb(target_group=tg, registry=registry, time_scale=SCALE, events=events, idle_timeout_seconds=2.0,
              resolve=lambda tid, port: None if tid in refused else ("127.0.0.1", port))
    targets: list[Target] = []

    def add(name: str) -> Target:
        t = Target(name)
        targets.append(t)
        tg.targets[name] = {"Id": name, "Port": t.port}  # register_targets
        return t

    alb.start()
    try:
        yield SimpleNamespace(tg=tg, registry=registry, alb=alb, add=add, refused=refused, events=events,
                              state=lambda tid: getattr(registry.get(tg.arn, tid), "state", None))
    finally:
        # Each server's shutdown waits out its poll interval: stop them all at once.
        servers: list[Any] = [alb, *(t.server for t in targets)]
        stops = [threading.Thread(target=x.stop) for x in servers]
        for th in stops:
            th.start()
        for th in stops:
            th.join()
        events.close()


def get(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/owners", timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_for(fn: Callable[[], V], timeout: float, what: str) -> V:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s (last {v!r})")
        time.sleep(0.01)


def while_initial(rig: SimpleNamespace, tid: str, call: Callable[[], V]) -> list[V]:
    """`call`'s results for as long as `tid` stays `initial`, counting only calls made wholly inside."""
    out: list[V] = []
    while rig.state(tid) == "initial":
        result = call()
        if rig.state(tid) == "initial":
            out.append(result)
    return out


def test_nothing_registered_is_503(rig: SimpleNamespace) -> None:
    status, body = get(rig.alb.port)
    assert status == 503 and "Service Temporarily Unavailable" in body


def test_a_new_target_is_healthy_after_its_first_check_and_gets_nothing_before(rig: SimpleNamespace) -> None:
    rig.tg.healthy_threshold_count = "10"  # the first check is enough, whatever the threshold
    rig.tg.health_check_interval_seconds = 15  # 0.5 s: a window to send requests while it is initial
    a = rig.add("a")
    wait_for(lambda: rig.state("a") == "initial", 2, "registered initial")
    answers = while_initial(rig, "a", lambda: get(rig.alb.port))
    assert len(answers) >= 3 and {status for status, _ in answers} == {503}  # none reached the target
    wait_for(lambda: rig.state("a") == "healthy", 2, "healthy")
    assert len(a.checks) == 1
    assert get(rig.alb.port) == (200, "served by a")


def test_initial_target_gets_no_traffic_beside_a_healthy_one(rig: SimpleNamespace) -> None:
    rig.add("a")
    wait_for(lambda: rig.state("a") == "healthy", 2, "a healthy")
    rig.tg.health_check_interval_seconds = 30  # 1 s before b's first check
    rig.add("b")
    wait_for(lambda: rig.state("b") == "initial", 2, "b registered")
    answers = while_initial(rig, "b", lambda: get(rig.alb.port))
    assert len(answers) >= 5 and set(answers) == {(200, "served by a")}
    wait_for(lambda: rig.state("b") == "healthy", 3, "b healthy")
    served = {get(rig.alb.port)[1] for _ in range(6)}
    assert served == {"served by a", "served by b"}  # both healthy: both get requests


def test_thresholds_and_interval_come_from_the_target_group(rig: SimpleNamespace) -> None:
    tg = rig.tg
    for unhealthy, healthy in ((2, 3), (4, 2)):
        tg.unhealthy_threshold_count, tg.healthy_threshold_count = str(unhealthy), str(healthy)
        a = rig.add(f"a{unhealthy}")
        wait_for(lambda: rig.state(a.name) == "healthy", 2, "healthy")  # noqa: B023 — wait_for calls it at once, in this iteration
        a.health_status = 503
        n0 = len(a.checks)
        wait_for(lambda: rig.state(a.name) == "unhealthy", 3, "unhealthy")  # noqa: B023 — wait_for calls it at once, in this iteration
        assert len(a.checks) - n0 == unhealthy  # out of service after exactly UnhealthyThresholdCount failures
        reason = rig.registry.get(tg.arn, a.name)
        assert (reason.reason, reason.description) == ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [503]")
        a.health_status = 200
        n1 = len(a.checks)
        wait_for(lambda: rig.state(a.name) == "healthy", 3, "healthy again")  # noqa: B023 — wait_for calls it at once, in this iteration
        assert len(a.checks) - n1 == healthy  # back after exactly HealthyThresholdCount passes
        del tg.targets[a.name]
        wait_for(lambda: rig.state(a.name) is None, 2, "deregistered")  # noqa: B023 — wait_for calls it at once, in this iteration
    # The interval: checks of one target come HealthCheckIntervalSeconds apart, as now set.
    for interval in (3, 9):  # 0.1 s, 0.3 s
        tg.health_check_interval_seconds = interval
        b = rig.add(f"b{interval}")
        wait_for(lambda: len(b.checks) >= 5, 5, "five checks")  # noqa: B023 — wait_for calls it at once, in this iteration
        gaps = sorted(y - x for x, y in itertools.pairwise(b.checks))
        assert gaps[len(gaps) // 2] == pytest.approx(interval / SCALE, rel=0.35), gaps
        del tg.targets[b.name]


def test_all_unhealthy_fails_open_and_refused_connections_are_502(rig: SimpleNamespace) -> None:
    a, b = rig.add("a"), rig.add("b")
    wait_for(lambda: rig.state("a") == rig.state("b") == "healthy", 2, "both healthy")
    a.health_status = b.health_status = 500
    wait_for(lambda: rig.state("a") == rig.state("b") == "unhealthy", 3, "both unhealthy")
    served = {get(rig.alb.port)[1] for _ in range(6)}
    assert served == {"served by a", "served by b"}  # fail open: routed to the unhealthy targets
    rig.refused.update({"a", "b"})  # their nodes refuse connections now
    status, body = get(rig.alb.port)
    assert status == 502 and "Bad Gateway" in body
    events = wait_for(lambda: (lambda ev: ev if "no serving targets" in ev else None)(
        [e["event"] for e in read_events(rig.events.path)]), 1, "the ground truth recorded")
    assert "no routable targets" not in events  # still routable (fail open), yet none serving


def test_a_deregistered_target_drains_for_the_target_groups_delay(rig: SimpleNamespace) -> None:
    rig.tg.attributes["deregistration_delay.timeout_seconds"] = "15"  # 0.5 s
    a = rig.add("a")
    wait_for(lambda: rig.state("a") == "healthy", 2, "healthy")
    del rig.tg.targets["a"]  # deregister_targets
    wait_for(lambda: rig.state("a") == "draining", 1, "draining")
    t0 = time.monotonic()
    assert get(rig.alb.port)[0] == 503 and a.requests == []  # draining: no new requests; none registered: 503
    wait_for(lambda: rig.state("a") is None, 2, "gone")
    assert time.monotonic() - t0 == pytest.approx(0.5, abs=0.25)
