"""The lab AKS's place in the network: which addresses are real in the VNet and which are not.

An AKS cluster deployed into a VNet subnet (the failover stack's `snet-aks`) has three kinds of
address, and only some of them exist outside the cluster:

- node IPs and internal load balancer frontends come from the subnet: a client elsewhere in the
  VNet (the App Gateway in `snet-appgw`) reaches them;
- Service ClusterIPs (the service CIDR, 10.0.0.0/16 by default) are virtual: kube-proxy's rules on
  the cluster's own nodes translate them, nothing in the VNet answers them;
- pod IPs come from the overlay pod CIDR (10.244.0.0/16, Azure CNI Overlay / kubenet): they are
  not routable from the VNet either.

Sources: "Use an internal load balancer with AKS" (the private IP "is dynamically assigned from the
same subnet as the AKS cluster"; "It may take a minute or two for the IP address to change from
<pending> to an actual internal IP address"), "Kubernetes Services: virtual IPs and service proxies",
"Overview of Azure CNI networking" (with Overlay, pods get IPs "from a private CIDR logically
different from the virtual network hosting the nodes"; AKS refuses the App Gateway Ingress
Controller add-on, which routes to pod IPs, on Overlay clusters).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.kube.resources import SERVICE_CIDR

Network = ipaddress.IPv4Network
# Azure reserves the first four addresses of every subnet (network, gateway, 2 x DNS) and the last.
AZURE_RESERVED_LOW = 4
# Real-world seconds from a LoadBalancer Service's creation to its IP in status (AKS docs: "a minute
# or two"; the lab plays the slower end, divided by the time scale).
LOAD_BALANCER_ASSIGN_SECONDS = 120.0


class Unreachable(LookupError):
    """Nothing a client in the VNet can reach answers at this address and port; the message says why."""

    def __repr__(self) -> str:  # shown in App Gateway's backend health log: the reason, not the class
        return str(self)


@dataclass(frozen=True)
class ClusterNetwork:
    """The cluster's address ranges. The defaults are those of an AKS cluster in its own VNet."""

    node_subnet: Network = field(default_factory=lambda: ipaddress.IPv4Network("10.224.0.0/16"))
    subnet_name: str = "aks-subnet"
    pod_cidr: Network = field(default_factory=lambda: ipaddress.IPv4Network("10.244.0.0/16"))
    service_cidr: Network = SERVICE_CIDR
    # Other subnets of the VNet by name, for the `azure-load-balancer-internal-subnet` annotation.
    subnets: Callable[[str], Network | None] | None = None
    load_balancer_assign_seconds: float = LOAD_BALANCER_ASSIGN_SECONDS

    def node_ip(self, i: int) -> str:
        return str(self.node_subnet[AZURE_RESERVED_LOW + i])

    def subnet(self, name: str | None) -> Network | None:
        """The subnet called `name` (None: the cluster's own), or None if the VNet has none of that name."""
        if name is None or name.lower() == self.subnet_name.lower():
            return self.node_subnet
        return self.subnets(name) if self.subnets is not None else None
