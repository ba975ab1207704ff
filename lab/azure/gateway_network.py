"""What the lab's Application Gateway, in its subnet of the VNet, can reach: the resolver of its data plane.

App Gateway sends each request to a backend pool address over the network it sits in:

- an FQDN it can resolve on the Internet (the Blob static-website endpoint, the seeds' first pool);
- an IP address in its virtual network that something answers: an AKS internal load balancer's
  frontend, a node's IP on a NodePort (lab.kube.network says which addresses of a cluster those are);
- nothing else. A Kubernetes ClusterIP is virtual (kube-proxy's rules on the cluster's nodes), and
  overlay pod IPs are not VNet-routable: the backend is Unhealthy and users get 502.

`resolve(address, port)` returns where the lab serves such an address — (host, port) on loopback —
or raises Unreachable, whose message App Gateway's backend health shows as the probe's log.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from lab.kube.network import Unreachable

Endpoint = tuple[str, int]


class GatewayNetwork:
    def __init__(
        self,
        sites: dict[str, Endpoint],
        vnet_prefixes: Callable[[], Iterable[str]],
        clusters: Callable[[], Iterable[object]],
        vnet_name: str = "vnet-blue",
    ) -> None:
        self.sites = {k.lower(): v for k, v in sites.items()}  # Internet FQDN -> where the lab serves it
        self.vnet_prefixes = vnet_prefixes  # the gateway's VNet address space, read when needed
        self.clusters = clusters  # the AKS clusters in that VNet (objects with vnet_endpoints)
        self.vnet_name = vnet_name

    def __repr__(self) -> str:
        return f"GatewayNetwork(vnet={self.vnet_name!r}, sites={sorted(self.sites)})"

    def resolve(self, address: str, port: int) -> list[Endpoint]:
        site = self.sites.get(address.lower())
        if site is not None:
            return [site]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise Unreachable(f"{address}: the name does not resolve (DNS)") from None
        for cluster in self.clusters():
            found = cluster.vnet_endpoints(address, port)  # type: ignore[attr-defined]
            if found is not None:
                return found
        prefixes = [ipaddress.ip_network(p) for p in self.vnet_prefixes()]
        if any(ip in p for p in prefixes):
            raise Unreachable(f"{address}:{port}: nothing in {self.vnet_name} answers at this address")
        raise Unreachable(f"{address}:{port}: outside {self.vnet_name} ({', '.join(map(str, prefixes))}) and not an address "
                          f"anything serves: no route from the gateway's subnet")
