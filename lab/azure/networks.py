"""Virtual networks and their subnets, and public IP addresses (Microsoft.Network) in the lab's ARM model.

A public IP may carry a DNS name label (`dnsSettings.domainNameLabel`): Azure then publishes
`<label>.<region>.cloudapp.azure.com` for it (`dnsSettings.fqdn`) for as long as the address exists,
which is the name a CloudFront origin can use (an origin domain must be a DNS name, not an IP).
"""
from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from lab.azure.arm_base import ArmBase, ArmError, _etag, _key

VNET_TYPE = "Microsoft.Network/virtualNetworks"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
# Azure: 3-63 characters, lowercase letters, digits and hyphens, starting with a letter, ending
# with a letter or a digit (Public IP addresses, "DNS name label").
DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


class VirtualNetworks(ArmBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._vnets: dict[tuple[str, str], dict[str, Any]] = {}
        self._public_ips: dict[tuple[str, str], dict[str, Any]] = {}

    def vnet_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{VNET_TYPE}/{name}"

    def subnet_id(self, rg: str, vnet: str, subnet: str) -> str:
        return f"{self.vnet_id(rg, vnet)}/subnets/{subnet}"

    def create_virtual_network(
        self, rg: str, name: str, address_space: list[str], subnets: dict[str, str], location: str | None = None
    ) -> dict[str, Any]:
        """A vnet with `subnets` (name -> address prefix), provisioned at once."""
        with self._lock:
            rg = self._require_rg(rg)
            etag = _etag()
            vid = self.vnet_id(rg, name)
            vnet = {
                "name": name, "id": vid, "etag": etag, "type": VNET_TYPE,
                "location": location or self.location, "tags": {},
                "properties": {
                    "provisioningState": "Succeeded", "resourceGuid": str(uuid.uuid4()),
                    "addressSpace": {"addressPrefixes": list(address_space)},
                    "subnets": [
                        {
                            "name": s, "id": f"{vid}/subnets/{s}", "etag": etag,
                            "type": f"{VNET_TYPE}/subnets",
                            "properties": {
                                "provisioningState": "Succeeded", "addressPrefix": prefix, "delegations": [],
                                "privateEndpointNetworkPolicies": "Disabled",
                                "privateLinkServiceNetworkPolicies": "Enabled",
                            },
                        }
                        for s, prefix in subnets.items()
                    ],
                    "virtualNetworkPeerings": [], "enableDdosProtection": False,
                },
            }
            self._vnets[_key(rg, name)] = vnet
            return copy.deepcopy(vnet)

    def get_virtual_network(self, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            rg = self._require_rg(rg)
            vnet = self._vnets.get(_key(rg, name))
            if vnet is None:
                raise self._not_found(VNET_TYPE, name, rg)
            return copy.deepcopy(vnet)

    def list_virtual_networks(self, rg: str) -> list[dict[str, Any]]:
        with self._lock:
            rg = self._require_rg(rg)
            return [copy.deepcopy(v) for k, v in self._vnets.items() if k[0] == rg.lower()]

    def get_subnet(self, rg: str, vnet: str, subnet: str) -> dict[str, Any]:
        for s in self.get_virtual_network(rg, vnet)["properties"]["subnets"]:
            if s["name"].lower() == subnet.lower():
                return s
        raise self._not_found(f"{VNET_TYPE}/{vnet}/subnets", subnet, rg)

    def put_subnet(self, rg: str, vnet: str, subnet: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace one subnet of a vnet (provisioned at once); returns (subnet, created)."""
        with self._lock:
            rg = self._require_rg(rg)
            v = self._vnets.get(_key(rg, vnet))
            if v is None:
                raise self._not_found(VNET_TYPE, vnet, rg)
            props = dict((body or {}).get("properties") or {})
            if not props.get("addressPrefix") and not props.get("addressPrefixes"):
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: the subnet has no addressPrefix.")
            etag = _etag()
            new = {
                "name": subnet, "id": f"{v['id']}/subnets/{subnet}", "etag": etag, "type": f"{VNET_TYPE}/subnets",
                "properties": {"delegations": [], "privateEndpointNetworkPolicies": "Disabled",
                               "privateLinkServiceNetworkPolicies": "Enabled", **props, "provisioningState": "Succeeded"},
            }
            subnets = v["properties"]["subnets"]
            created = not any(x["name"].lower() == subnet.lower() for x in subnets)
            v["properties"]["subnets"] = [x for x in subnets if x["name"].lower() != subnet.lower()] + [new]
            v["etag"] = etag
            self._record("subnet put", vnet=vnet, subnet=subnet, created=created)
            return copy.deepcopy(new), created

    def delete_subnet(self, rg: str, vnet: str, subnet: str) -> bool:
        """Delete one subnet; False if it was not there (ARM answers 204)."""
        with self._lock:
            rg = self._require_rg(rg)
            v = self._vnets.get(_key(rg, vnet))
            if v is None:
                raise self._not_found(VNET_TYPE, vnet, rg)
            subnets = v["properties"]["subnets"]
            kept = [x for x in subnets if x["name"].lower() != subnet.lower()]
            if len(kept) == len(subnets):
                return False
            v["properties"]["subnets"] = kept
            v["etag"] = _etag()
            self._record("subnet deleted", vnet=vnet, subnet=subnet)
            return True


    def _subnet_exists(self, subnet_id: str) -> bool | None:
        """True/False for a subnet id in this subscription, None if it is not one we model."""
        m = re.match(
            r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Network/virtualNetworks/([^/]+)/subnets/([^/]+)$",
            subnet_id, re.I,
        )
        if m is None or m.group(1).lower() != self.subscription_id.lower():
            return None
        vnet = self._vnets.get(_key(m.group(2), m.group(3)))
        return vnet is not None and any(s["name"].lower() == m.group(4).lower() for s in vnet["properties"]["subnets"])


    # -- public IP addresses -------------------------------------------------------------------------
    def public_ip_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{PIP_TYPE}/{name}"

    def create_public_ip(self, rg: str, name: str, ip_address: str, domain_name_label: str | None = None,
                         location: str | None = None) -> dict[str, Any]:
        """A Standard, static IPv4 public IP as ARM's GET shows it, with its DNS name if it has a label."""
        with self._lock:
            rg = self._require_rg(rg)
            location = location or self.location
            props: dict[str, Any] = {
                "provisioningState": "Succeeded", "resourceGuid": str(uuid.uuid4()), "ipAddress": ip_address,
                "publicIPAddressVersion": "IPv4", "publicIPAllocationMethod": "Static", "idleTimeoutInMinutes": 4,
                "ipTags": [],
            }
            if domain_name_label is not None:
                if not DNS_LABEL.match(domain_name_label):
                    raise ArmError(400, "InvalidDomainNameLabel",
                                   f"The domain name label {domain_name_label} is invalid. It must conform to the following "
                                   f"regular expression: ^[a-z][a-z0-9-]{{1,61}}[a-z0-9]$.")
                props["dnsSettings"] = {"domainNameLabel": domain_name_label,
                                        "fqdn": f"{domain_name_label}.{location}.cloudapp.azure.com"}
            pip = {"name": name, "id": self.public_ip_id(rg, name), "etag": _etag(), "type": PIP_TYPE,
                   "location": location, "tags": {}, "sku": {"name": "Standard", "tier": "Regional"}, "properties": props}
            self._public_ips[_key(rg, name)] = pip
            self._record("public ip created", name=name, fqdn=props.get("dnsSettings", {}).get("fqdn"))
            return copy.deepcopy(pip)

    def get_public_ip(self, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            rg = self._require_rg(rg)
            pip = self._public_ips.get(_key(rg, name))
            if pip is None:
                raise self._not_found(PIP_TYPE, name, rg)
            return copy.deepcopy(pip)

    def list_public_ips(self, rg: str) -> list[dict[str, Any]]:
        with self._lock:
            rg = self._require_rg(rg)
            return [copy.deepcopy(p) for k, p in self._public_ips.items() if k[0] == rg.lower()]

    def delete_public_ip(self, rg: str, name: str) -> bool:
        """Delete a public IP (its DNS name goes with it); False if it was not there."""
        with self._lock:
            gone = self._public_ips.pop(_key(rg, name), None) is not None
            if gone:
                self._record("public ip deleted", name=name)
            return gone

    def public_ip_by_fqdn(self, fqdn: str) -> dict[str, Any] | None:
        """The public IP whose DNS name is `fqdn` (what Azure DNS answers for it), or None."""
        with self._lock:
            for pip in self._public_ips.values():
                if (pip["properties"].get("dnsSettings") or {}).get("fqdn", "").lower() == fqdn.lower().rstrip("."):
                    return copy.deepcopy(pip)
            return None

# -- seeds ------------------------------------------------------------------------------------------
def seed_virtual_network(state: VirtualNetworks, rg: str = "rg-blue", name: str = "vnet-blue") -> dict[str, Any]:
    """vnet-blue as the seeds' 1-always stack has it (design: 172.16.0.0/16; snet-aks per the runbook)."""
    if state.get_resource_group(rg) is None:
        state.create_resource_group(rg)
    return state.create_virtual_network(
        rg, name, ["172.16.0.0/16"],
        {"snet-appgw": "172.16.1.0/24", "snet-aks": "172.16.11.0/24", "snet-db": "172.16.31.0/24"},
    )
