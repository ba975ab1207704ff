"""The lab AKS's cloud-controller-manager, service part: Azure load balancers for LoadBalancer Services.

As the Azure cloud provider does, a Service of type LoadBalancer gets a frontend on the cluster's
load balancer and, once Azure has made it, its IP in `status.loadBalancer.ingress[0].ip`:

- with `service.beta.kubernetes.io/azure-load-balancer-internal: "true"`: a private IP from the
  cluster's subnet (or the subnet named by `…-internal-subnet`), the lowest one free, or the one
  asked for (`…-azure-load-balancer-ipv4`, or the deprecated `spec.loadBalancerIP`);
- without it: a public IP.

The IP appears only after `load_balancer_assign_seconds` (real-world, divided by the time scale):
until then `kubectl get svc` shows `<pending>`, as on AKS. A frontend that cannot be made (a subnet
the VNet does not have, an address outside the subnet or already taken) stays pending, and the
reason goes to the lab's event log, as the real controller's "Error syncing load balancer" event.
Changing the type away from LoadBalancer, or deleting the Service, frees the address.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

from lab.kube.network import AZURE_RESERVED_LOW, ClusterNetwork
from lab.kube.state import Store

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
INTERNAL_SUBNET = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"
IPV4 = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
# Where the lab's public load balancer frontends come from (stand-ins for Azure public IPs).
PUBLIC_POOL = ipaddress.ip_network("20.249.128.0/24")


def is_internal(svc: dict[str, Any]) -> bool:
    return str(((svc.get("metadata") or {}).get("annotations") or {}).get(INTERNAL, "")).lower() == "true"


class ServiceLoadBalancers:
    """Assigns (after the modeled delay) and frees load balancer IPs of LoadBalancer Services."""

    def __init__(self, store: Store, network: ClusterNetwork, time_scale: float, record: Callable[..., None]) -> None:
        self.store, self.network, self.record = store, network, record
        self.delay = network.load_balancer_assign_seconds / time_scale
        self._first_seen: dict[str, float] = {}  # service uid -> monotonic time its LB was asked for
        self._assigned: dict[str, str] = {}  # service uid -> IP
        self._failed: dict[str, str] = {}  # service uid -> last reason recorded (once per reason)

    def in_use(self) -> set[str]:
        return set(self._assigned.values())

    def sync(self) -> None:
        now = time.monotonic()
        live: set[str] = set()
        for svc in self.store.list("services")[0]:
            meta, spec = svc["metadata"], svc.get("spec") or {}
            uid = meta["uid"]
            if spec.get("type") != "LoadBalancer":
                if uid in self._assigned or ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                    self._release(uid)
                    self.store.set_status("services", meta["namespace"], meta["name"], {"loadBalancer": {}}, uid=uid)
                continue
            live.add(uid)
            if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                continue
            if now - self._first_seen.setdefault(uid, now) < self.delay:
                continue
            ip, why = self._allocate(svc)
            if ip is None:
                if self._failed.get(uid) != why:
                    self._failed[uid] = why
                    self.record("load balancer error", service=f"{meta['namespace']}/{meta['name']}", reason=why)
                continue
            self._assigned[uid] = ip
            self._failed.pop(uid, None)
            self.store.set_status("services", meta["namespace"], meta["name"],
                                  {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}, uid=uid)
            self.record("load balancer assigned", service=f"{meta['namespace']}/{meta['name']}", ip=ip,
                        internal=is_internal(svc), seconds=round(now - self._first_seen[uid], 3))
        for uid in set(self._assigned) | set(self._first_seen):
            if uid not in live:
                self._release(uid)

    def _release(self, uid: str) -> None:
        self._assigned.pop(uid, None)
        self._first_seen.pop(uid, None)
        self._failed.pop(uid, None)

    def _allocate(self, svc: dict[str, Any]) -> tuple[str | None, str]:
        """(IP, "") or (None, why not): the frontend Azure would give this Service."""
        annotations = (svc["metadata"].get("annotations") or {})
        wanted = annotations.get(IPV4) or (svc.get("spec") or {}).get("loadBalancerIP")
        taken = self.in_use() | {self.network.node_ip(i) for i in range(len(self.store.list("nodes")[0]))}
        subnet_name: str | None
        if not is_internal(svc):
            pool = PUBLIC_POOL
            subnet_name = "public"
        else:
            subnet_name = annotations.get(INTERNAL_SUBNET)
            found = self.network.subnet(subnet_name)
            if found is None:
                return None, (f"ensure load balancer: subnet {subnet_name!r} not found in the cluster's virtual network "
                              f"(annotation {INTERNAL_SUBNET})")
            pool = found
        if wanted:
            try:
                addr = ipaddress.ip_address(str(wanted))
            except ValueError:
                return None, f"ensure load balancer: {wanted!r} is not an IP address"
            if addr not in pool:
                return None, f"ensure load balancer: the requested IP {wanted} is not in subnet {subnet_name} ({pool})"
            if str(addr) in taken:
                return None, f"ensure load balancer: the requested IP {wanted} is already in use in subnet {subnet_name}"
            return str(addr), ""
        for i in range(AZURE_RESERVED_LOW, pool.num_addresses - 1):
            ip = str(pool[i])
            if ip not in taken:
                return ip, ""
        return None, f"ensure load balancer: subnet {subnet_name} ({pool}) has no free address"
