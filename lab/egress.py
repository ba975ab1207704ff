"""What address do I connect from? The lab's stand-in for `curl -s ifconfig.me` (runbook 2.2 step 4).

GET / answers the caller's address as plain text, one line, as ifconfig.me/ip and api.ipify.org do;
the drill learns the address it must allow in the Azure MySQL firewall from it. In the lab that
address is 127.0.0.1, the address the lab's MySQL endpoint sees the drill connect from.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab.ports import free_port


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class EgressEcho:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Echo)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"egress-echo:{self.port}", daemon=True)

    def __repr__(self) -> str:
        return f"EgressEcho({self.url})"

    def start(self) -> EgressEcho:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
