"""The lab's data-plane plumbing: a quiet threaded HTTP server and one-shot upstream requests.

The ALB, the CloudFront edge and the Blob static-website endpoint are each a small proxy built on
these two pieces. Upstream failures are kept apart by stage (refused, connect timeout, read timeout,
bad response) because the real services answer each differently (e.g. ALB 502 vs 504; CloudFront
retries a connect timeout for every method, a read timeout only for GET/HEAD).
"""
from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A hung server (lab.faults): no answer; the connection is held this many seconds (or until the
    # client hangs up), then dropped.
    hang: float | None = None


class UpstreamError(Exception):
    """The upstream could not be reached or gave no usable answer; `kind` says how.

    Kinds, by the stage that failed (proxies treat them differently, e.g. CloudFront retries a
    connection that timed out for every method but a response that timed out only for GET/HEAD):
      "dns"             the name did not resolve (no connection was tried)
      "refused"         the connection was refused or could not be made
      "connect_timeout" no connection within the connect timeout (the request was never sent)
      "read_timeout"    connected and sent, but no (complete) answer within the read timeout
      "protocol"        connected and sent, but the answer was broken or the connection dropped
    """

    KINDS = frozenset({"dns", "refused", "connect_timeout", "read_timeout", "protocol"})

    def __init__(self, kind: str, detail: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown upstream error kind {kind!r}")
        super().__init__(f"{kind}: {detail}")
        self.kind = kind

    @property
    def timed_out(self) -> bool:
        """Either timeout: what a gateway answers 504 for."""
        return self.kind in ("connect_timeout", "read_timeout")

    @property
    def request_sent(self) -> bool:
        """Whether the origin may have received the request (so a retry could repeat it)."""
        return self.kind in ("read_timeout", "protocol")


def forward(
    host: str, port: int, req: Request, connect_timeout: float, read_timeout: float, host_header: str | None = None
) -> Response:
    """Send `req` to host:port on a fresh connection; raise UpstreamError on failure."""
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
    except ConnectionRefusedError as e:
        raise UpstreamError("refused", str(e)) from None
    except TimeoutError as e:
        raise UpstreamError("connect_timeout", str(e) or "timed out") from None
    except OSError as e:
        raise UpstreamError("refused", str(e)) from None
    conn = http.client.HTTPConnection(host, port, timeout=read_timeout)
    conn.sock = sock
    sock.settimeout(read_timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = host_header or f"{host}:{port}"
        headers["Connection"] = "close"
        conn.request(req.method, req.path, body=req.body or None, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        return Response(resp.status, out, body)
    except TimeoutError as e:
        raise UpstreamError("read_timeout", str(e) or "timed out") from None
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        raise UpstreamError("protocol", str(e) or type(e).__name__) from None
    finally:
        conn.close()


Handler = Callable[[Request], Response]


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every small response waits ~40 ms for a delayed ACK
    app: Handler

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
        try:
            resp = type(self).app(req)
        except Exception as e:  # noqa: BLE001 — a bug in a lab proxy must look like a server error, not a hang
            resp = Response(500, [("Content-Type", "text/plain")], f"lab proxy error: {e}".encode())
        if resp.hang is not None:
            from lab.faults import drop, hold

            hold(self.connection, resp.hang)
            drop(self.connection)
            self.close_connection = True
            return
        self.send_response(resp.status)
        given = next((v for k, v in resp.headers if k.lower() == "content-length"), None)
        for k, v in resp.headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        # A HEAD answer may tell the size of what a GET would send (a blob's); the body is never sent.
        self.send_header("Content-Length", (given or "0") if self.command == "HEAD" else str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    """A threaded HTTP server on 127.0.0.1:port running `app` for each request."""

    def __init__(self, port: int, app: Handler, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_QuietHandler,), {"app": staticmethod(app)})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = port
        # stop() waits for the serve loop to notice: poll at 0.1 s, not socketserver's 0.5 s.
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.1,), name=f"http:{port}", daemon=True)

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
