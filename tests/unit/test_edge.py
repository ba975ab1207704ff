"""The lab's CloudFront edge (lab/edge.py), in-process, without the lab.

A CloudFrontModel with a fake clock holds the distribution's configurations; two small HTTP
servers play the primary and secondary origins; the Edge resolves the origins' domain names to
them. What is pinned is CloudFront's documented data-plane behaviour (CloudFront Developer Guide,
"Values that you specify when you create or update a distribution": *Path pattern*, *Allowed HTTP
methods*, *Connection attempts*, *Connection timeout*, *Response timeout*; "Optimize high
availability with CloudFront origin failover"): cache behaviors chosen by path pattern, first match
first, the default last; a method a behavior does not allow answered 403; per-request failover for
GET/HEAD/OPTIONS only, on the configured status codes, a failed connection or a timeout; the primary
tried first on every request; connection attempts retried for every method, a response timeout
retried for GET/HEAD only, and the time before failover adding up attempt by attempt; a
configuration change served only once its deployment has finished.
"""
from __future__ import annotations

import copy
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.aws import path_pattern_matches
from lab.aws.cloudfront import (
    FIRST_ARRIVAL,
    BehaviorSpec,
    CloudFrontModel,
    EdgeConfig,
    OriginSpec,
    arrival_fractions,
    edge_config_from_raw,
)
from lab.aws.seed import ALL_METHODS, READ_METHODS, distribution_config
from lab.edge import Edge, path_matches, select_behavior
from lab.events import EventLog, read_events
from lab.httpfwd import Request, Response, Server
from lab.ports import free_port

DIST = "E2LABTEST00001"
PRIMARY_HOST = "primary.origin.test"
SECONDARY_HOST = "secondary.origin.test"
PRIMARY_ID, SECONDARY_ID, GROUP_ID = "primary-aws", "secondary-azure", "petclinic-failover"
TIME_SCALE = 10.0  # ConnectionTimeout and OriginReadTimeout N s -> N/10 s
FAILOVER_CODES = [500, 502, 503, 504]
WRITE_PATHS = ["/owners/new", "/owners/*/edit", "/owners/*/pets/new", "/owners/*/pets/*/edit", "/owners/*/pets/*/visits/new"]
SLACK = 1.0  # scheduling slack on a loaded 2-core machine, for the upper bounds of timed waits


# -- fakes ---------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Origin:
    """A stdlib HTTP origin whose answer the test sets; it counts what reached it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.hang = False  # accept the request, never answer (until released at teardown)
        self.hang_only: int | None = None  # with `hang`: hang only this many more requests
        self.hits: list[Request] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = Server(free_port(), self._handle).start()

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def methods(self) -> list[str]:
        with self._lock:
            return [r.method for r in self.hits]

    def _handle(self, req: Request) -> Response:
        with self._lock:
            self.hits.append(req)
            hang = self.hang and (self.hang_only is None or self.hang_only > 0)
            if hang and self.hang_only is not None:
                self.hang_only -= 1
        if hang:
            self._release.wait(10)
        body = f"{self.name} says {self.status}".encode()
        return Response(self.status, [("Content-Type", "text/plain"), ("X-Origin", self.name), ("Via", "1.1 origin")], body)

    def stop(self) -> None:
        self._release.set()
        self.server.stop()


def raw_config(
    *,
    target: str = GROUP_ID,
    codes: list[int] = FAILOVER_CODES,
    read_timeout: int = 30,
    connection_timeout: int = 10,
    connection_attempts: int = 3,
    completion_timeout: int | None = None,
    enabled: bool = True,
    comment: str = "",
) -> dict[str, Any]:
    """A distribution config shaped like the seed's (and boto3's get_distribution_config)."""
    cfg = distribution_config(PRIMARY_HOST)
    cfg["Enabled"] = enabled
    cfg["Comment"] = comment
    primary, secondary = cfg["Origins"]["Items"]
    assert (primary["Id"], secondary["Id"]) == (PRIMARY_ID, SECONDARY_ID)
    secondary["DomainName"] = SECONDARY_HOST
    primary["CustomOriginConfig"]["OriginReadTimeout"] = read_timeout
    primary["ConnectionTimeout"] = connection_timeout
    primary["ConnectionAttempts"] = connection_attempts
    if completion_timeout is not None:
        primary["ResponseCompletionTimeout"] = completion_timeout
    group = cfg["OriginGroups"]["Items"][0]
    assert group["Id"] == GROUP_ID
    group["FailoverCriteria"]["StatusCodes"] = {"Quantity": len(codes), "Items": list(codes)}
    cfg["DefaultCacheBehavior"]["TargetOriginId"] = target
    return cfg


def with_behaviors(cfg: dict[str, Any], *behaviors: tuple[str, str, list[str]], default: str | None = None) -> dict[str, Any]:
    """`cfg` with these ordered cache behaviors (path pattern, target, allowed methods) instead of the seed's."""
    template = {k: v for k, v in cfg["DefaultCacheBehavior"].items() if k not in ("TargetOriginId", "AllowedMethods")}
    items = [{**copy.deepcopy(template), "PathPattern": pattern, "TargetOriginId": target,
              "AllowedMethods": {"Quantity": len(methods), "Items": list(methods)}} for pattern, target, methods in behaviors]
    cfg["CacheBehaviors"] = {"Quantity": len(items), "Items": items}
    if default is not None:
        cfg["DefaultCacheBehavior"]["TargetOriginId"] = default
    return cfg


