"""What runs on the DR site's Azure VM (seeds: Standard_B2s, Ubuntu, nginx → Tomcat → Azure MySQL).

While the VM is running, its guest boots and then serves: a PetClinic process (Tomcat's part) on a
private port and a reverse proxy (nginx's part, `proxy_pass http://tomcat; proxy_set_header Host
$host`) on the VM's public address and the site's port. Deallocating stops both at once (the guest is
shut down). Sessions live in the PetClinic process (no Redis on the VM): a user signed in on AWS is
not signed in here, and a restarted VM forgets everyone.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from lab.events import EventLog
from lab.httpfwd import Request, Response, Server, UpstreamError, forward
from lab.ports import free_port, wait_for_port
from lab.procs import ManagedProcess
from lab.web_tier import AppEnv, start_petclinic

# Guest OS boot + nginx + Tomcat with PetClinic, after PowerState/running (the lab's figure, scaled).
BOOT_SECONDS = 45.0
NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
             b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


class VmHost:
    def __init__(self, public_ip: str, port: int, app: AppEnv, time_scale: float, events: EventLog,
                 log_dir: Path, boot_seconds: float = BOOT_SECONDS) -> None:
        self.public_ip, self.port, self.app = public_ip, port, app
        self.time_scale, self.events, self.log_dir = time_scale, events, log_dir
        self.boot_seconds = boot_seconds
        self._lock = threading.Lock()
        self._generation = 0
        self._proc: ManagedProcess | None = None
        self._proxy: Server | None = None
        self._app_port = 0

    def __repr__(self) -> str:
        return f"VmHost({self.public_ip}:{self.port})"

    def power(self, vm: Any, state: str) -> None:
        """Called by lab.azure.virtual_machines on every power state change."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        if state == "running":
            # The PetClinic process starts at once and is unseen until the modeled boot ends: the lab's own
            # start-up time does not add to the guest's boot (as for the other lab resources).
            ready_at = time.monotonic() + self.boot_seconds / self.time_scale
            threading.Thread(target=self._boot, args=(generation, ready_at), daemon=True,
                             name="vm-guest-boot").start()
        elif state in ("deallocating", "deallocated", "stopped"):
            self._shutdown()

    def _boot(self, generation: int, ready_at: float) -> None:
        with self._lock:
            if generation != self._generation or self._proc is not None:
                return
            self._app_port = free_port()
            self._proc = start_petclinic("vm-dr-petclinic", self._app_port, self.app, self.log_dir)
        try:
            wait_for_port(self._app_port, timeout=20)
        except TimeoutError:
            self.events.record("azure-vm", "petclinic did not start")
            return
        time.sleep(max(0.0, ready_at - time.monotonic()))
        with self._lock:
            if generation != self._generation:
                return
            self._proxy = Server(self.port, self._proxy_request, host=self.public_ip).start()
        self.events.record("azure-vm", "guest serving", address=f"{self.public_ip}:{self.port}")

    def _proxy_request(self, req: Request) -> Response:
        try:
            return forward("127.0.0.1", self._app_port, req, 60.0, 60.0, host_header=req.headers.get("Host"))
        except UpstreamError:
            return Response(502, [("Content-Type", "text/html"), ("Server", "nginx")], NGINX_502)

    def _shutdown(self) -> None:
        with self._lock:
            proxy, proc = self._proxy, self._proc
            self._proxy = self._proc = None
        if proxy is not None:
            proxy.stop()
            self.events.record("azure-vm", "guest stopped")
        if proc is not None:
            proc.stop(timeout=5)

    def stop(self) -> None:
        with self._lock:
            self._generation += 1
        self._shutdown()
