"""The AWS web tier: PetClinic replicas on the `web` node group's nodes, behind the ALB.

The node group's desiredSize (as stored in moto) drives real PetClinic processes after the modeled
drain and boot delays; each node is an instance target of the ALB's target group, whose health
follows real HTTP health checks; and the ALB's own address routes to healthy targets, fails open
when all are unhealthy, and answers 503 with none registered, as a real ALB does.
"""
from __future__ import annotations

import itertools
import os
import secrets
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab.aws import eks as lab_eks
from lab.aws.elbv2 import TargetHealthRegistry
from lab.events import EventLog
from lab.httpfwd import Request, Response, Server, UpstreamError, forward
from lab.ports import free_port, wait_for_port
from lab.procs import ManagedProcess
from lab.timing import Timings

REPO_ROOT = Path(__file__).resolve().parents[1]

ALB_503 = b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
ALB_502 = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
ALB_504 = b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"


@dataclass
class AppEnv:
    """How replicas reach their database: the same variables the Kubernetes manifest sets."""

    datasource_url: str
    username: str
    password: str = field(repr=False)


def start_petclinic(name: str, port: int, app: AppEnv, log_dir: Path) -> ManagedProcess:
    env = dict(os.environ)
    env.update(
        SERVER_PORT=str(port),
        SPRING_DATASOURCE_URL=app.datasource_url,
        SPRING_DATASOURCE_USERNAME=app.username,
        SPRING_DATASOURCE_PASSWORD=app.password,
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return ManagedProcess(name, [sys.executable, "-m", "lab.petclinic.app"], log_dir / f"{name}.log", env=env, cwd=REPO_ROOT).start()


@dataclass
class Node:
    instance_id: str
    state: str  # booting | running | terminating
    due: float
    port: int = 0
    proc: ManagedProcess | None = None
    ok_streak: int = 0
    fail_streak: int = 0


class WebTier:
    """Nodes of one node group, their ALB targets, health checks and the ALB data plane."""

    def __init__(
        self,
        *,
        nodegroup: Any,
        cluster: str,
        target_group: Any,
        registry: TargetHealthRegistry,
        timings: Timings,
        app: AppEnv,
        events: EventLog,
        log_dir: Path,
    ) -> None:
        self.nodegroup = nodegroup  # moto's nodegroup object (in-process)
        self.cluster = cluster
        self.tg = target_group  # moto's FakeTargetGroup
        self.registry = registry
        self.timings = timings
        self.app = app
        self.events = events
        self.log_dir = log_dir
        self.nodes: list[Node] = []
        self._draining: dict[str, float] = {}  # instance id -> when deregistration completes
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._rr = itertools.count()
        self._routable_before: int | None = None
        self.alb_port = free_port()
        self.alb = Server(self.alb_port, self._route)
        self._threads = [
            threading.Thread(target=self._lifecycle_loop, name="web-tier", daemon=True),
            threading.Thread(target=self._health_loop, name="alb-health", daemon=True),
        ]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Boot the node group at its current desiredSize, healthy, as the lab's steady state."""
        want = int(self.nodegroup.scaling_config["desiredSize"])
        nodes = [self._new_node("running", 0.0) for _ in range(want)]
        for n in nodes:
            self._launch(n)
        for n in nodes:
            wait_for_port(n.port, timeout=20)
            self._register(n, "healthy")
        self.nodes = nodes
        self._note_routable()
        self.alb.start()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self.alb.stop()
        with self._lock:
            for n in self.nodes:
                if n.proc:
                    n.proc.stop()
            self.nodes = []
        lab_eks.set_busy(self.cluster, self.nodegroup.nodegroup_name, False)

    def _new_node(self, state: str, due: float) -> Node:
        return Node(instance_id="i-0" + secrets.token_hex(8), state=state, due=due)

    def _launch(self, n: Node) -> None:
        n.port = free_port()
        n.proc = start_petclinic(f"web-{n.instance_id}", n.port, self.app, self.log_dir)
        self.events.record("web-tier", "replica started", instance=n.instance_id, port=n.port)

    def _register(self, n: Node, state: str) -> None:
        self.tg.register([{"Id": n.instance_id, "Port": n.port}])
        self.registry.set(self.tg.arn, n.instance_id, n.port, state)

    def _lifecycle_loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self._converge(time.monotonic())
            except Exception as e:  # keep the lab alive; the event log says what went wrong
                self.events.record("web-tier", "lifecycle error", error=repr(e))

    def _converge(self, now: float) -> None:
        desired = int(self.nodegroup.scaling_config["desiredSize"])
        with self._lock:
            live = [n for n in self.nodes if n.state in ("booting", "running")]
            if len(live) > desired:
                # AWS removes nodes still booting first, then the newest.
                surplus = sorted(live, key=lambda n: (n.state != "booting", -n.due))[: len(live) - desired]
                for n in surplus:
                    n.state, n.due = "terminating", now + self.timings.node_drain_seconds
                    self.events.record("web-tier", "node draining", instance=n.instance_id)
            elif len(live) < desired:
                for _ in range(desired - len(live)):
                    n = self._new_node("booting", now + self.timings.node_boot_seconds)
                    self.nodes.append(n)
                    self.events.record("web-tier", "node booting", instance=n.instance_id)
            for n in list(self.nodes):
                if n.due > now:
                    continue
                if n.state == "booting":
                    self._launch(n)
                    wait_for_port(n.port, timeout=20)
                    self._register(n, "initial")
                    n.state = "running"
                    self.events.record("web-tier", "node ready", instance=n.instance_id)
                elif n.state == "terminating":
                    # The ingress controller deregisters the pod before its node goes away.
                    self.tg.deregister([{"Id": n.instance_id}])
                    self.registry.set(self.tg.arn, n.instance_id, n.port, "draining")
                    self._draining[n.instance_id] = now + self.timings.alb_deregistration_delay_seconds
                    self._note_routable()
                    if n.proc:
                        n.proc.stop()
                    self.nodes.remove(n)
                    self.events.record("web-tier", "replica stopped", instance=n.instance_id)
            for iid, until in list(self._draining.items()):
                if until <= now:
                    self.registry.forget(self.tg.arn, iid)
                    del self._draining[iid]
            busy = any(n.state in ("booting", "terminating") for n in self.nodes)
            self.nodegroup.status = "UPDATING" if busy else "ACTIVE"
            lab_eks.set_busy(self.cluster, self.nodegroup.nodegroup_name, busy)

    # -- health checks ---------------------------------------------------------------------
    def _health_loop(self) -> None:
        while not self._stop.wait(self.timings.alb_health_interval_seconds):
            with self._lock:
                nodes = [n for n in self.nodes if n.state in ("running", "terminating") and n.port]
            for n in nodes:
                self._check(n)
            self._note_routable()

    def _check(self, n: Node) -> None:
        url = f"http://127.0.0.1:{n.port}/actuator/health"
        try:
            with urllib.request.urlopen(url, timeout=self.timings.alb_health_timeout_seconds) as r:
                ok = r.status == 200
        except Exception:
            ok = False
        st = self.registry.get(self.tg.arn, n.instance_id)
        if st is None or st.state == "draining":
            return
        n.ok_streak, n.fail_streak = (n.ok_streak + 1, 0) if ok else (0, n.fail_streak + 1)
        new = st.state
        if st.state in ("initial", "unhealthy") and n.ok_streak >= self.timings.alb_healthy_threshold:
            new = "healthy"
        elif st.state in ("initial", "healthy") and n.fail_streak >= self.timings.alb_unhealthy_threshold:
            new = "unhealthy"
        if new != st.state:
            self.registry.set(self.tg.arn, n.instance_id, n.port, new)
            self.events.record("alb", f"target {new}", instance=n.instance_id)

    # -- data plane --------------------------------------------------------------------------
    def routable(self) -> list[int]:
        """Ports the ALB would send a request to now."""
        states = [s for s in self.registry.states(self.tg.arn) if s.state != "draining"]
        healthy = [s.port for s in states if s.state == "healthy"]
        return healthy or [s.port for s in states]  # all unhealthy: the ALB fails open

    def _note_routable(self) -> None:
        n = len(self.routable())
        if (self._routable_before or 0) > 0 and n == 0:
            self.events.record("alb", "no routable targets")
        elif self._routable_before == 0 and n > 0:
            self.events.record("alb", "routable targets", count=n)
        self._routable_before = n

    def _route(self, req: Request) -> Response:
        ports = self.routable()
        if not ports:
            return Response(503, [("Content-Type", "text/html"), ("Server", "awselb/2.0")], ALB_503)
        port = ports[next(self._rr) % len(ports)]
        try:
            resp = forward("127.0.0.1", port, req, connect_timeout=1.0, read_timeout=self.timings.alb_idle_timeout_seconds)
        except UpstreamError as e:
            body, code = (ALB_504, 504) if e.timed_out else (ALB_502, 502)
            return Response(code, [("Content-Type", "text/html"), ("Server", "awselb/2.0")], body)
        return resp
