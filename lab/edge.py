"""CloudFront's data plane in the lab: an edge on the public site address.

It serves the distribution configuration that is *deployed* (lab.aws.cloudfront keeps the history
and the modeled deployment delay), and applies origin-group failover per request as CloudFront
does: every request tries the primary first; on a configured failover status, a refused connection
or a timeout, GET/HEAD/OPTIONS requests are retried on the secondary, other methods are not.
Connection timeout and attempts come from the origin's settings, scaled by the lab's time scale.
"""
from __future__ import annotations

import threading
from typing import Callable

from lab.aws.cloudfront import CloudFrontModel, EdgeConfig, OriginSpec
from lab.events import EventLog
from lab.httpfwd import Request, Response, Server, UpstreamError, forward

FAILOVER_METHODS = {"GET", "HEAD", "OPTIONS"}
CF_502 = b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>502 ERROR</H1><H2>The request could not be satisfied.</H2>CloudFront wasn't able to connect to the origin.</BODY></HTML>"
CF_504 = b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>504 Gateway Timeout ERROR</H1><H2>The request could not be satisfied.</H2>CloudFront attempted to establish a connection with the origin, but either the attempt failed or the origin closed the connection.</BODY></HTML>"

# domain name of an origin -> (host, port) on loopback: the lab's DNS.
Resolver = Callable[[str], "tuple[str, int] | None"]


class Edge:
    def __init__(
        self,
        port: int,
        distribution_id: str,
        model: CloudFrontModel,
        resolve: Resolver,
        time_scale: float,
        events: EventLog,
    ) -> None:
        self.distribution_id = distribution_id
        self.model = model
        self.resolve = resolve
        self.time_scale = time_scale
        self.events = events
        self._last_origin: str | None = None
        self._lock = threading.Lock()
        self.server = Server(port, self.handle)

    def start(self) -> "Edge":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, req: Request) -> Response:
        cfg = self.model.active(self.distribution_id)
        if cfg is None or not cfg.enabled:
            return Response(403, [("Content-Type", "text/html")], b"<H1>403 ERROR</H1>The distribution is not enabled.")
        members, codes = cfg.origin_groups.get(cfg.default_target, ((cfg.default_target,), frozenset()))
        can_fail_over = len(members) > 1 and req.method in FAILOVER_METHODS
        resp, served_by = None, None
        for i, origin_id in enumerate(members[: 2 if can_fail_over else 1]):
            origin = cfg.origins.get(origin_id)
            if origin is None:
                continue
            try:
                resp = self._fetch(origin, req)
            except UpstreamError as e:
                resp = Response(504 if e.kind == "timeout" else 502, [("Content-Type", "text/html")], CF_504 if e.kind == "timeout" else CF_502)
                if can_fail_over and i == 0:
                    continue
                break
            served_by = origin_id
            if can_fail_over and i == 0 and resp.status in codes:
                continue
            break
        assert resp is not None
        self._note(served_by or "error", cfg)
        resp.headers = [h for h in resp.headers if h[0].lower() not in ("via", "x-cache")]
        resp.headers += [
            ("X-Cache", "Miss from cloudfront" if served_by else "Error from cloudfront"),
            ("Via", "1.1 lab-edge.cloudfront.net (CloudFront)"),
            ("X-Amz-Cf-Pop", "ICN54-P1"),
        ]
        return resp

    def _fetch(self, origin: OriginSpec, req: Request) -> Response:
        addr = self.resolve(origin.domain_name)
        if addr is None:
            raise UpstreamError("dns", f"cannot resolve {origin.domain_name}")
        last: UpstreamError | None = None
        for _ in range(max(1, origin.connection_attempts)):
            try:
                return forward(
                    addr[0], addr[1], req,
                    connect_timeout=origin.connection_timeout / self.time_scale,
                    read_timeout=origin.read_timeout / self.time_scale,
                    host_header=origin.domain_name,
                )
            except UpstreamError as e:
                last = e
                if e.kind == "timeout" and "read" in str(e):
                    break  # a response timeout is not retried as a new connection attempt
        assert last is not None
        raise last

    def _note(self, origin: str, cfg: EdgeConfig) -> None:
        with self._lock:
            if origin == self._last_origin:
                return
            self._last_origin = origin
        domain = cfg.origins[origin].domain_name if origin in cfg.origins else None
        self.events.record("edge", "serving origin", origin=origin, domain=domain)
