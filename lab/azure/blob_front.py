"""The storage account's Blob endpoint as the drill reaches it: a front on Azurite with the lab's faults.

Azurite is a Node process the lab cannot reach into, so the account URL the lab hands out points
here; every request goes on to Azurite unchanged (SharedKey signatures do not cover the Host), and
the lab's faults (lab.faults) can answer a chosen one instead: 503 ServerBusy, a 5xx, a hang, or a
stale read (a GET/HEAD whose answer changed gets the previous one). The lab's own clients (the
backup job, the static website) use Azurite directly.
"""
from __future__ import annotations

import http.client
from urllib.parse import parse_qs, urlsplit

from lab import fault_shapes
from lab.faults import Faults
from lab.httpfwd import HOP_BY_HOP, Request, Response, Server

# Query parameters that select the operation (the rest, like a SAS or a timeout, do not).
OPERATION_PARAMS = ("comp", "restype")


def call_key(method: str, target: str) -> str:
    parts = urlsplit(target)
    q = parse_qs(parts.query, keep_blank_values=True)
    ops = "&".join(f"{k}={q[k][0]}" for k in sorted(OPERATION_PARAMS) if k in q)
    return f"{method.upper()} {parts.path}" + (f"?{ops}" if ops else "")


class BlobFront:
    def __init__(self, port: int, upstream_port: int, faults: Faults, timeout: float = 60.0) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self.faults = faults
        self.timeout = timeout
        self.server = Server(port, self.handle)

    def __repr__(self) -> str:
        return f"BlobFront(port={self.port}, azurite={self.upstream_port})"

    def start(self) -> BlobFront:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, req: Request) -> Response:
        key = call_key(req.method, req.path)
        rule = self.faults.take("blob", key)
        if rule is not None:
            if rule.kind == "hang":
                return Response(0, hang=self.faults.hang_seconds(rule))
            status, headers, body = fault_shapes.blob(rule.kind, req.method, rule.status)
            return Response(status, headers, body)
        resp = self._forward(req)
        if req.method in ("GET", "HEAD"):
            stale = self.faults.read("blob", key, resp.status, resp.headers, resp.body, memo=req.path)
            if stale is not None:
                return Response(stale.status, stale.headers, stale.body)
        return resp

    def _forward(self, req: Request) -> Response:
        """To Azurite on a fresh connection; Content-Length kept (a HEAD's tells the blob's size)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=self.timeout)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Connection"] = "close"
            conn.request(req.method, req.path, body=req.body or None, headers=headers)
            r = conn.getresponse()
            body = r.read()
            out = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP or k.lower() == "content-length"]
            return Response(r.status, out, body)
        finally:
            conn.close()
