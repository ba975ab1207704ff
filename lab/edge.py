"""CloudFront's data plane in the lab: edge locations, the first on the public site address.

Each `Edge` is one edge location (its own loopback address and port, its own name in `X-Amz-Cf-Pop`,
the response header CloudFront names the serving location with). It serves the distribution
configuration that has *arrived at that location* (lab.aws.cloudfront keeps the history and when
each change reaches each location within the modeled deploy window) and routes each request as
CloudFront documents it (CloudFront
Developer Guide: "Values that you specify when you create or update a distribution", sections *Path
pattern*, *Allowed HTTP methods*, *Connection attempts*, *Connection timeout*, *Response timeout*;
"Optimize high availability with CloudFront origin failover"):

- **Cache behavior.** The request path (without the query string) is compared with the ordered
  cache behaviors' path patterns in their order; the first match wins, the default behavior (`*`)
  comes last. `*` matches 0 or more characters (`/` included), `?` exactly one; matching is
  case-sensitive; a leading `/` in the pattern is optional.
- **Allowed methods.** A method the behavior does not allow is answered 403 by the edge.
- **Target.** The behavior's origin, or its origin group: every request tries the group's primary
  first; on a configured failover status, a failed connection or a timeout, GET/HEAD/OPTIONS requests
  go to the secondary, other methods are answered with the primary's result.
- **Connection attempts and timeouts, per origin.** Each attempt connects within the connection
  timeout; a connection that fails or times out is tried again, for every method, up to
  ConnectionAttempts. Once connected and sent, the response timeout bounds the wait for the first
  byte and between packets: a GET or HEAD whose response times out is dropped and tried again, up to
  ConnectionAttempts in all; any other method (DELETE, OPTIONS, PATCH, PUT, POST) is not tried again
  (for OPTIONS in a group, the secondary is then asked). A broken answer after the request was sent
  is treated as a response that stopped: retried for GET/HEAD only.

So the time a request spends on an origin before failing over (or before the edge answers 504)
adds up attempt by attempt, each attempt costing the timeout of the stage that failed: an origin
that never accepts costs ConnectionAttempts × ConnectionTimeout (default 3 × 10 s = 30 s); one that
accepts and never answers costs a GET/HEAD ConnectionAttempts × OriginReadTimeout (default 3 × 30 s
= 90 s) and any other method one OriginReadTimeout; a refused connection costs next to nothing.
An origin's ResponseCompletionTimeout, when set, caps that whole wait, retries included (*Response
completion timeout*; CloudFront enforces no maximum without it).
A timeout is answered 504, any other failure 502 (Developer Guide, "HTTP 502/504 status code").
Timeouts are divided by the lab's time scale.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import lru_cache

from lab.aws.cloudfront import BehaviorSpec, CloudFrontModel, EdgeConfig, OriginSpec
from lab.events import EventLog
from lab.httpfwd import Request, Response, Server, UpstreamError, forward

FAILOVER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Methods whose request is sent again after a response timeout (other methods are not repeated).
RESEND_METHODS = frozenset({"GET", "HEAD"})
CF_403_METHOD = (b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>403 ERROR</H1>"
                 b"<H2>The request could not be satisfied.</H2>This distribution is not configured to allow the HTTP "
                 b"request method that was used for this request. The distribution supports only cachable requests."
                 b"</BODY></HTML>")
CF_502 = (b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>502 ERROR</H1>"
          b"<H2>The request could not be satisfied.</H2>CloudFront wasn't able to connect to the origin.</BODY></HTML>")
CF_504 = (b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>"
          b"<H1>504 Gateway Timeout ERROR</H1><H2>The request could not be satisfied.</H2>CloudFront attempted to "
          b"establish a connection with the origin, but either the attempt failed or the origin closed the connection."
          b"</BODY></HTML>")

# domain name of an origin -> (host, port) on loopback: the lab's DNS.
Resolver = Callable[[str], "tuple[str, int] | None"]


@lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    body = pattern if pattern.startswith("/") else "/" + pattern
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in body), re.DOTALL)


def path_matches(pattern: str, path: str) -> bool:
    """CloudFront's path-pattern match: `*` any run of characters, `?` one, case-sensitive, whole path."""
    return _pattern_regex(pattern).fullmatch(path if path.startswith("/") else "/" + path) is not None


def select_behavior(cfg: EdgeConfig, path: str) -> BehaviorSpec:
    """The cache behavior a request path takes: the first ordered match, else the default."""
    path = path.split("?", 1)[0]  # CloudFront does not consider query strings when matching
    for behavior in cfg.behaviors[:-1]:
        if path_matches(behavior.path_pattern, path):
            return behavior
    return cfg.default