class Blackhole:
    """A loopback address where a connection is never accepted: its one-slot accept queue is full,
    so the kernel drops further SYNs and a connect waits out its timeout (a firewalled origin)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.filler = socket.create_connection(self.sock.getsockname(), timeout=2)  # fills the queue
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect(self.sock.getsockname())
            raise RuntimeError("the kernel accepted a connection beyond the backlog: no blackhole here")
        except TimeoutError:
            pass
        finally:
            probe.close()

    @property
    def addr(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return (host, port)

    def close(self) -> None:
        self.filler.close()
        self.sock.close()


class Stalling:
    """An origin that answers a status line, headers and part of the body, then stops sending."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def addr(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return (host, port)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._conns.append(conn)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\npart of the bo")

    def close(self) -> None:
        self._stop.set()
        for c in self._conns:
            c.close()
        self.sock.close()


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.model = CloudFrontModel(deploy_seconds=100.0, invalidation_seconds=10.0, clock=self.clock)
        self.events = EventLog(tmp_path / "events.jsonl")
        self.primary = Origin("primary")
        self.secondary = Origin("secondary")
        self.dns: dict[str, tuple[str, int]] = {PRIMARY_HOST: self.primary.addr, SECONDARY_HOST: self.secondary.addr}
        self.edge: Edge | None = None
        self._closers: list[Any] = []

    def start(self, cfg: dict[str, Any] | None = None, etag: str = "ETAG-A") -> Harness:
        self.model.record(DIST, cfg if cfg is not None else raw_config(), etag, immediate=True)
        self.edge = Edge(free_port(), DIST, self.model, self.dns.get, TIME_SCALE, self.events).start()
        return self

    def refuse_primary(self) -> None:
        self.dns[PRIMARY_HOST] = ("127.0.0.1", free_port())  # nothing listens there

    def blackhole_primary(self) -> None:
        hole = Blackhole()
        self._closers.append(hole.close)
        self.dns[PRIMARY_HOST] = hole.addr

    def stall_primary(self) -> Stalling:
        stalling = Stalling()
        self._closers.append(stalling.close)
        self.dns[PRIMARY_HOST] = stalling.addr
        return stalling

    def timed(self, method: str = "GET", path: str = "/", body: bytes | None = None) -> tuple[int, dict[str, str], bytes, float]:
        t0 = time.monotonic()
        status, headers, payload = self.request(method, path, body)
        return status, headers, payload, time.monotonic() - t0

    def request(self, method: str = "GET", path: str = "/", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        assert self.edge is not None
        conn = http.client.HTTPConnection("127.0.0.1", self.edge.server.port, timeout=15)
        try:
            conn.request(method, path, body=body, headers={"Host": "blueisthenewblack.store"})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def served_origins(self) -> list[str]:
        return [e.detail["origin"] for e in self.events.events("serving origin")]

    def stop(self) -> None:
        # serve_forever notices shutdown only at its next poll: stop the servers side by side.
        stops = [self.primary.stop, self.secondary.stop] + ([self.edge.stop] if self.edge else [])
        threads = [threading.Thread(target=f) for f in stops]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for close in self._closers:
            close()
        self.events.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.stop()


# -- origin-group failover ------------------------------------------------------------------------
def test_healthy_primary_is_served_and_the_secondary_is_not_asked(h: Harness) -> None:
    h.start()
    status, headers, body = h.request("GET", "/owners?lastName=Davis")
    assert (status, headers["x-origin"], body) == (200, "primary", b"primary says 200")
    assert headers["x-cache"] == "Miss from cloudfront"
    assert "CloudFront" in headers["via"] and "origin" not in headers["via"]  # the origin's Via is replaced
    assert h.secondary.hits == []
    [hit] = h.primary.hits
    # CloudFront sends the origin's domain name as Host and keeps path and query.
    assert (hit.method, hit.path, hit.headers["Host"]) == ("GET", "/owners?lastName=Davis", PRIMARY_HOST)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("code", FAILOVER_CODES)
def test_failover_status_on_primary_is_retried_on_secondary(h: Harness, method: str, code: int) -> None:
    h.start()
    h.primary.status = code
    status, headers, body = h.request(method)
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert body == (b"" if method == "HEAD" else b"secondary says 200")
    assert h.primary.methods() == [method] and h.secondary.methods() == [method]
    assert h.secondary.hits[0].headers["Host"] == SECONDARY_HOST


@pytest.mark.parametrize("code", [403, 404])
def test_status_not_in_failover_criteria_is_passed_through(h: Harness, code: int) -> None:
    h.start()
    h.primary.status = code
    status, headers, body = h.request("GET", "/owners/999")
    assert (status, headers["x-origin"], body) == (code, "primary", f"primary says {code}".encode())
    assert headers["x-cache"] == "Error from cloudfront"  # CloudFront's word for any error status
    assert h.secondary.hits == []


def test_failover_codes_come_from_the_origin_group(h: Harness) -> None:
    """With criteria {403, 404}: a 404 fails over, a 503 (not configured) is passed through."""
    h.start(raw_config(codes=[403, 404]))
    h.primary.status = 404
    status, headers, _ = h.request()
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert h.secondary.methods() == ["GET"]
    h.primary.status = 503
    status, headers, _ = h.request()
    assert (status, headers["x-origin"]) == (503, "primary")
    assert h.secondary.methods() == ["GET"]


def test_refused_connection_on_primary_fails_over(h: Harness) -> None:
    h.start()
    h.refuse_primary()
    status, headers, body, took = h.timed()
    assert (status, headers["x-origin"], body) == (200, "secondary", b"secondary says 200")
    assert took < 1.0  # refused is immediate: no connection timeout was waited, whatever the attempts
    assert h.primary.hits == []


def test_every_request_tries_the_primary_first(h: Harness) -> None:
    h.start()
    h.primary.status = 503
    for _ in range(3):
        assert h.request()[1]["x-origin"] == "secondary"
    assert len(h.primary.hits) == 3  # no stickiness to the secondary after a failover
    h.primary.status = 200
    status, headers, _ = h.request()
    assert (status, headers["x-origin"]) == (200, "primary")
    assert (len(h.primary.hits), len(h.secondary.hits)) == (4, 3)


def test_both_origins_unreachable_gives_cloudfront_502(h: Harness) -> None:
    h.start()
    h.refuse_primary()
    h.dns[SECONDARY_HOST] = ("127.0.0.1", free_port())
    status, headers, body = h.request()
    assert status == 502
    assert b"502 ERROR" in body and b"The request could not be satisfied" in body
    assert headers["x-cache"] == "Error from cloudfront"
    assert "x-origin" not in headers


def test_both_origins_failing_with_status_returns_the_secondarys_answer(h: Harness) -> None:
    h.start()
    h.primary.status, h.secondary.status = 503, 500
    status, headers, body = h.request()
    assert (status, headers["x-origin"], body) == (500, "secondary", b"secondary says 500")
    assert (len(h.primary.hits), len(h.secondary.hits)) == (1, 1)


def test_unresolvable_primary_fails_over(h: Harness) -> None:
    h.start()
    del h.dns[PRIMARY_HOST]
    assert h.request()[1]["x-origin"] == "secondary"


def test_single_origin_default_target_has_no_failover(h: Harness) -> None:
    h.start(raw_config(target=PRIMARY_ID))
    status, headers, _ = h.request()
    assert (status, headers["x-origin"]) == (200, "primary")
    h.primary.status = 503
    status, headers, _ = h.request()
    assert (status, headers["x-origin"]) == (503, "primary")
    assert h.secondary.hits == []


def test_disabled_distribution_answers_403_without_asking_origins(h: Harness) -> None:
    h.start(raw_config(enabled=False))
    assert h.request()[0] == 403
    assert h.primary.hits == [] and h.secondary.hits == []


# -- cache behaviors: path patterns, allowed methods, targets --------------------------------------
@pytest.mark.parametrize(("pattern", "path", "matches"), [
    # The Developer Guide's own examples (*Path pattern*).
    ("*.jpg", "/logo.jpg", True),
    ("*.jpg", "/images/product1/logo.jpg", True),  # `*` spans directories
    ("images/*.jpg", "/images/product1/x.jpg", True),  # the leading / is optional
    ("/images/*.jpg", "/images/x.jpg", True),
    ("images/*.jpg", "/other/images/x.jpg", False),  # anchored at the start of the path
    ("a??.jpg", "/ant.jpg", True),
    ("a??.jpg", "/an.jpg", False),  # `?` is exactly one character
    ("*.doc*", "/report.docx", True),
    ("*.doc*", "/report.doc", True),
    ("*.doc?", "/report.doc", False),
    ("*.jpg", "/LOGO.JPG", False),  # case-sensitive
    ("/owners/*/edit", "/owners/7/edit", True),
    ("/owners/*/edit", "/owners/7/pets/3/edit", True),
    ("/owners/new", "/owners/new/", False),  # the whole path
    ("/owners/new", "/owners/new?lastName=x", True),  # never the query string
    ("/a+b.(c)", "/a+b.(c)", True),  # other characters are literal
    ("/a+b.(c)", "/aab.(c)", False),
])
def test_path_patterns_follow_cloudfront_rules(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path.split("?", 1)[0]) is matches
    # The drill's own reading of the distribution (which behavior a path takes) agrees with the edge.
    assert path_pattern_matches(pattern, path) is matches
    cfg = edge_config_from_raw(with_behaviors(raw_config(), (pattern, PRIMARY_ID, READ_METHODS), default=SECONDARY_ID), "E")
    assert select_behavior(cfg, path).path_pattern == (pattern if matches else "*")


def test_the_first_matching_behavior_wins_and_the_default_comes_last(h: Harness) -> None:
    h.start(with_behaviors(raw_config(), ("/img/*", SECONDARY_ID, READ_METHODS), ("/img/*.jpg", PRIMARY_ID, READ_METHODS),
                           default=PRIMARY_ID))
    assert h.request("GET", "/img/a.jpg")[1]["x-origin"] == "secondary"  # also matches the second: the first wins
    assert h.request("GET", "/images/a.jpg")[1]["x-origin"] == "primary"  # no ordered match: the default
    h.model.record(DIST, with_behaviors(raw_config(), ("/img/*.jpg", PRIMARY_ID, READ_METHODS),
                                        ("/img/*", SECONDARY_ID, READ_METHODS), default=SECONDARY_ID), "ETAG-B", immediate=True)
    assert h.request("GET", "/img/a.jpg")[1]["x-origin"] == "primary"  # reordered: now the .jpg one is first
    assert h.request("GET", "/img/a.png")[1]["x-origin"] == "secondary"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_method_the_behavior_does_not_allow_is_403_from_the_edge(h: Harness, method: str) -> None:
    """The seed's default behavior (GET/HEAD/OPTIONS, the origin group): writes never reach an origin."""
    h.start()
    status, headers, body = h.request(method, "/owners", body=b"x=1")
    assert status == 403 and headers["x-cache"] == "Error from cloudfront"
    assert b"not configured to allow the HTTP request method" in body
    assert h.primary.hits == [] and h.secondary.hits == []


def test_default_allowed_methods_are_get_and_head(h: Harness) -> None:
    cfg = raw_config(target=PRIMARY_ID)
    del cfg["DefaultCacheBehavior"]["AllowedMethods"]
    h.start(cfg)
    assert h.request("HEAD")[0] == 200 and h.request("GET")[0] == 200
    assert h.request("OPTIONS")[0] == 403
    assert h.primary.methods() == ["HEAD", "GET"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_follows_its_behavior_to_the_primary_and_never_fails_over(h: Harness, method: str) -> None:
    """The seed's write paths go to the primary origin directly: while the primary fails, a write gets
    the primary's error (here the ALB's 503), whatever the secondary could serve."""
    h.start()
    h.primary.status = 503
    status, headers, body = h.request(method, "/owners/new", body=b"firstName=Ann")
    assert (status, headers["x-origin"], body) == (503, "primary", b"primary says 503")
    assert h.secondary.hits == []
    assert h.primary.hits[0].body == b"firstName=Ann"
    # The same request on a healthy primary is simply forwarded.
    h.primary.status = 302
    assert h.request(method, "/owners/12/pets/3/edit", body=b"name=Rex")[0] == 302
    assert h.secondary.hits == []


def test_a_write_paths_form_page_does_not_fail_over_either(h: Harness) -> None:
    """A behavior is chosen by path, not method: the GET of a write path's form takes it too."""
    h.start()
    h.primary.status = 503
    assert h.request("GET", "/")[1]["x-origin"] == "secondary"  # pages: maintenance
    status, headers, _ = h.request("GET", "/owners/new")
    assert (status, headers["x-origin"]) == (503, "primary")  # the form: the primary's error
    assert h.secondary.methods() == ["GET"]


def test_post_to_a_refused_primary_gets_cloudfront_502_not_the_secondary(h: Harness) -> None:
    h.start()
    h.refuse_primary()
    status, headers, body = h.request("POST", "/owners/new", body=b"x=1")
    assert status == 502 and b"502 ERROR" in body
    assert headers["x-cache"] == "Error from cloudfront"
    assert h.secondary.hits == []


def test_a_group_behavior_only_ever_fails_over_read_methods(h: Harness) -> None:
    """The API refuses write methods on an origin-group behavior; should a config slip through, the
    edge still fails over GET/HEAD/OPTIONS only (Developer Guide, origin failover)."""
    cfg = raw_config()
    cfg["DefaultCacheBehavior"]["AllowedMethods"] = {"Quantity": len(ALL_METHODS), "Items": list(ALL_METHODS)}
    h.model.record(DIST, cfg, "E-UNCHECKED", immediate=True)
    h.edge = Edge(free_port(), DIST, h.model, h.dns.get, TIME_SCALE, h.events).start()
    h.primary.status = 503
    assert h.request("POST", "/owners", body=b"x")[1]["x-origin"] == "primary"
    assert h.request("OPTIONS", "/owners")[1]["x-origin"] == "secondary"
    assert h.secondary.methods() == ["OPTIONS"]


# -- origin timeouts and attempts ------------------------------------------------------------------
@pytest.mark.parametrize("attempts", [1, 3])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_response_timeout_on_get_or_head_is_retried_up_to_the_attempts_then_fails_over(
    h: Harness, method: str, attempts: int
) -> None:
    """*Response timeout*: "CloudFront drops the connection ... tries again to get a complete response
    ... up to 3 times, as determined by the value of the origin connection attempts setting"; only
    then does the origin group fail over: attempts x response timeout before the secondary is asked."""
    read = 2  # s -> 0.2 s per attempt
    h.start(raw_config(read_timeout=read, connection_attempts=attempts))
    h.primary.hang = True
    status, headers, _, took = h.timed(method)
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert h.primary.methods() == [method] * attempts
    budget = attempts * read / TIME_SCALE
    assert budget <= took < budget + SLACK


@pytest.mark.parametrize("method", ["OPTIONS"])
def test_a_response_timeout_on_options_is_not_retried_but_fails_over(h: Harness, method: str) -> None:
    """OPTIONS fails over (origin failover) but is one of the methods not tried again on a response timeout."""
    read = 3
    h.start(raw_config(read_timeout=read, connection_attempts=3))
    h.primary.hang = True
    status, headers, _, took = h.timed(method)
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert h.primary.methods() == [method]
    assert read / TIME_SCALE <= took < read / TIME_SCALE + SLACK


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_response_timeout_on_a_write_is_not_retried_and_answered_504(h: Harness, method: str) -> None:
    """"DELETE, OPTIONS, PATCH, PUT, and POST requests – ... CloudFront drops the connection and doesn't
    try again to contact the origin": the write reached the origin once, the user gets CloudFront's 504."""
    read = 3
    h.start(raw_config(read_timeout=read, connection_attempts=3))
    h.primary.hang = True
    status, headers, body, took = h.timed(method, "/owners/new", b"x=1")
    assert status == 504 and b"504" in body and headers["x-cache"] == "Error from cloudfront"
    assert h.primary.methods() == [method] and h.secondary.hits == []
    assert read / TIME_SCALE <= took < read / TIME_SCALE + SLACK


def test_a_get_whose_retry_answers_is_served_by_the_primary(h: Harness) -> None:
    """One response timeout, then the next attempt answers: no failover, one timeout's delay."""
    read = 3
    h.start(raw_config(read_timeout=read, connection_attempts=3))
    h.primary.hang, h.primary.hang_only = True, 1
    status, headers, _, took = h.timed()
    assert (status, headers["x-origin"]) == (200, "primary")
    assert len(h.primary.hits) == 2 and h.secondary.hits == []
    assert read / TIME_SCALE <= took < read / TIME_SCALE + SLACK


def test_a_response_that_stops_between_packets_times_out_too(h: Harness) -> None:
    """The response timeout also bounds the wait between packets: a stalled body is retried (GET)."""
    read = 2
    h.start(raw_config(read_timeout=read, connection_attempts=2))
    stalling = h.stall_primary()
    status, headers, _, took = h.timed()
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert stalling.accepted == 2
    assert 2 * read / TIME_SCALE <= took < 2 * read / TIME_SCALE + SLACK


def test_a_response_completion_timeout_caps_the_whole_wait_retries_included(h: Harness) -> None:
    """*Response completion timeout*: the most CloudFront waits for a complete response, across
    packets and retries. 3 attempts x 0.3 s would be 0.9 s; a 0.5 s cap cuts the second attempt."""
    read, completion = 3, 5
    h.start(raw_config(read_timeout=read, connection_attempts=3, completion_timeout=completion))
    h.primary.hang = True
    status, headers, _, took = h.timed()
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert len(h.primary.hits) == 2
    assert completion / TIME_SCALE <= took < completion / TIME_SCALE + SLACK


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_connection_timeout_is_retried_up_to_the_attempts_then_fails_over(h: Harness, attempts: int) -> None:
    """*Connection timeout*: tried again up to ConnectionAttempts, then the secondary: by default
    3 x 10 s = 30 s before failover (here ConnectionTimeout 2 s, scaled to 0.2 s)."""
    connect = 2
    h.start(raw_config(connection_timeout=connect, connection_attempts=attempts, read_timeout=30))
    h.blackhole_primary()
    status, headers, _, took = h.timed()
    assert (status, headers["x-origin"]) == (200, "secondary")
    budget = attempts * connect / TIME_SCALE
    assert budget <= took < budget + SLACK


def test_a_write_waits_out_every_connection_attempt_then_gets_504(h: Harness) -> None:
    """A connection never made carries no request: every method is tried again, a write too."""
    connect, attempts = 2, 3
    h.start(raw_config(connection_timeout=connect, connection_attempts=attempts))
    h.blackhole_primary()
    status, headers, _, took = h.timed("POST", "/owners/new", b"x=1")
    assert status == 504 and headers["x-cache"] == "Error from cloudfront" and h.secondary.hits == []
    budget = attempts * connect / TIME_SCALE
    assert budget <= took < budget + SLACK


# -- deployment delay ----------------------------------------------------------------------------
def test_new_config_is_served_only_after_its_deployment(h: Harness) -> None:
    h.start(etag="ETAG-A")
    assert h.model.deployed_at(DIST) <= h.clock.now
    # Change: the default behaviour goes straight to the secondary (what a "switch to Azure" does).
    at = h.model.record(DIST, raw_config(target=SECONDARY_ID), "ETAG-B")
    assert at == h.clock.now + 100.0 == h.model.deployed_at(DIST)
    active = h.model.active(DIST)
    assert active is not None and active.etag == "ETAG-A"  # the previous config stays active
    assert h.request()[1]["x-origin"] == "primary"

    h.clock.now = at - 0.001
    assert h.model.active(DIST).etag == "ETAG-A"
    assert h.request()[1]["x-origin"] == "primary"

    h.clock.now = at
    assert h.model.active(DIST).etag == "ETAG-B"
    status, headers, _ = h.request()
    assert (status, headers["x-origin"]) == (200, "secondary")
    assert len(h.primary.hits) == 2  # the deployed config no longer asks the primary


def test_a_later_change_waits_for_its_own_deployment(h: Harness) -> None:
    h.start(etag="ETAG-A")
    b_at = h.model.record(DIST, raw_config(target=SECONDARY_ID), "ETAG-B")
    h.clock.now += 50
    c_at = h.model.record(DIST, raw_config(), "ETAG-C")  # back to the group, before B finished
    assert c_at == b_at + 50 and h.model.deployed_at(DIST) == c_at
    h.clock.now = b_at
    assert h.model.active(DIST).etag == "ETAG-B"
    assert h.request()[1]["x-origin"] == "secondary"
    h.clock.now = c_at
    assert h.model.active(DIST).etag == "ETAG-C"
    assert h.request()[1]["x-origin"] == "primary"


def test_model_without_a_deployed_config(tmp_path: Path) -> None:
    clock = FakeClock()
    model = CloudFrontModel(deploy_seconds=5.0, invalidation_seconds=1.0, clock=clock)
    assert model.active(DIST) is None and model.deployed_at(DIST) == 0.0 and model.distribution_ids() == []
    model.record(DIST, raw_config(), "E1")
    assert model.active(DIST) is None  # first deployment still in progress
    assert model.distribution_ids() == [DIST]
    clock.now += 5.0
    assert model.active(DIST) is not None


def test_edge_answers_403_while_the_first_deployment_is_in_progress(h: Harness) -> None:
    h.edge = Edge(free_port(), DIST, h.model, h.dns.get, TIME_SCALE, h.events).start()
    h.model.record(DIST, raw_config(), "E1")
    assert h.request()[0] == 403
    h.clock.now += 100.0
    assert h.request()[0] == 200


# -- edge locations ------------------------------------------------------------------------------
LOCATIONS = ("ICN54-P1", "NRT57-P3", "SIN2-P1")


def test_arrivals_spread_over_the_deploy_window_one_location_at_its_end() -> None:
    fractions = arrival_fractions(LOCATIONS, "E1:ETAG-B")
    assert sorted(fractions) == sorted(LOCATIONS)
    assert sorted(fractions.values()) == pytest.approx([FIRST_ARRIVAL, (1 + FIRST_ARRIVAL) / 2, 1.0])
    # Seeded by the change: the same change always arrives in the same order; changes differ.
    assert arrival_fractions(LOCATIONS, "E1:ETAG-B") == fractions
    orders = {tuple(sorted(LOCATIONS, key=arrival_fractions(LOCATIONS, f"E1:ETAG-{i}").get)) for i in range(20)}
    assert len(orders) > 1
    assert arrival_fractions(("ICN54-P1",), "x") == {"ICN54-P1": 1.0}


def test_a_change_reaches_each_edge_location_at_its_own_time_and_is_deployed_when_the_last_has_it(tmp_path: Path) -> None:
    clock = FakeClock()
    events = EventLog(tmp_path / "events.jsonl")
    model = CloudFrontModel(deploy_seconds=90.0, invalidation_seconds=1.0, clock=clock, locations=LOCATIONS, events=events)
    model.record(DIST, raw_config(), "ETAG-A", immediate=True)
    t0 = clock.now
    done = model.record(DIST, raw_config(target=SECONDARY_ID), "ETAG-B")
    assert done == t0 + 90.0 == model.deployed_at(DIST)
    at = {loc: model.effective_at(DIST, loc) for loc in LOCATIONS}
    assert sorted(at.values()) == pytest.approx([t0 + 30.0, t0 + 60.0, t0 + 90.0])
    for now in (t0, t0 + 30.0, t0 + 45.0, t0 + 60.0, t0 + 89.9, t0 + 90.0):
        clock.now = now
        for loc in LOCATIONS:
            want = "ETAG-B" if now >= at[loc] else "ETAG-A"
            assert model.active(DIST, loc).etag == want, (now - t0, loc)
    # The ground truth a measurement is checked against: each location's instant, on both clocks.
    [scheduled] = [e for e in read_events(events.path) if e["event"] == "edge locations scheduled"]
    assert scheduled["etag"] == "ETAG-B" and scheduled["deployed_mono"] == pytest.approx(t0 + 90.0)
    assert {loc: v["mono"] for loc, v in scheduled["locations"].items()} == pytest.approx(at)
    with pytest.raises(KeyError):
        model.active(DIST, "LAX3-P1")


def test_a_newer_change_that_arrives_first_is_not_undone_by_an_older_one(tmp_path: Path) -> None:
    clock = FakeClock()
    model = CloudFrontModel(deploy_seconds=90.0, invalidation_seconds=1.0, clock=clock, locations=LOCATIONS)
    model.record(DIST, raw_config(), "A", immediate=True)
    model.record(DIST, raw_config(target=SECONDARY_ID), "B")
    b_at = {loc: model.effective_at(DIST, loc) for loc in LOCATIONS}
    clock.now += 10.0
    model.record(DIST, raw_config(), "C")
    c_at = {loc: model.effective_at(DIST, loc) for loc in LOCATIONS}
    clock.now = max(max(b_at.values()), max(c_at.values()))
    for loc in LOCATIONS:
        assert model.active(DIST, loc).etag == "C"
    early = [loc for loc in LOCATIONS if c_at[loc] < b_at[loc]]
    for loc in early:  # C got there before B: B arriving later does not bring it back
        clock.now = b_at[loc]
        assert model.active(DIST, loc).etag == "C"


def test_each_edge_location_serves_its_own_config_and_names_itself(h: Harness, tmp_path: Path) -> None:
    h.model = CloudFrontModel(deploy_seconds=90.0, invalidation_seconds=1.0, clock=h.clock, locations=LOCATIONS)
    h.start()
    edges = {loc: Edge(free_port(host), DIST, h.model, h.dns.get, TIME_SCALE, h.events, location=loc, host=host).start()
             for loc, host in (("NRT57-P3", "127.0.0.11"), ("SIN2-P1", "127.0.0.12"))}
    try:
        h.model.record(DIST, raw_config(target=SECONDARY_ID), "ETAG-B")
        first = min(LOCATIONS[1:], key=lambda loc: h.model.effective_at(DIST, loc))
        h.clock.now = h.model.effective_at(DIST, first)

        def get(edge: Edge) -> tuple[str, str]:
            conn = http.client.HTTPConnection(edge.host, edge.server.port, timeout=15)
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                return r.getheader("X-Amz-Cf-Pop") or "", r.getheader("X-Origin") or ""
            finally:
                conn.close()

        for loc, edge in edges.items():
            assert edge.address == f"{edge.host}:{edge.server.port}"
            assert get(edge) == (loc, "secondary" if loc == first else "primary")
        assert h.request()[1]["x-amz-cf-pop"] == "ICN54-P1"
    finally:
        for edge in edges.values():
            edge.stop()


# -- events --------------------------------------------------------------------------------------
def test_events_record_serving_origin_transitions_only(h: Harness) -> None:
    h.start()
    h.request()
    h.request()  # same origin: no new event
    h.primary.status = 503
    h.request()
    h.request()
    h.primary.status = 200
    h.request()
    h.refuse_primary()
    h.dns[SECONDARY_HOST] = ("127.0.0.1", free_port())
    h.request()
    assert h.served_origins() == [PRIMARY_ID, SECONDARY_ID, PRIMARY_ID, "error"]
    on_disk = [e for e in read_events(h.events.path) if e["event"] == "serving origin"]
    assert [(e["source"], e["origin"], e["domain"]) for e in on_disk] == [
        ("edge", PRIMARY_ID, PRIMARY_HOST),
        ("edge", SECONDARY_ID, SECONDARY_HOST),
        ("edge", PRIMARY_ID, PRIMARY_HOST),
        ("edge", "error", None),
    ]


# -- edge_config_from_raw ------------------------------------------------------------------------
def timing(o: OriginSpec) -> tuple[str, str, int, float, float]:
    """The fields the edge's failover timing depends on."""
    return (o.id, o.domain_name, o.connection_attempts, o.connection_timeout, o.read_timeout)


def _expected_seed_shape(cfg: EdgeConfig, primary_host: str) -> None:
    # The default behavior: reads through the origin group; the write paths, in order, to the primary.
    assert cfg.default == BehaviorSpec("*", GROUP_ID, frozenset(READ_METHODS))
    assert cfg.behaviors[:-1] == tuple(BehaviorSpec(p, PRIMARY_ID, frozenset(ALL_METHODS)) for p in WRITE_PATHS)
    assert cfg.origin_groups == {GROUP_ID: ((PRIMARY_ID, SECONDARY_ID), frozenset(FAILOVER_CODES))}
    assert timing(cfg.origins[PRIMARY_ID]) == (PRIMARY_ID, primary_host, 3, 10.0, 30.0)
    assert cfg.origins[SECONDARY_ID].domain_name == "bloberry01.z12.web.core.windows.net"
    assert cfg.enabled is True


def test_edge_config_from_boto3_shaped_config() -> None:
    cfg = edge_config_from_raw(distribution_config("alb-1.example"), "ETAG1")
    assert cfg.etag == "ETAG1"
    _expected_seed_shape(cfg, "alb-1.example")


def test_edge_config_defaults_follow_cloudfront() -> None:
    """Absent settings take CloudFront's defaults: 3 attempts, 10 s connect, 30 s read, GET/HEAD."""
    raw = {
        "Origins": {"Quantity": 1, "Items": [{"Id": "o1", "DomainName": "o1.example"}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o1"},
        "Enabled": "false",
    }
    cfg = edge_config_from_raw(raw, "E")
    assert list(cfg.origins) == ["o1"] and timing(cfg.origins["o1"]) == ("o1", "o1.example", 3, 10.0, 30.0)
    assert cfg.origin_groups == {}
    assert cfg.behaviors == (BehaviorSpec("*", "o1", frozenset({"GET", "HEAD"})),)
    assert cfg.enabled is False


def test_edge_config_from_xml_parsed_shapes() -> None:
    """xmltodict-style containers: `Items` holding one member dict, with a list or a single child."""
    raw = {
        "Origins": {"Quantity": "2", "Items": {"Origin": [
            {"Id": "a", "DomainName": "a.example", "ConnectionAttempts": "1", "ConnectionTimeout": "4",
             "ResponseCompletionTimeout": "9", "CustomOriginConfig": {"OriginReadTimeout": "7"}},
            {"Id": "b", "DomainName": "b.example"},
        ]}},
        "OriginGroups": {"Quantity": "1", "Items": {"OriginGroup": {
            "Id": "g",
            "FailoverCriteria": {"StatusCodes": {"Quantity": "2", "Items": {"StatusCode": ["502", "503"]}}},
            "Members": {"Quantity": "2", "Items": {"OriginGroupMember": [{"OriginId": "a"}, {"OriginId": "b"}]}},
        }}},
        "DefaultCacheBehavior": {"TargetOriginId": "g",
                                 "AllowedMethods": {"Quantity": "3", "Items": {"Method": ["get", "HEAD", "OPTIONS"]}}},
        "CacheBehaviors": {"Quantity": "1", "Items": {"CacheBehavior": {
            "PathPattern": "/w/*", "TargetOriginId": "a",
            "AllowedMethods": {"Quantity": "7", "Items": {"Method": ALL_METHODS}},
        }}},
        "Enabled": "true",
    }
    cfg = edge_config_from_raw(raw, "E")
    assert timing(cfg.origins["a"]) == ("a", "a.example", 1, 4.0, 7.0)
    assert cfg.origins["a"].response_completion_timeout == 9.0 and cfg.origins["b"].response_completion_timeout is None
    assert timing(cfg.origins["b"]) == ("b", "b.example", 3, 10.0, 30.0)
    assert cfg.origin_groups == {"g": (("a", "b"), frozenset({502, 503}))}
    assert cfg.behaviors == (BehaviorSpec("/w/*", "a", frozenset(ALL_METHODS)),
                             BehaviorSpec("*", "g", frozenset({"GET", "HEAD", "OPTIONS"})))
    assert cfg.enabled is True


def test_edge_config_from_moto_parsed_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dict moto's request parsing hands its backend (what the lab records) and boto3's read-back."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from moto.cloudfront import models as cf_models

    seen: list[dict[str, Any]] = []
    orig = cf_models.CloudFrontBackend.create_distribution_with_tags

    def spy(self: Any, distribution_config: dict[str, Any], tags: Any) -> Any:
        seen.append(copy.deepcopy(distribution_config))
        return orig(self, distribution_config, tags)

    monkeypatch.setattr(cf_models.CloudFrontBackend, "create_distribution_with_tags", spy)
    sent = distribution_config("alb-2.example")
    # Plain moto rejects an origin group as the default target (the lab's override allows it):
    # send a single-origin target and check the group's parsing separately below.
    sent["DefaultCacheBehavior"]["TargetOriginId"] = PRIMARY_ID
    with moto.mock_aws():
        cf = boto3.client("cloudfront", region_name="us-east-1")
        dist_id = cf.create_distribution(DistributionConfig=sent)["Distribution"]["Id"]
        read_back = cf.get_distribution_config(Id=dist_id)
    [parsed] = seen
    for raw in (parsed, read_back["DistributionConfig"]):
        raw = copy.deepcopy(raw)
        raw["DefaultCacheBehavior"]["TargetOriginId"] = GROUP_ID
        _expected_seed_shape(edge_config_from_raw(raw, read_back["ETag"]), "alb-2.example")
