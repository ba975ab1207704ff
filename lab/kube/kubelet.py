"""The lab AKS's kubelet: each pod's containers run as real processes on 127.0.0.1.

A ContainerRunner starts a container (a free host port stands for the container port); the
kubelet resolves env like the real one (literal values, configMapKeyRef/secretKeyRef, fieldRef,
envFrom, `$(VAR)` expansion; a missing reference is CreateContainerConfigError), runs
startup/readiness/liveness probes with `time_scale`-compressed delays, restarts crashed or
unhealthy containers with back-off, and reports pod status.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lab.events import EventLog
from lab.kube.resources import now_rfc3339
from lab.kube.state import Store
from lab.ports import free_port
from lab.procs import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
TICK = 0.05

# -- container runtime ----------------------------------------------------------------------------


class RunningContainer(Protocol):
    def alive(self) -> bool: ...

    def stop(self) -> None: ...


class ContainerRunner(Protocol):
    def start(self, pod_name: str, image: str, env: dict[str, str], host_port: int) -> RunningContainer: ...


class ImagePullError(Exception):
    """The runner cannot run this image (the pod shows ErrImagePull / ImagePullBackOff)."""


class _ProcessContainer:
    def __init__(self, proc: ManagedProcess) -> None:
        self.proc = proc

    def alive(self) -> bool:
        return self.proc.alive()

    def stop(self) -> None:
        self.proc.stop(timeout=5.0)

    def __repr__(self) -> str:
        return f"<container {self.proc.name} pid={self.proc.pid}>"


# Host variables a Python process needs; everything else a container sees comes from its spec.
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE")


class PetClinicRunner:
    """Runs PetClinic images as `python -m lab.petclinic.app`, like lab.web_tier.start_petclinic."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)

    def start(self, pod_name: str, image: str, env: dict[str, str], host_port: int) -> RunningContainer:
        if "petclinic" not in image.lower():
            raise ImagePullError(f'failed to pull and unpack image "{image}": the lab can only run PetClinic images')
        penv = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        penv.update(env)
        penv.update(
            HOSTNAME=pod_name,
            SERVER_PORT=str(host_port),
            SERVER_ADDRESS="127.0.0.1",
            PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        proc = ManagedProcess(
            f"pod-{pod_name}", [sys.executable, "-m", "lab.petclinic.app"], self.log_dir / f"{pod_name}.log",
            env=penv, cwd=REPO_ROOT,
        ).start()
        return _ProcessContainer(proc)


# -- env resolution (kubelet) --------------------------------------------------------------------------


class ConfigError(Exception):
    """CreateContainerConfigError: a referenced ConfigMap/Secret or key is missing."""


_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined vars are replaced, `$$` escapes, unknown refs stay."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, value)


def resolve_env(store: Store, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}

    def source(kind: str, name: str, optional: bool) -> dict[str, str] | None:
        plural = "configmaps" if kind == "ConfigMap" else "secrets"
        obj = store.find(plural, ns, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        if kind == "Secret":
            return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})

    for ef in container.get("envFrom") or []:
        ref = ef.get("configMapRef") or ef.get("secretRef") or {}
        kind = "ConfigMap" if "configMapRef" in ef else "Secret"
        data = source(kind, ref.get("name", ""), bool(ref.get("optional")))
        for k, v in (data or {}).items():
            env[ef.get("prefix", "") + k] = v
    for e in container.get("env") or []:
        name = e["name"]
        if "valueFrom" not in e:
            env[name] = expand(str(e.get("value", "")), env)
            continue
        vf = e["valueFrom"]
        if "configMapKeyRef" in vf or "secretKeyRef" in vf:
            kind = "ConfigMap" if "configMapKeyRef" in vf else "Secret"
            ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
            optional = bool(ref.get("optional"))
            data = source(kind, ref.get("name", ""), optional)
            if data is None:
                continue
            if ref.get("key") not in data:
                if optional:
                    continue
                raise ConfigError(f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}")
            env[name] = data[ref["key"]]
        elif "fieldRef" in vf:
            path = vf["fieldRef"].get("fieldPath", "")
            fields = {
                "metadata.name": pod["metadata"]["name"], "metadata.namespace": ns, "metadata.uid": pod["metadata"]["uid"],
                "spec.nodeName": pod["spec"].get("nodeName", ""), "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                "status.podIP": pod.get("status", {}).get("podIP", ""), "status.hostIP": pod.get("status", {}).get("hostIP", ""),
            }
            m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
            if m:
                env[name] = (pod["metadata"].get(m.group(1)) or {}).get(m.group(2), "")
            elif path in fields:
                env[name] = fields[path]
            else:
                raise ConfigError(f"unsupported fieldRef {path!r}")
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom source {sorted(vf)}")
    return env


def _named_port(container: dict[str, Any], port: Any) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    return None


