"""The AWS web tier: the `web` node group's nodes (its Auto Scaling group's instances), each running
a PetClinic replica, registered as instance targets of the ALB's target group.

The node group's Auto Scaling group (in moto) drives real PetClinic processes. EKS applies a
node group's scaling to that group (lab.aws.eks); the lab then keeps the group's instances in step
with the nodes, as EC2 Auto Scaling and EKS do:
- scale-in: a surplus instance goes `Terminating:Wait` (the lifecycle hook through which EKS drains
  the node: "Before each instance is terminated, Amazon EKS sends a signal to drain that node …
  sends SIGTERM signals to the containers, then waits for the terminationGracePeriodSeconds", EKS
  User Guide, *Delete a managed node group*). Its pod is evicted near the start of the drain: from
  then on the node refuses connections on the traffic port (kube-proxy rejects a NodePort without
  endpoints), so the ALB gets a TCP RST (502) and failed health checks. The instance stays a
  registered target until it terminates at the end of the drain; then it is deregistered (the ALB
  drains it for the target group's deregistration delay) and leaves the Auto Scaling group.
- scale-out: a new instance is `Pending` while the node boots, then `InService` with its replica
  started and registered; the ALB sends it traffic once it passes its first health check.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.alb import Alb
from lab.aws import eks as lab_eks
from lab.aws.elbv2 import TargetHealthRegistry
from lab.events import EventLog
from lab.ports import free_port, wait_for_port
from lab.procs import ManagedProcess
from lab.timing import Timings

REPO_ROOT = Path(__file__).resolve().parents[1]
# How long before a booting node is due the lab starts its replica process (wall seconds).
PRELAUNCH_SECONDS = 1.5


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.05)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class AppEnv:
    """How replicas reach their database: the same variables the Kubernetes manifest sets."""

    datasource_url: str
    username: str
    password: str = field(repr=False)
    # Other settings of the container (e.g. the Redis session store: lab.petclinic.sessions).
    extra: dict[str, str] = field(default_factory=dict)


def start_petclinic(name: str, port: int, app: AppEnv, log_dir: Path) -> ManagedProcess:
    env = dict(os.environ)
    env.update(
        SERVER_PORT=str(port),
        SPRING_DATASOURCE_URL=app.datasource_url,
        SPRING_DATASOURCE_USERNAME=app.username,
        SPRING_DATASOURCE_PASSWORD=app.password,
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(app.extra)
    return ManagedProcess(name, [sys.executable, "-m", "lab.petclinic.app"], log_dir / f"{name}.log", env=env, cwd=REPO_ROOT).start()


@dataclass
class Node:
    instance: Any  # moto's autoscaling InstanceState (its .instance is the EC2 instance)
    state: str  # booting | running | draining
    due: float  # booting: ready at; draining: instance terminated at
    port: int = 0
    proc: ManagedProcess | None = None
    serving: bool = False  # the pod is an endpoint: the node's traffic port accepts connections
    evict_at: float | None = None
    kill_at: float | None = None

    @property
    def instance_id(self) -> str:
        return str(self.instance.instance.id)


class WebTier:
    """Nodes of one node group's Auto Scaling group, their replicas, and the ALB in front."""

    def __init__(
        self,
        *,
        nodegroup: Any,
        cluster: str,
        auto_scaling_group: Any,
        target_group: Any,
        registry: TargetHealthRegistry,
        timings: Timings,
        time_scale: float,
        app: AppEnv,
        events: EventLog,
        log_dir: Path,
    ) -> None:
        self.nodegroup = nodegroup  # moto's nodegroup object (in-process)
        self.cluster = cluster
        self.asg = auto_scaling_group  # moto's FakeAutoScalingGroup
        self.tg = target_group  # moto's FakeTargetGroup
        self.timings = timings
        self.app = app
        self.events = events
        self.log_dir = log_dir
        self.nodes: dict[str, Node] = {}
        self._terminated: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.alb = Alb(target_group=target_group, registry=registry, time_scale=time_scale, resolve=self.resolve,
                       events=events, idle_timeout_seconds=timings.alb_idle_timeout_seconds)
        self.alb_port = self.alb.port
        self._thread = threading.Thread(target=self._lifecycle_loop, name="web-tier", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Run a replica on each InService instance, registered and healthy: the lab's steady state."""
        lab_eks.manage(self.asg)
        nodes = [Node(s, "running", 0.0) for s in list(self.asg.instance_states) if s.lifecycle_state == "InService"]
        for n in nodes:
            self._launch(n)
        for n in nodes:
            wait_for_port(n.port, timeout=20)
            n.serving = True
            self.tg.register([{"Id": n.instance_id, "Port": n.port}])
            self.nodes[n.instance_id] = n
        self.alb.start(healthy=set(self.nodes))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.alb.stop()
        with self._lock:
            for n in self.nodes.values():
                if n.proc:
                    n.proc.stop()
            self.nodes = {}

    def node_count(self) -> int:
        """Nodes of this group in the cluster now (Container Insights' count): joined, draining included."""
        with self._lock:
            return sum(1 for n in self.nodes.values() if n.state in ("running", "draining"))

    def resolve(self, target_id: str, port: int) -> tuple[str, int] | None:
        """Where the ALB's connection to a target lands; None: refused. Lock-free (the ALB calls it)."""
        n = self.nodes.get(target_id)
        if n is None:
            if target_id in self._terminated:
                return None  # no instance there any more
            return ("127.0.0.1", port)  # a target registered by someone else: its own address
        return ("127.0.0.1", n.port) if n.serving else None

    def _launch(self, n: Node) -> None:
        n.port = free_port()
        n.proc = start_petclinic(f"web-{n.instance_id}", n.port, self.app, self.log_dir)
        self.events.record("web-tier", "replica started", instance=n.instance_id, port=n.port)

    def _lifecycle_loop(self) -> None:
        while not self._stop.wait(0.02):
            try:
                if self._converge(time.monotonic()):
                    self.alb.refresh()
            except Exception as e:  # noqa: BLE001 — keep the lab alive; the event log says what went wrong
                self.events.record("web-tier", "lifecycle error", error=repr(e))

    def _converge(self, now: float) -> bool:
        """One step towards the Auto Scaling group's desired capacity; True if what serves changed."""
        t = self.timings
        changed = False
        desired = int(self.asg.desired_capacity or 0)
        with self._lock:
            live = [n for n in self.nodes.values() if n.state in ("booting", "running")]
            if len(live) > desired:
                # Instances still launching go first, then the newest. (EC2 Auto Scaling's default
                # policy balances AZs, then prefers the oldest launch template: which node goes does
                # not change what the drill measures.)
                surplus = sorted(live, key=lambda n: (n.state != "booting", -n.due))[: len(live) - desired]
                for n in surplus:
                    had_pod = n.state == "running"
                    n.state, n.due = "draining", now + t.node_drain_seconds
                    n.evict_at = now + t.pod_eviction_seconds if had_pod else None
                    n.instance.lifecycle_state = "Terminating:Wait"
                    self.events.record("web-tier", "node draining", instance=n.instance_id)
            elif len(live) < desired:
                for _ in range(desired - len(live)):
                    state = self._new_instance()
                    n = Node(state, "booting", now + t.node_boot_seconds)
                    self.nodes[n.instance_id] = n
                    self.events.record("web-tier", "node booting", instance=n.instance_id)
            for n in list(self.nodes.values()):
                if n.evict_at is not None and n.evict_at <= now:
                    # Evicted: out of the Service's endpoints (the NodePort refuses) and SIGTERM.
                    n.evict_at, n.serving = None, False
                    n.kill_at = now + t.pod_termination_grace_seconds
                    if n.proc:
                        n.proc.terminate()
                    self.events.record("web-tier", "pod evicted", instance=n.instance_id)
                    changed = True
                if n.kill_at is not None and n.kill_at <= now:
                    n.kill_at = None  # terminationGracePeriodSeconds over: the kubelet kills what is left
                    if n.proc:
                        n.proc.stop(timeout=0)
                if n.state == "booting" and n.proc is None and n.due - now <= PRELAUNCH_SECONDS:
                    # The replica process starts ahead so that its own start-up (a harness cost,
                    # not part of the modeled boot) is over when the node is due to be ready.
                    self._launch(n)
                if n.due > now:
                    continue
                if n.state == "booting":
                    if not port_open(n.port):
                        if n.proc is not None and not n.proc.alive():
                            self.events.record("web-tier", "replica exited before ready", instance=n.instance_id,
                                               log=n.proc.tail(5))
                            self._launch(n)
                        continue  # still starting: ready on a later step
                    n.state, n.serving = "running", True
                    n.instance.lifecycle_state = "InService"
                    self.tg.register([{"Id": n.instance_id, "Port": n.port}])
                    self.events.record("web-tier", "node ready", instance=n.instance_id)
                    changed = True
                elif n.state == "draining":
                    if n.proc:
                        n.proc.stop(timeout=0)
                    n.serving = False
                    self._terminated.add(n.instance_id)
                    if n.instance_id in self.tg.targets:
                        self.tg.deregister([{"Id": n.instance_id}])
                    self._terminate_instance(n)
                    del self.nodes[n.instance_id]
                    self.events.record("web-tier", "node terminated", instance=n.instance_id)
                    changed = True
        return changed

    # -- the Auto Scaling group's instances (moto, in-process) ------------------------------
    def _new_instance(self) -> Any:
        """Launch one instance into the group, `Pending` until its node is ready."""
        before = {id(s) for s in self.asg.instance_states}
        self.asg.replace_autoscaling_group_instances(1, self.asg.get_propagated_tags())
        (state,) = [s for s in self.asg.instance_states if id(s) not in before]
        state.lifecycle_state = "Pending"
        return state

    def _terminate_instance(self, n: Node) -> None:
        # A new list, not an in-place removal: moto's API threads may be iterating the old one.
        self.asg.instance_states = [s for s in self.asg.instance_states if s is not n.instance]
        self.asg.ec2_backend.terminate_instances([n.instance_id])
