"""Redis for the lab's session store: Debian's `redis-server` (setup.sh installs it), one per lab.

Loopback only, a free port, no persistence (`--save "" --appendonly no`): the seeds' Redis is one pod
in the petclinic namespace (service-inventory.md: "Redis 1개"), whose sessions die with it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from lab.ports import free_port, wait_for_port
from lab.procs import ManagedProcess


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.proc: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"RedisServer(127.0.0.1:{self.port})"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed: run ./setup.sh (apt package redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--protected-mode", "yes", "--daemonize", "no"]
        self.proc = ManagedProcess("redis", argv, self.workdir / "redis.log").start()
        wait_for_port(self.port, timeout=10)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=5)
