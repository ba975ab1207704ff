"""ARM for the lab's AKS: `Microsoft.ContainerService/managedClusters` and the caller's permissions.

What the drill needs from ARM about the failover stack's cluster, shaped as ARM sends it so that
`azure-mgmt-containerservice` reads it unchanged:

  GET  .../resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters[/{name}]
  POST .../managedClusters/{name}/listClusterUserCredential   -> {"kubeconfigs": [{"name": "clusterUser",
                                                                  "value": <base64 kubeconfig>}]}
  GET  .../resourceGroups/{rg}/providers/Microsoft.Authorization/permissions  (what the caller may do there)

A cluster exists here only while the lab's failover stack has it (`register` / `unregister`, from
lab.topologies.cloudfront): before the apply, and after the destroy, it is 404 ResourceNotFound, and each creation
brings a new API server with a new CA and token, so credentials of an earlier cluster do not work.
Calling listClusterUserCredential needs the action
`Microsoft.ContainerService/managedClusters/listClusterUserCredential/action` (the "Azure Kubernetes
Service Cluster User Role" has it; Contributor has `*`): without it ARM answers 403
AuthorizationFailed (REST API: Managed Clusters - List Cluster User Credentials; Permissions - List
For Resource Group).
"""
from __future__ import annotations

import base64
import copy
import fnmatch
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.azure.arm_state import NOT_FOUND_HINT, ArmError

CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
LIST_USER_CREDENTIAL = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
# What the lab's service principal may do in a resource group unless a test says otherwise:
# the built-in Contributor role's permissions.
CONTRIBUTOR = {
    "actions": ["*"],
    "notActions": [
        "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
        "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
    ],
    "dataActions": [], "notDataActions": [],
}


def permitted(permissions: list[dict[str, Any]], action: str) -> bool:
    """Whether `action` is allowed by these permission entries (ARM's rule: some entry's actions
    match it and none of that entry's notActions do; `*` matches anything, case-insensitively)."""
    def match(patterns: list[str] | None) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns or [])

    return any(match(p.get("actions")) and not match(p.get("notActions")) for p in permissions)


@dataclass
class _Cluster:
    resource: dict[str, Any]
    kubeconfig: Callable[[], str]  # the cluster user's kubeconfig, as the API server has it now


