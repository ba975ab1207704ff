"""The public endpoint of the lab's Azure MySQL flexible server: firewall and TLS, in front of MariaDB.

What Azure Database for MySQL Flexible Server (public access) does to a client, and this endpoint
does too:
- a client whose address no firewall rule allows gets no answer at all: Flexible Server has no
  gateway that could say why, so the connection attempt times out ("connection to server ...
  failed: Connection timed out" is what clients of a flexible server report; Azure/postgresql#29).
  Here the listening socket stops accepting and keeps its accept queue full (backlog 0 plus one
  connection of its own), so the kernel drops the client's SYNs: pymysql raises OperationalError
  2003 "Can't connect to MySQL server ... (timed out)", the mysql client ERROR 2003 (HY000);
- `require_secure_transport` is ON by default: a client that does not ask for TLS in its handshake
  response is answered ERROR 3159 (HY000) "Connections using insecure transport are prohibited while
  --require_secure_transport=ON." (Connect to Flexible Server with encrypted connections). MariaDB
  says 1045 Access denied instead (as the RDS User Guide notes for RDS for MariaDB), so the endpoint
  answers that itself, MySQL's way.
A client that asks for TLS is relayed byte for byte to MariaDB, which terminates TLS with the lab's
server certificate (SANs: the server's Azure FQDN and 127.0.0.1, the lab's `mysql_fqdn`).

The lab cannot tell its clients apart by address (everything is 127.0.0.1), so the firewall decision
is per address, evaluated continuously: 127.0.0.1 is allowed once a rule covering it has taken effect.
"""
from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Callable

from lab.events import EventLog

CLIENT_SSL = 0x00000800
ER_SECURE_TRANSPORT_REQUIRED = 3159
INSECURE_MESSAGE = "Connections using insecure transport are prohibited while --require_secure_transport=ON."
LOOPBACK = "127.0.0.1"
OPEN_BACKLOG = 64
TICK = 0.05


def _read_packet(sock: socket.socket) -> bytes:
    """One MySQL protocol packet (4-byte header included)."""
    header = _read_exact(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header + _read_exact(sock, length)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def error_packet(seq: int, code: int, sqlstate: str, message: str) -> bytes:
    payload = b"\xff" + struct.pack("<H", code) + b"#" + sqlstate.encode() + message.encode()
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


class FlexibleServerEndpoint:
    """Listens on `port` (the server's public endpoint); relays allowed TLS clients to MariaDB on `backend_port`."""

    def __init__(self, port: int, backend_port: int, allowed: Callable[[str], bool],
                 events: EventLog | None = None, name: str = "mysql") -> None:
        self.port, self.backend_port = port, backend_port
        self.allowed = allowed
        self.events = events
        self.name = name
        self._sock: socket.socket | None = None
        self._dummy: socket.socket | None = None
        self._dummy_port: int | None = None  # our own queued connection, closed unserved when we reopen
        self._open = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FlexibleServerEndpoint({self.name}, port={self.port})"

    def start(self) -> FlexibleServerEndpoint:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self.port))
        sock.listen(0)
        self._sock = sock
        self._block()
        self._thread = threading.Thread(target=self._loop, name=f"mysql-endpoint:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for s in [self._sock, self._dummy, *list(self._conns)]:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self._sock = self._dummy = None

    def _record(self, event: str, **detail: object) -> None:
        if self.events is not None:
            self.events.record("azure-mysql", event, server=self.name, **detail)

    # -- firewall: accept, or let the kernel drop SYNs ------------------------------------------------
    def _block(self) -> None:
        """Stop accepting: the queue (backlog 0) holds our own connection, so new SYNs are dropped."""
        assert self._sock is not None
        self._sock.listen(0)
        try:
            self._dummy = socket.create_connection((LOOPBACK, self.port), timeout=0.5)
            self._dummy_port = self._dummy.getsockname()[1]
        except OSError:  # a client took the one slot first: it waits in the queue, unanswered
            self._dummy = None
        self._open = False

    def _unblock(self) -> None:
        assert self._sock is not None
        self._sock.listen(OPEN_BACKLOG)
        self._open = True
        if self._dummy is not None:
            self._dummy.close()  # its queued end is accepted and closed unserved by the loop
            self._dummy = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                allowed = bool(self.allowed(LOOPBACK))
            except Exception as e:  # noqa: BLE001 — a model error must show, and must not open the firewall
                self._record("firewall check failed", error=repr(e))
                allowed = False
            if allowed != self._open:
                (self._unblock if allowed else self._block)()
                self._record("firewall opened" if allowed else "firewall closed", address=LOOPBACK)
            if not self._open:
                self._stop.wait(TICK)
                continue
            assert self._sock is not None
            ready, _, _ = select.select([self._sock], [], [], TICK)
            if not ready:
                continue
            try:
                conn, peer = self._sock.accept()
            except OSError:
                continue
            if peer[1] == self._dummy_port:
                self._dummy_port = None
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn, peer[0]), daemon=True,
                             name=f"mysql-endpoint-conn:{peer[1]}").start()

    # -- one client ---------------------------------------------------------------------------------------
    def _serve(self, client: socket.socket, peer: str) -> None:
        backend: socket.socket | None = None
        try:
            if not self.allowed(peer):
                return
            backend = socket.create_connection((LOOPBACK, self.backend_port), timeout=10)
            client.settimeout(30)
            greeting = _read_packet(backend)
            client.sendall(greeting)
            first = _read_packet(client)  # SSLRequest or HandshakeResponse41
            caps = struct.unpack("<I", first[4:8])[0] if len(first) >= 8 else 0
            if not caps & CLIENT_SSL:
                client.sendall(error_packet(first[3] + 1, ER_SECURE_TRANSPORT_REQUIRED, "HY000", INSECURE_MESSAGE))
                self._record("insecure transport refused", client=peer)
                return
            backend.sendall(first)
            client.settimeout(None)
            backend.settimeout(None)
            self._pipe(client, backend)
        except (OSError, ConnectionError):
            pass
        finally:
            for s in (client, backend):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with self._lock:
            self._conns.update((a, b))
        try:
            peers = {a: b, b: a}
            while not self._stop.is_set():
                ready, _, _ = select.select(list(peers), [], [], 0.5)
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    peers[s].sendall(data)
        finally:
            with self._lock:
                self._conns.difference_update((a, b))
