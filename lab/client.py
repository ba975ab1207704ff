"""Start and stop the lab as a child process and read its endpoints.

The lab runs apart from the drill so that killing a drill (even with SIGKILL) leaves the lab
running for `drill unwind`, and so moto, proxies and probes never share one interpreter's GIL.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lab.procs import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[1]


def control(endpoints: dict[str, Any], path: str, method: str = "POST", timeout: float = 60.0,
            body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the running lab's control endpoint (e.g. POST /backups/pause) with its bearer token."""
    import httpx

    r = httpx.request(method, endpoints["lab_control_url"] + path, json=body,
                      headers={"Authorization": f"Bearer {endpoints['lab_control_token']}"}, timeout=timeout)
    if r.status_code == 400 and path == "/faults":
        raise ValueError(r.json().get("error", r.text))
    r.raise_for_status()
    return dict(r.json())


def arm_fault(endpoints: dict[str, Any], surface: str, kind: str, match: str = "*", count: int = 1,
              **more: Any) -> dict[str, Any]:
    """Make the lab answer the next `count` calls matching `match` on `surface` with a `kind` fault (lab.faults)."""
    return control(endpoints, "/faults", body={"surface": surface, "kind": kind, "match": match, "count": count, **more})


def faults(endpoints: dict[str, Any]) -> list[dict[str, Any]]:
    """The lab's fault rules with their hits."""
    return list(control(endpoints, "/faults", method="GET")["rules"])


def clear_faults(endpoints: dict[str, Any]) -> list[dict[str, Any]]:
    """Remove every fault rule; returns them with their hits."""
    return list(control(endpoints, "/faults", method="DELETE")["cleared"])


class LabProcess:
    def __init__(self, time_scale: float, workdir: Path | None = None, watch_parent: bool = True,
                 topology: str = "cloudfront") -> None:
        self.time_scale = time_scale
        self.topology = topology
        self._own_workdir = workdir is None  # a temporary one is removed at stop
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="dr-drill-lab-"))
        self.watch_parent = watch_parent
        self.proc: ManagedProcess | None = None
        self.endpoints: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"LabProcess(topology={self.topology!r}, workdir={str(self.workdir)!r})"

    def start(self, timeout: float = 90.0) -> dict[str, Any]:
        ready = self.workdir / "endpoints.json"
        ready.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "lab", "serve", "--topology", self.topology, "--time-scale", str(self.time_scale),
            "--workdir", str(self.workdir), "--ready-file", str(ready),
        ]
        if self.watch_parent:
            argv += ["--parent-pid", str(os.getpid())]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        # die_with_parent=False: a drill killed with SIGKILL must leave the lab up for `drill unwind`;
        # --parent-pid (watch_parent) is what stops an orphaned lab when that is wanted.
        self.proc = ManagedProcess(
            "lab", argv, self.workdir / "logs" / "lab.log", env=env, cwd=REPO_ROOT, die_with_parent=False
        ).start()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if not self.proc.alive():
                raise RuntimeError(f"the lab failed to start:\n{self.proc.tail(40)}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the lab did not start within {timeout:.0f}s:\n{self.proc.tail(40)}")
            time.sleep(0.1)
        self.endpoints = json.loads(ready.read_text())
        return self.endpoints

    def stop(self) -> None:
        if self.proc:
            # The lab stops MariaDB (~2 s), Azurite and replicas itself; give it time to.
            self.proc.stop(timeout=30)
        # Databases and logs of a temporary lab take ~100 MB; DRILL_KEEP_LAB=1 keeps them to debug.
        if self._own_workdir and not os.environ.get("DRILL_KEEP_LAB"):
            shutil.rmtree(self.workdir, ignore_errors=True)