class ManagedClusters:
    """The managed clusters of one subscription, and what its one caller may do per resource group."""

    def __init__(self, subscription_id: str, location: str, client_id: str) -> None:
        self.subscription_id, self.location, self.client_id = subscription_id, location, client_id
        self._lock = threading.Lock()
        self._clusters: dict[tuple[str, str], _Cluster] = {}
        self._permissions: dict[str, list[dict[str, Any]]] = {}  # rg (lower) -> entries; default CONTRIBUTOR

    # -- the lab's side --------------------------------------------------------------------------
    def register(self, rg: str, name: str, kubeconfig: Callable[[], str], *, subnet_id: str | None = None,
                 kubernetes_version: str = "1.32.6", node_count: int = 2, aad: bool = False) -> dict[str, Any]:
        """A cluster the failover stack has just created (provisioningState Succeeded)."""
        rid = f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}/providers/{CLUSTER_TYPE}/{name}"
        # AKS gives every cluster it creates a new API server FQDN (dnsPrefix-<random>.hcp.<region>.azmk8s.io).
        fqdn = f"{name}-{secrets.token_hex(4)}.hcp.{self.location}.azmk8s.io"
        pool: dict[str, Any] = {"name": "default", "count": node_count, "vmSize": "Standard_D2s_v3", "osType": "Linux",
                                "mode": "System", "type": "VirtualMachineScaleSets", "provisioningState": "Succeeded",
                                "powerState": {"code": "Running"}, "orchestratorVersion": kubernetes_version}
        if subnet_id:
            pool["vnetSubnetID"] = subnet_id
        props: dict[str, Any] = {
            "provisioningState": "Succeeded", "powerState": {"code": "Running"},
            "kubernetesVersion": kubernetes_version, "currentKubernetesVersion": kubernetes_version,
            "dnsPrefix": name, "fqdn": fqdn, "azurePortalFQDN": fqdn.replace(".hcp.", ".portal.hcp."),
            "agentPoolProfiles": [pool], "nodeResourceGroup": f"MC_{rg}_{name}_{self.location}",
            "enableRBAC": True, "disableLocalAccounts": False,
            "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay", "podCidr": "10.244.0.0/16",
                               "serviceCidr": "10.0.0.0/16", "dnsServiceIP": "10.0.0.10", "loadBalancerSku": "standard",
                               "outboundType": "loadBalancer"},
        }
        if aad:
            props["aadProfile"] = {"managed": True, "enableAzureRBAC": True}
        resource = {"id": rid, "name": name, "type": CLUSTER_TYPE, "location": self.location, "tags": {"stack": "2-failover"},
                    "sku": {"name": "Base", "tier": "Free"}, "identity": {"type": "SystemAssigned"}, "properties": props}
        with self._lock:
            self._clusters[(rg.lower(), name.lower())] = _Cluster(resource, kubeconfig)
        return copy.deepcopy(resource)

    def unregister(self, rg: str, name: str) -> None:
        with self._lock:
            self._clusters.pop((rg.lower(), name.lower()), None)

    def set_permissions(self, rg: str, entries: list[dict[str, Any]] | None) -> None:
        """What the caller may do in `rg` (None: back to Contributor)."""
        with self._lock:
            if entries is None:
                self._permissions.pop(rg.lower(), None)
            else:
                self._permissions[rg.lower()] = copy.deepcopy(entries)

    def permissions(self, rg: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._permissions.get(rg.lower(), [CONTRIBUTOR]))

    # -- ARM routes ------------------------------------------------------------------------------
    def handle(self, method: str, rg: str, provider: str, names: list[str]) -> tuple[int, Any]:
        """One request under `.../resourceGroups/{rg}/providers/{provider}/…` (`names`: the path after
        the provider); (HTTP status, JSON body). ArmError for ARM's errors."""
        lnames = [n.lower() for n in names]
        if provider == "microsoft.authorization":
            if lnames != ["permissions"]:
                raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(names)}' could not be found "
                                                           f"in the namespace 'Microsoft.Authorization'.")
            if method != "GET":
                raise _method(method)
            return 200, {"value": self.permissions(rg)}
        if not lnames or lnames[0] != "managedclusters" or len(names) > 3:
            raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(names[:1])}' could not be found "
                                                       f"in the namespace 'Microsoft.ContainerService'.")
        if len(names) == 1:
            if method != "GET":
                raise _method(method)
            with self._lock:
                found = [copy.deepcopy(c.resource) for (r, _), c in self._clusters.items() if r == rg.lower()]
            return 200, {"value": found}
        name = names[1]
        with self._lock:
            cluster = self._clusters.get((rg.lower(), name.lower()))
        if cluster is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource '{CLUSTER_TYPE}/{name}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}")
        if len(names) == 2:
            if method != "GET":
                raise _method(method)
            return 200, copy.deepcopy(cluster.resource)
        if lnames[2] != "listclusterusercredential":
            raise ArmError(404, "InvalidResourceType", f"The resource type '{CLUSTER_TYPE}/{names[2]}' could not be found.")
        if method != "POST":
            raise _method(method)
        if not permitted(self.permissions(rg), LIST_USER_CREDENTIAL):
            scope = cluster.resource["id"]
            raise ArmError(403, "AuthorizationFailed",
                           f"The client '{self.client_id}' with object id '{self.client_id}' does not have authorization "
                           f"to perform action '{LIST_USER_CREDENTIAL}' over scope '{scope}' or the scope is invalid. "
                           f"If access was recently granted, please refresh your credentials.")
        value = base64.b64encode(cluster.kubeconfig().encode()).decode()
        return 200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]}


def _method(m: str) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{m}'.")
