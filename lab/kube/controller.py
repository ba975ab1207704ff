"""The lab AKS's kube-controller-manager: one loop driving the controllers and the kubelet.

- the namespace controller (here) empties a Terminating namespace, then removes it;
- the deployment controller (deployments.py) keeps `spec.replicas` pods of the current template;
- the kubelet (kubelet.py) runs each pod's containers as real processes and reports their status;
- the cloud controller's service part (service_lb.py) gives LoadBalancer Services their Azure IP.

The loop wakes on every change to the store (or every other tick). The facade also answers the
data-plane lookups: what a pod reaches at a ClusterIP, and what the VNet (the lab's App Gateway)
reaches at an address of the cluster (network.py says which addresses exist outside it).

Every delay a manifest states (probe delays and periods, back-off, minReadySeconds, the progress
deadline, grace periods) is divided by `time_scale`; network timeouts are not.
"""
from __future__ import annotations

import ipaddress
import threading
from typing import Any

from lab.events import EventLog
from lab.kube.deployments import DeploymentController
from lab.kube.errors import ApiError
from lab.kube.kubelet import TICK, ContainerRunner, ImagePullError, Kubelet, PetClinicRunner, RunningContainer
from lab.kube.network import Unreachable
from lab.kube.resources import pod_ready
from lab.kube.selectors import Selector
from lab.kube.service_lb import ServiceLoadBalancers
from lab.kube.state import Store

__all__ = ["ContainerRunner", "Controller", "ImagePullError", "NamespaceController", "PetClinicRunner", "RunningContainer"]


class NamespaceController:
    """Empties Terminating namespaces (pods stop gracefully), then removes them."""

    def __init__(self, store: Store, record: Any) -> None:
        self.store, self.record = store, record

    def sync(self) -> None:
        for ns in self.store.list("namespaces")[0]:
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            for plural in ("deployments", "services", "configmaps", "secrets", "pods"):
                for obj in self.store.list(plural, name)[0]:
                    if plural == "pods" and obj["metadata"].get("deletionTimestamp"):
                        continue
                    try:
                        self.store.delete(plural, name, obj["metadata"]["name"])
                    except ApiError:
                        pass
            if not self.store.list("pods", name)[0] and self.store.finalize("namespaces", "", name, ns["metadata"]["uid"]):
                self.record("namespace deleted", namespace=name)


# -- the facade ------------------------------------------------------------------------------------