def _at_most(seconds: float, left: float | None) -> float:
    return seconds if left is None else max(0.001, min(seconds, left))


def _error_response(e: UpstreamError) -> Response:
    return Response(504 if e.timed_out else 502, [("Content-Type", "text/html")], CF_504 if e.timed_out else CF_502)


class Edge:
    def __init__(
        self,
        port: int,
        distribution_id: str,
        model: CloudFrontModel,
        resolve: Resolver,
        time_scale: float,
        events: EventLog,
        location: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.distribution_id = distribution_id
        self.location = location or model.locations[0]
        self.model = model
        self.resolve = resolve
        self.time_scale = time_scale
        self.events = events
        self._last_origin: dict[str, str] = {}  # per cache behavior (path pattern)
        self._lock = threading.Lock()
        self.server = Server(port, self.handle, host=host)
        self.host = host

    def start(self) -> Edge:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, req: Request) -> Response:
        cfg = self.model.active(self.distribution_id, self.location)
        if cfg is None or not cfg.enabled:
            return Response(403, [("Content-Type", "text/html")], b"<H1>403 ERROR</H1>The distribution is not enabled.")
        behavior = select_behavior(cfg, req.path)
        if req.method.upper() not in behavior.allowed_methods:
            return self._stamp(Response(403, [("Content-Type", "text/html")], CF_403_METHOD))
        members, codes = cfg.origin_groups.get(behavior.target, ((behavior.target,), frozenset()))
        can_fail_over = len(members) > 1 and req.method in FAILOVER_METHODS
        resp, served_by = None, None
        for i, origin_id in enumerate(members[: 2 if can_fail_over else 1]):
            origin = cfg.origins.get(origin_id)
            if origin is None:
                continue
            try:
                resp = self._fetch(origin, req)
            except UpstreamError as e:
                resp = _error_response(e)
                if can_fail_over and i == 0:
                    continue
                break
            served_by = origin_id
            if can_fail_over and i == 0 and resp.status in codes:
                continue
            break
        assert resp is not None
        self._note(behavior, served_by or "error", cfg)
        return self._stamp(resp)

    @property
    def address(self) -> str:
        """host:port of this edge location (what a vantage's `connect_to` names)."""
        return f"{self.host}:{self.server.port}"

    def _stamp(self, resp: Response) -> Response:
        # CloudFront says "Error from cloudfront" for any error status, an origin's or its own.
        resp.headers = [h for h in resp.headers if h[0].lower() not in ("via", "x-cache", "x-amz-cf-pop")]
        resp.headers += [
            ("X-Cache", "Miss from cloudfront" if resp.status < 400 else "Error from cloudfront"),
            ("Via", "1.1 lab-edge.cloudfront.net (CloudFront)"),
            ("X-Amz-Cf-Pop", self.location),
        ]
        return resp

    def _fetch(self, origin: OriginSpec, req: Request) -> Response:
        """One origin, with its connection attempts and timeouts (the rules in the module docstring)."""
        addr = self.resolve(origin.domain_name)
        if addr is None:
            raise UpstreamError("dns", f"cannot resolve {origin.domain_name}")
        last: UpstreamError | None = None
        # ResponseCompletionTimeout caps the whole wait, across packets and retries.
        deadline = (None if origin.response_completion_timeout is None
                    else time.monotonic() + origin.response_completion_timeout / self.time_scale)
        for _ in range(max(1, origin.connection_attempts)):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                return forward(
                    addr[0], addr[1], req,
                    connect_timeout=_at_most(origin.connection_timeout / self.time_scale, left),
                    read_timeout=_at_most(origin.read_timeout / self.time_scale, left),
                    host_header=origin.domain_name,
                )
            except UpstreamError as e:
                last = e
                if e.request_sent and req.method.upper() not in RESEND_METHODS:
                    break  # the origin may have it: CloudFront does not send it again
        assert last is not None
        raise last

    def _note(self, behavior: BehaviorSpec, origin: str, cfg: EdgeConfig) -> None:
        """Ground truth for the evidence: the origin a behavior's requests get at this location, on each change."""
        with self._lock:
            if self._last_origin.get(behavior.path_pattern) == origin:
                return
            self._last_origin[behavior.path_pattern] = origin
        domain = cfg.origins[origin].domain_name if origin in cfg.origins else None
        self.events.record("edge", "serving origin", origin=origin, domain=domain, behavior=behavior.path_pattern,
                           location=self.location, etag=cfg.etag)