# -- kubelet ------------------------------------------------------------------------------------------


@dataclass
class _Probe:
    spec: dict[str, Any]
    kind: str  # startup | readiness | liveness
    next_due: float
    successes: int = 0
    failures: int = 0


@dataclass
class _Container:
    spec: dict[str, Any]
    index: int
    host_port: int = 0
    listen_port: int = 8080  # the container port the host port stands for
    handle: RunningContainer | None = None
    started_at: str = ""
    started_mono: float = 0.0
    started: bool = False  # startup probe passed (or none)
    ready: bool = False
    restarts: int = 0
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    last_terminated: dict[str, Any] | None = None
    next_start: float = 0.0
    pull_failures: int = 0
    probes: dict[str, _Probe] = field(default_factory=dict)
    container_id: str = ""

    @property
    def name(self) -> str:
        return str(self.spec["name"])


class _PodWorker:
    """One pod's life on its node: start containers, probe them, report status, stop them."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        self.k = kubelet
        self.ns, self.name, self.uid = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["metadata"]["uid"]
        self.node = pod["spec"].get("nodeName", "")
        self.host_ip = kubelet.node_ip(self.node)
        self.pod_ip = kubelet.alloc_pod_ip(self.node)
        self.started_at = now_rfc3339()
        self.containers = [_Container(c, i) for i, c in enumerate(pod["spec"]["containers"])]
        self.transitions: dict[str, tuple[str, str]] = {}
        self.was_ready = False
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"kubelet:{self.ns}/{self.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- loop ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        finalize = False
        try:
            while not self.stop_event.is_set():
                pod = self.k.store.find("pods", self.ns, self.name)
                if pod is None or pod["metadata"]["uid"] != self.uid:
                    break  # force-deleted
                if pod["metadata"].get("deletionTimestamp"):
                    for c in self.containers:
                        c.ready = False
                    self._publish(pod)
                    finalize = True
                    break
                now = time.monotonic()
                for c in self.containers:
                    if c.handle is None:
                        if now >= c.next_start:
                            self._start(pod, c)
                    elif not c.handle.alive():
                        self._exited(c, "Error", 1)
                    else:
                        self._probe(c, now)
                self._publish(pod)
                self.stop_event.wait(TICK)
        except Exception as e:  # noqa: BLE001 — a kubelet bug must not leave processes behind or kill the lab
            self.k.record("kubelet error", pod=self.name, namespace=self.ns, error=repr(e))
        finally:
            self._kill_all()
            self.k.release_pod_ip(self.node, self.pod_ip)
            if finalize:
                self.k.store.finalize("pods", self.ns, self.name, self.uid)
            self.k.record("pod stopped", pod=self.name, namespace=self.ns)
            self.k.worker_done(self)

    def _start(self, pod: dict[str, Any], c: _Container) -> None:
        scale = self.k.time_scale
        try:
            env = resolve_env(self.k.store, {**pod, "status": {"podIP": self.pod_ip, "hostIP": self.host_ip}}, c.spec)
        except ConfigError as e:
            if c.waiting is None or c.waiting[0] != "CreateContainerConfigError":
                self.k.record("container config error", pod=self.name, namespace=self.ns, container=c.name, message=str(e))
            c.waiting = ("CreateContainerConfigError", str(e))
            c.next_start = time.monotonic() + max(TICK, 1.0 / scale)
            return
        ports = c.spec.get("ports") or []
        c.listen_port = int(env["SERVER_PORT"]) if env.get("SERVER_PORT", "").isdigit() else (
            int(ports[0]["containerPort"]) if ports else 8080)
        c.host_port = free_port()
        try:
            c.handle = self.k.runner.start(f"{self.name}-{c.name}" if len(self.containers) > 1 else self.name,
                                           str(c.spec["image"]), env, c.host_port)
        except ImagePullError as e:
            c.pull_failures += 1
            c.waiting = ("ErrImagePull" if c.pull_failures == 1 else "ImagePullBackOff", str(e))
            if c.pull_failures == 1:
                self.k.record("image pull error", pod=self.name, namespace=self.ns, image=c.spec["image"])
            c.next_start = time.monotonic() + min(300.0, 10.0 * 2 ** (c.pull_failures - 1)) / scale
            return
        now = time.monotonic()
        c.waiting, c.started_at, c.started_mono, c.ready = None, now_rfc3339(), now, False
        c.container_id = "containerd://" + hashlib.sha256(f"{self.uid}/{c.name}/{c.restarts}".encode()).hexdigest()
        c.probes = {}
        for kind in ("startup", "readiness", "liveness"):
            spec = c.spec.get(f"{kind}Probe")
            if spec:
                c.probes[kind] = _Probe(spec, kind, now + float(spec.get("initialDelaySeconds", 0)) / scale)
        c.started = "startup" not in c.probes
        c.ready = "readiness" not in c.probes and c.started
        self.k.record("pod started", pod=self.name, namespace=self.ns, container=c.name, host_port=c.host_port)

    def _exited(self, c: _Container, reason: str, code: int) -> None:
        """A container died (or was killed for failing liveness): restart it after a back-off."""
        if c.handle is not None:
            c.handle.stop()
        c.handle = None
        c.ready = False
        c.last_terminated = {"exitCode": code, "reason": reason, "startedAt": c.started_at, "finishedAt": now_rfc3339(),
                             "containerID": c.container_id}
        c.restarts += 1
        # The kubelet restarts at once the first time, then backs off 10s, 20s, ... up to 5 min.
        delay = 0.0 if c.restarts == 1 else min(300.0, 10.0 * 2 ** (c.restarts - 2))
        c.next_start = time.monotonic() + delay / self.k.time_scale
        c.waiting = (("CrashLoopBackOff",
                      f"back-off {delay:.0f}s restarting failed container={c.name} pod={self.name}_{self.ns}({self.uid})")
                     if delay else ("ContainerCreating", ""))
        self.k.record("container restarted", pod=self.name, namespace=self.ns, container=c.name, reason=reason, restarts=c.restarts)

    def _probe(self, c: _Container, now: float) -> None:
        scale = self.k.time_scale
        for kind in ("startup", "readiness", "liveness"):
            p = c.probes.get(kind)
            if p is None or now < p.next_due or (kind != "startup" and not c.started) or (kind == "startup" and c.started):
                continue
            p.next_due = now + float(p.spec.get("periodSeconds", 10)) / scale
            ok = self._check(c, p.spec)
            p.successes, p.failures = (p.successes + 1, 0) if ok else (0, p.failures + 1)
            if kind == "startup":
                if p.successes >= 1:
                    c.started = True
                    c.ready = "readiness" not in c.probes
                elif p.failures >= int(p.spec.get("failureThreshold", 3)):
                    self._exited(c, "StartupProbeFailed", 137)
                    return
            elif kind == "readiness":
                if ok and p.successes >= int(p.spec.get("successThreshold", 1)):
                    c.ready = True
                elif not ok and p.failures >= int(p.spec.get("failureThreshold", 3)):
                    c.ready = False
            elif not ok and p.failures >= int(p.spec.get("failureThreshold", 3)):
                self._exited(c, "LivenessProbeFailed", 137)
                return

    def _check(self, c: _Container, probe: dict[str, Any]) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            hg = probe["httpGet"]
            port = _named_port(c.spec, hg.get("port"))
            if port != c.listen_port:
                return False  # nothing listens on that container port: connection refused
            conn_cls = http.client.HTTPSConnection if str(hg.get("scheme", "HTTP")).upper() == "HTTPS" else http.client.HTTPConnection
            kw: dict[str, Any] = {"timeout": timeout}
            if conn_cls is http.client.HTTPSConnection:
                import ssl
                kw["context"] = ssl._create_unverified_context()  # the kubelet skips verification too
            conn = conn_cls("127.0.0.1", c.host_port, **kw)
            try:
                headers = {"Host": f"{self.pod_ip}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*"}
                headers.update({h["name"]: h["value"] for h in hg.get("httpHeaders") or []})
                conn.request("GET", hg.get("path", "/"), headers=headers)
                status = conn.getresponse().status
                return 200 <= status < 400
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()
        if "tcpSocket" in probe:
            if _named_port(c.spec, probe["tcpSocket"].get("port")) != c.listen_port:
                return False
            try:
                with socket.create_connection(("127.0.0.1", c.host_port), timeout=timeout):
                    return True
            except OSError:
                return False
        return False  # exec/grpc probes cannot run here: they fail, visibly, rather than pass silently

    def _kill_all(self) -> None:
        for c in self.containers:
            h, c.handle = c.handle, None
            if h is not None:
                h.stop()
                self.k.forget(h)

    # -- status ---------------------------------------------------------------------------------------
    def _cond(self, type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        status = "True" if ok else "False"
        prev = self.transitions.get(type_)
        if prev is None or prev[0] != status:
            self.transitions[type_] = (status, now_rfc3339())
        out: dict[str, Any] = {"type": type_, "status": status, "lastTransitionTime": self.transitions[type_][1]}
        if not ok and reason:
            out["reason"], out["message"] = reason, message
        return out

    def _publish(self, pod: dict[str, Any]) -> None:
        statuses = []
        for c in self.containers:
            st: dict[str, Any] = {
                "name": c.name, "image": c.spec["image"], "ready": c.ready, "restartCount": c.restarts,
                "started": c.handle is not None and c.started,
                "imageID": "" if c.waiting and c.handle is None and c.pull_failures else
                "docker.io/" + str(c.spec["image"]).split(":")[0] + "@sha256:" + hashlib.sha256(str(c.spec["image"]).encode()).hexdigest(),
            }
            if c.handle is not None:
                st["state"] = {"running": {"startedAt": c.started_at}}
                st["containerID"] = c.container_id
            else:
                reason, message = c.waiting or ("ContainerCreating", "")
                st["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
            st["lastState"] = {"terminated": c.last_terminated} if c.last_terminated else {}
            statuses.append(st)
        running = all(c.handle is not None for c in self.containers)
        ready = running and all(c.ready for c in self.containers) and not pod["metadata"].get("deletionTimestamp")
        unready = [c.name for c in self.containers if not (c.handle is not None and c.ready)]
        msg = f"containers with unready status: [{' '.join(unready)}]"
        status = {
            "phase": "Running" if any(c.handle is not None or c.restarts for c in self.containers) else "Pending",
            "conditions": [
                self._cond("PodReadyToStartContainers", True),
                self._cond("Initialized", True),
                self._cond("Ready", ready, "ContainersNotReady", msg),
                self._cond("ContainersReady", ready, "ContainersNotReady", msg),
                self._cond("PodScheduled", True),
            ],
            "hostIP": self.host_ip, "hostIPs": [{"ip": self.host_ip}],
            "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.started_at,
            "containerStatuses": statuses,
            "qosClass": pod.get("status", {}).get("qosClass", "BestEffort"),
        }
        self.k.store.set_status("pods", self.ns, self.name, status, uid=self.uid)
        if ready != self.was_ready:
            self.was_ready = ready
            self.k.record("pod ready" if ready else "pod not ready", pod=self.name, namespace=self.ns)

    def host_port_for(self, pod: dict[str, Any], target: Any) -> int | None:
        """The host port serving container port `target` (a number or a port name), if running."""
        for c in self.containers:
            port = _named_port(c.spec, target)
            if c.handle is not None and port == c.listen_port:
                return c.host_port
        return None


class Kubelet:
    """Runs a worker per pod; owns every container it started, so stop() leaves nothing behind."""

    def __init__(self, store: Store, runner: ContainerRunner, time_scale: float, events: EventLog | None) -> None:
        self.store, self.runner, self.time_scale, self.events = store, runner, time_scale, events
        self.workers: dict[str, _PodWorker] = {}  # by pod uid
        self._lock = threading.RLock()
        self._ips: dict[str, set[str]] = {}
        self._handles: list[RunningContainer] = []
        self.stopping = False

    def record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("kube", event, **detail)

    def node_ip(self, node: str) -> str:
        n = self.store.find("nodes", "", node)
        for a in (n or {}).get("status", {}).get("addresses", []):
            if a["type"] == "InternalIP":
                return str(a["address"])
        return "10.224.0.4"

    def alloc_pod_ip(self, node: str) -> str:
        n = self.store.find("nodes", "", node)
        prefix = (n or {}).get("spec", {}).get("podCIDR", "10.244.0.0/24").rsplit(".", 1)[0]
        with self._lock:
            used = self._ips.setdefault(node, set())
            for i in range(2, 255):
                ip = f"{prefix}.{i}"
                if ip not in used:
                    used.add(ip)
                    return ip
        raise RuntimeError(f"node {node} has no free pod IPs")

    def release_pod_ip(self, node: str, ip: str) -> None:
        with self._lock:
            self._ips.get(node, set()).discard(ip)

    def forget(self, handle: RunningContainer) -> None:
        with self._lock:
            if handle in self._handles:
                self._handles.remove(handle)

    def worker_done(self, w: _PodWorker) -> None:
        with self._lock:
            if self.workers.get(w.uid) is w:
                del self.workers[w.uid]

    def sync(self) -> None:
        if self.stopping:
            return
        pods, _ = self.store.list("pods")
        with self._lock:
            for pod in pods:
                uid = pod["metadata"]["uid"]
                if uid not in self.workers and pod["spec"].get("nodeName"):
                    w = _PodWorker(self, pod)
                    self.workers[uid] = w
                    w.start()
        # Containers started by workers are tracked so stop() can reach them even mid-start.
        with self._lock:
            for w in self.workers.values():
                for c in w.containers:
                    if c.handle is not None and c.handle not in self._handles:
                        self._handles.append(c.handle)

    def worker(self, uid: str) -> _PodWorker | None:
        with self._lock:
            return self.workers.get(uid)

    def stop(self) -> None:
        self.stopping = True
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            w.stop_event.set()
        for w in workers:
            w.thread.join(timeout=15)
        with self._lock:
            handles, self._handles = list(self._handles), []
            for w in workers:
                handles += [c.handle for c in w.containers if c.handle is not None]
        for h in handles:
            h.stop()
