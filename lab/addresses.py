"""Public addresses in the lab: distinct loopback IPs (127.0.0.0/8) sharing one port, as real public IPs
would — so a DNS answer (lab.dns) that changes from the primary to the secondary changes the address
a user connects to, and the probe can record which address served each request.

Linux routes all of 127.0.0.0/8 to the loopback interface, so any 127.x.y.z can be bound without
configuration. Each lab picks a /24 at random (several labs on one machine must not collide) and one
port free on every address it uses. A `Relay` makes an existing server (the ALB, the CloudFront edge)
answer on a public address, at the TCP level: what the client gets is exactly what the server sends.
"""
from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable

Upstream = Callable[[], "tuple[str, int] | None"]


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def pick_public_block(count: int, attempts: int = 50) -> tuple[list[str], int]:
    """`count` loopback addresses 127.A.B.1..count (A, B random) and a port free on all of them."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        base = f"127.{rng.randint(64, 250)}.{rng.randint(1, 250)}"
        addresses = [f"{base}.{i}" for i in range(1, count + 1)]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addresses[0], 0))
            port = int(s.getsockname()[1])
        if all(_bindable(a, port) for a in addresses):
            return addresses, port
    raise RuntimeError(f"no free loopback block with a common port after {attempts} attempts")


class Relay:
    """Listen on address:port and pipe each connection to `upstream()` (None: refuse, as a closed port)."""

    def __init__(self, address: str, port: int, upstream: Upstream, name: str) -> None:
        self.address, self.port, self.upstream, self.name = address, port, upstream, name
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((address, port))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"relay:{name}", daemon=True)

    def __repr__(self) -> str:
        return f"Relay({self.name}, {self.address}:{self.port})"

    def start(self) -> Relay:
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        target = self.upstream()
        if target is None:  # RST: as a connection to a closed port
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()
            return
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            client.close()
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.settimeout(None)
        done = threading.Event()

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                if done.is_set():
                    src.close()
                    dst.close()
                done.set()

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)