class Controller:
    """kube-controller-manager + kubelet of the lab cluster, and the data-plane lookups."""

    def __init__(self, store: Store, runner: ContainerRunner, time_scale: float = 1.0, events: EventLog | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.store, self.time_scale, self.events = store, time_scale, events
        self.network = store.network
        self.kubelet = Kubelet(store, runner, time_scale, events)
        self.deployments = DeploymentController(store, time_scale, self._record)
        self.namespaces = NamespaceController(store, self._record)
        self.load_balancers = ServiceLoadBalancers(store, store.network, time_scale, self._record)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kube-controller-manager", daemon=True)

    def _record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("kube", event, **detail)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.kubelet.stop()

    def _loop(self) -> None:
        seen = -1
        while not self._stop.is_set():
            try:
                self.namespaces.sync()
                self.deployments.sync()
                self.load_balancers.sync()
                self.kubelet.sync()
            except Exception as e:  # noqa: BLE001 — a controller bug must show in the event log, not end the loop
                self._record("controller error", error=repr(e))
            seen = self.store.wait_for_change(seen if seen >= 0 else self.store.resource_version, TICK * 2)

    # -- lookups ---------------------------------------------------------------------------------------
    def namespace_exists(self, name: str) -> bool:
        return self.store.find("namespaces", "", name) is not None

    def service_endpoints(self, cluster_ip: str, port: int) -> list[tuple[str, int]]:
        """Inside the cluster (a pod or a node, through kube-proxy): (127.0.0.1, host port) of each
        ready pod behind the Service with this clusterIP and port. Nothing outside the cluster can
        use a ClusterIP: see `vnet_endpoints`."""
        for svc in self.store.list("services")[0]:
            if (svc.get("spec") or {}).get("clusterIP") == cluster_ip:
                return self._ready_endpoints(svc, port) or []
        return []

    def vnet_endpoints(self, address: str, port: int) -> list[tuple[str, int]] | None:
        """Outside the cluster, elsewhere in its VNet (the App Gateway's subnet): what answers at
        `address:port`, as (127.0.0.1, host port) of the ready pods behind it.

        A load balancer frontend (a LoadBalancer Service's IP) or a node's IP on a NodePort reaches
        the Service's pods, as the Azure load balancer and kube-proxy would. A ClusterIP, any other
        address of the service CIDR, or a pod IP (overlay pod CIDR) is not routable from the VNet:
        Unreachable, saying so. None: the address is none of this cluster's.
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        services = self.store.list("services")[0]
        for svc in services:
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if any(i.get("ip") == address for i in ingress):
                eps = self._ready_endpoints(svc, port)
                if eps is None:
                    raise Unreachable(f"{address}:{port}: the load balancer of Service {_name(svc)} has no rule for port {port} "
                                      f"(its ports: {_ports(svc)})")
                return eps
        nodes = {n["metadata"]["name"]: a["address"] for n in self.store.list("nodes")[0]
                 for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"}
        if address in nodes.values():
            for svc in services:
                for sp in (svc.get("spec") or {}).get("ports") or []:
                    if sp.get("nodePort") == port:
                        return self._ready_endpoints(svc, int(sp["port"])) or []
            raise Unreachable(f"{address}:{port}: node {address} has no NodePort {port} (connection refused)")
        for svc in services:
            if (svc.get("spec") or {}).get("clusterIP") == address:
                raise Unreachable(
                    f"{address} is the ClusterIP of Service {_name(svc)}: a virtual address that only kube-proxy on the "
                    f"cluster's own nodes translates; nothing in the virtual network answers it (no route from outside the cluster)")
        if ip in self.network.service_cidr:
            raise Unreachable(f"{address} is in the cluster's service CIDR {self.network.service_cidr}: virtual, "
                              f"not routable from the virtual network")
        if ip in self.network.pod_cidr:
            raise Unreachable(f"{address} is in the cluster's overlay pod CIDR {self.network.pod_cidr}: pod IPs are not "
                              f"routable from the virtual network")
        return None

    def _ready_endpoints(self, svc: dict[str, Any], port: int) -> list[tuple[str, int]] | None:
        """Host ports of the ready pods behind `svc`'s `port`; None if the Service has no such port."""
        spec = svc.get("spec") or {}
        sp = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if sp is None:
            return None
        if not spec.get("selector"):
            return []
        out = []
        sel = Selector.from_map(spec["selector"])
        for pod in self.store.list("pods", svc["metadata"]["namespace"])[0]:
            if pod["metadata"].get("deletionTimestamp") or not pod_ready(pod) or not sel.matches(pod["metadata"].get("labels")):
                continue
            w = self.kubelet.worker(pod["metadata"]["uid"])
            hp = w.host_port_for(pod, sp.get("targetPort", port)) if w else None
            if hp:
                out.append(("127.0.0.1", hp))
        return out

    def pod_host_port(self, namespace: str, name: str) -> int | None:
        """The host port of a running pod's first container (for lab diagnostics)."""
        pod = self.store.find("pods", namespace, name)
        w = self.kubelet.worker(pod["metadata"]["uid"]) if pod else None
        return next((c.host_port for c in w.containers if c.handle is not None), None) if w else None


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def _ports(svc: dict[str, Any]) -> str:
    return ", ".join(str(p.get("port")) for p in (svc.get("spec") or {}).get("ports") or []) or "none"
