"""A real local HTTP site whose answers are scripted: the probe's tests and benchmarks point Locust at it.

Each GET is answered with `respond()` → (status, body); by default PetClinic until `down_at`
(monotonic: comparable with the probe's clocks), then 503. With `pop` set it names itself as a
CloudFront edge location does (X-Amz-Cf-Pop), for the vantage tests. Nagle is off: with it on every
response costs ~40 ms (Nagle + delayed ACK), which the probe would measure as latency.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drill.classify import PETCLINIC_TITLE

PETCLINIC = f"<html><head><title>{PETCLINIC_TITLE}</title></head><body>Welcome</body></html>".encode()
MAINTENANCE = "<html><body><h1>점검 중 - under maintenance</h1></body></html>".encode()
DOWN = b"down"

Respond = Callable[[], tuple[int, bytes]]


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: ScriptedSite

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        status, body = self.server.respond()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.server.pop:
            self.send_header("X-Amz-Cf-Pop", self.server.pop)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class ScriptedSite(ThreadingHTTPServer):
    """Serving from construction until `stop()`, on a free port of `host`."""

    daemon_threads = True

    def __init__(self, respond: Respond | None = None, host: str = "127.0.0.1", pop: str | None = None) -> None:
        super().__init__((host, 0), _Handler)
        self.respond: Respond = respond or self.up_until_down_at
        self.pop = pop
        self.down_at = float("inf")
        self.paths: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def up_until_down_at(self) -> tuple[int, bytes]:
        return (200, PETCLINIC) if time.monotonic() < self.down_at else (503, DOWN)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
