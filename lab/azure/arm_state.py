"""Azure Resource Manager state for the lab: resource groups, virtual networks, application gateways
and their long-running operations, storage accounts and their lifecycle management policy. No HTTP here (arm_server.py is the surface), so the lab can also
seed and inspect resources in-process.

What the model keeps from real ARM (Microsoft.Network):
- names are case-insensitive; ids are built as ARM builds them, child ids included
  (`.../applicationGateways/{gw}/backendAddressPools/{pool}`), every child carries the gateway's etag;
- a PUT is validated as a whole (references between sub-resources must resolve, else 400
  InvalidResourceReference with ARM's message), then the gateway is `Updating` until the modeled
  provisioning delay has passed; only then does the data plane see the new configuration (`active`);
- a second change while one is in flight is refused (409 AnotherOperationInProgress);
- a delete is a long-running operation too; backend health is an operation whose result is read
  from the data plane when it completes.
"""
from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from lab.events import EventLog

NETWORK = "Microsoft.Network"
GW_TYPE = "Microsoft.Network/applicationGateways"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
POLICY_TYPE = "Microsoft.Storage/storageAccounts/managementPolicies"
DEFAULT_LOCATION = "koreacentral"  # seeds: Azure Korea Central
DEFAULT_SUBSCRIPTION_ID = "5f1c8a7e-2d3b-4c6a-9e8f-0a1b2c3d4e5f"  # the lab's; fixed so ids in logs are stable

# Top-level collections of an application gateway (ARM property name == child type segment).
GW_COLLECTIONS = (
    "gatewayIPConfigurations", "authenticationCertificates", "trustedRootCertificates",
    "trustedClientCertificates", "sslCertificates", "frontendIPConfigurations", "frontendPorts",
    "probes", "backendAddressPools", "backendHttpSettingsCollection", "backendSettingsCollection",
    "httpListeners", "listeners", "sslProfiles", "urlPathMaps", "requestRoutingRules", "routingRules",
    "rewriteRuleSets", "redirectConfigurations", "privateLinkConfigurations", "loadDistributionPolicies",
)
# A gateway without one of each of these is rejected (ApplicationGatewayMustHaveAtleastOneResourceOfType).
GW_REQUIRED = (
    ("gatewayIPConfigurations", "GatewayIPConfiguration"),
    ("frontendIPConfigurations", "FrontendIPConfiguration"),
    ("frontendPorts", "FrontendPort"),
    ("backendAddressPools", "BackendAddressPool"),
    ("backendHttpSettingsCollection", "BackendHttpSettings"),
    ("httpListeners", "HttpListener"),
    ("requestRoutingRules", "RequestRoutingRule"),
)
V2_TIERS = {"standard_v2", "waf_v2"}
NOT_FOUND_HINT = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


class ArmError(Exception):
    """An ARM error response: HTTP status and `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": []}}


@dataclass(frozen=True)
class ArmTimings:
    """Real-world seconds of ARM operations, divided by the lab's time scale when played.

    Application Gateway v2 configuration updates take about a minute, creation several minutes
    (runbook: the whole 2-failover stack 15-20 min); show-backend-health takes a few seconds.
    """

    gateway_create_seconds: float = 300.0
    gateway_update_seconds: float = 60.0
    gateway_delete_seconds: float = 120.0
    backend_health_seconds: float = 5.0

    def scaled(self, time_scale: float) -> "ArmTimings":
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        return replace(self, **{f.name: getattr(self, f.name) / time_scale for f in fields(self)})


@dataclass
class Operation:
    id: str
    kind: str  # "put" | "delete" | "backendhealth"
    rg: str
    name: str
    started: float
    due: float
    status: str = "InProgress"  # -> (Collecting ->) Succeeded | Failed

    @property
    def done(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Canceled")
    result: Any = None
    error: ArmError | None = None
    fail_with: ArmError | None = None


@dataclass
class _Gateway:
    resource: dict[str, Any]  # what GET returns (the requested configuration)
    active: dict[str, Any] | None  # what the data plane serves; replaced, never mutated
    op: Operation | None = None


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _key(rg: str, name: str) -> tuple[str, str]:
    return rg.lower(), name.lower()


HealthFn = Callable[[], list[dict[str, Any]]]


class ArmState:
    """All ARM resources of one subscription. Thread-safe; timings are real-world seconds / time_scale."""

    def __init__(
        self,
        subscription_id: str,
        location: str = DEFAULT_LOCATION,
        time_scale: float = 1.0,
        events: EventLog | None = None,
        timings: ArmTimings | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self.location = location
        self.time_scale = time_scale
        self.timings = (timings or ArmTimings()).scaled(time_scale)
        self.events = events
        self._lock = threading.RLock()
        self._rgs: dict[str, dict[str, Any]] = {}
        self._vnets: dict[tuple[str, str], dict[str, Any]] = {}
        self._gateways: dict[tuple[str, str], _Gateway] = {}
        self._storage: dict[tuple[str, str], dict[str, Any]] = {}  # storage accounts
        self._policies: dict[tuple[str, str], dict[str, Any]] = {}  # account -> managementPolicies/default
        self._ops: dict[str, Operation] = {}  # recent operations, for their status URLs
        self._pending: dict[str, Operation] = {}  # InProgress only: settled on every access, so kept small
        self._health: dict[tuple[str, str], HealthFn] = {}
        self._fail_next: dict[tuple[str, str], ArmError] = {}
        self._timers: list[threading.Timer] = []
        self._closed = False

    # -- ids -------------------------------------------------------------------------------------
    def rg_id(self, rg: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}"

    def gateway_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{GW_TYPE}/{name}"

    def vnet_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{VNET_TYPE}/{name}"

    def subnet_id(self, rg: str, vnet: str, subnet: str) -> str:
        return f"{self.vnet_id(rg, vnet)}/subnets/{subnet}"

    def _record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("azure-arm", event, **detail)

    # -- resource groups -------------------------------------------------------------------------
    def create_resource_group(self, name: str, location: str | None = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            existing = self._rgs.get(name.lower())
            rg = {
                "id": self.rg_id(existing["name"] if existing else name),
                "name": existing["name"] if existing else name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location or self.location,
                "tags": dict(tags or {}),
                "properties": {"provisioningState": "Succeeded"},
            }
            self._rgs[name.lower()] = rg
            return copy.deepcopy(rg)

    def get_resource_group(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            rg = self._rgs.get(name.lower())
            return copy.deepcopy(rg) if rg else None

    def list_resource_groups(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._rgs.values()]

    def _require_rg(self, rg: str) -> str:
        """The resource group's stored name, or 404 ResourceGroupNotFound."""
        found = self._rgs.get(rg.lower())
        if found is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return str(found["name"])

    def _not_found(self, rtype: str, name: str, rg: str) -> ArmError:
        return ArmError(
            404, "ResourceNotFound",
            f"The Resource '{rtype}/{name}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}",
        )

    # -- virtual networks --------------------------------------------------------------------------
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

    # -- storage accounts and their lifecycle management policy -------------------------------------
    def storage_account_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{STORAGE_TYPE}/{name}"

    def create_storage_account(
        self, rg: str, name: str, location: str | None = None, kind: str = "StorageV2", sku: str = "Standard_LRS",
    ) -> dict[str, Any]:
        """A storage account as ARM's GET shows it (provisioned at once; endpoints as Azure names them)."""
        with self._lock:
            rg = self._require_rg(rg)
            acct = {
                "id": self.storage_account_id(rg, name), "name": name, "type": STORAGE_TYPE,
                "location": location or self.location, "kind": kind, "tags": {},
                "sku": {"name": sku, "tier": sku.split("_", 1)[0]},
                "properties": {
                    "provisioningState": "Succeeded", "statusOfPrimary": "available", "accessTier": "Hot",
                    "creationTime": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
                    "primaryEndpoints": {
                        "blob": f"https://{name}.blob.core.windows.net/", "web": f"https://{name}.z12.web.core.windows.net/",
                    },
                    "supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                },
            }
            self._storage[_key(rg, name)] = acct
            return copy.deepcopy(acct)

    def get_storage_account(self, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            rg = self._require_rg(rg)
            acct = self._storage.get(_key(rg, name))
            if acct is None:
                raise self._not_found(STORAGE_TYPE, name, rg)
            return copy.deepcopy(acct)

    def put_management_policy(self, rg: str, account: str, body: dict[str, Any]) -> dict[str, Any]:
        """managementPolicies/default: the account's lifecycle rules (`properties.policy.rules`)."""
        with self._lock:
            acct = self.get_storage_account(rg, account)
            policy = ((body or {}).get("properties") or {}).get("policy")
            if not isinstance(policy, dict) or not isinstance(policy.get("rules"), list) or not policy["rules"]:
                raise ArmError(400, "InvalidManagementPolicyRules", "ManagementPolicy rules must be a non-empty array.")
            res = {
                "id": f"{acct['id']}/managementPolicies/default", "name": "DefaultManagementPolicy", "type": POLICY_TYPE,
                "properties": {
                    "lastModifiedTime": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
                    "policy": copy.deepcopy(policy),
                },
            }
            self._policies[_key(rg, account)] = res
            self._record("management policy put", account=account, rules=len(policy["rules"]))
            return copy.deepcopy(res)

    def get_management_policy(self, rg: str, account: str) -> dict[str, Any]:
        with self._lock:
            self.get_storage_account(rg, account)
            res = self._policies.get(_key(rg, account))
            if res is None:  # what Azure answers for an account without lifecycle rules
                raise ArmError(404, "ManagementPolicyNotFound", f"No ManagementPolicy found for account {account}")
            return copy.deepcopy(res)

    def delete_management_policy(self, rg: str, account: str) -> bool:
        with self._lock:
            self.get_storage_account(rg, account)
            gone = self._policies.pop(_key(rg, account), None) is not None
            if gone:
                self._record("management policy deleted", account=account)
            return gone

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

    # -- application gateways ------------------------------------------------------------------------
    def _settle(self) -> None:
        """Complete every operation whose modeled delay has passed (called on each access and by timers)."""
        now = time.monotonic()
        collect: list[Operation] = []
        with self._lock:
            for op in list(self._pending.values()):
                if op.status != "InProgress":
                    del self._pending[op.id]
                elif op.due <= now:
                    del self._pending[op.id]
                    if op.kind == "backendhealth" and op.fail_with is None:
                        op.status = "Collecting"  # claimed: read the data plane below, outside our lock
                        collect.append(op)
                    else:
                        self._complete(op)
        for op in collect:
            # The data plane reads the state back (active_app_gateway), so never call it under the lock.
            with self._lock:
                fn = self._health.get(_key(op.rg, op.name))
                gw = self._gateways.get(_key(op.rg, op.name))
                active = gw.active if gw is not None else None
            try:
                pools = fn() if fn is not None else _unknown_health(active)
            except Exception as e:  # a failing data plane shows as a failed operation, as ARM would
                with self._lock:
                    op.status, op.error = "Failed", ArmError(500, "InternalServerError", f"backend health: {e!r}")
                continue
            with self._lock:
                op.result, op.status = {"backendAddressPools": pools}, "Succeeded"

    def _complete(self, op: Operation) -> None:
        key = _key(op.rg, op.name)
        gw = self._gateways.get(key)
        if op.fail_with is not None:
            op.status, op.error = "Failed", op.fail_with
            if gw is not None and gw.op is op:
                gw.resource = self._with_state(gw.resource, "Failed")
                gw.op = None
            self._record("operation failed", kind=op.kind, gateway=op.name, code=op.fail_with.code)
            return
        if op.kind == "put" and gw is not None and gw.op is op:
            gw.resource = self._with_state(gw.resource, "Succeeded", operational="Running")
            gw.active = gw.resource
            gw.op = None
            self._record("gateway provisioned", gateway=op.name, etag=gw.resource["etag"])
        elif op.kind == "delete" and gw is not None and gw.op is op:
            del self._gateways[key]
            self._record("gateway deleted", gateway=op.name)
        op.status = "Succeeded"

    def _schedule(self, op: Operation) -> None:
        now = time.monotonic()
        # Finished operations stay readable for 10 minutes (clients poll them right away), then go.
        self._ops = {k: o for k, o in self._ops.items() if not (o.done and o.due < now - 600)}
        self._ops[op.id] = op
        self._pending[op.id] = op
        if self._closed:
            return
        # A timer settles the operation at its due time so the event log and the data plane switch
        # when Azure would, even if nobody polls.
        t = threading.Timer(max(0.0, op.due - time.monotonic()) + 0.001, self._settle)
        t.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()] + [t]
        t.start()

    def _new_op(self, kind: str, rg: str, name: str, seconds: float) -> Operation:
        now = time.monotonic()
        return Operation(str(uuid.uuid4()), kind, rg, name, now, now + seconds)

    def get_operation(self, op_id: str) -> Operation | None:
        self._settle()
        with self._lock:
            return self._ops.get(op_id.lower()) or self._ops.get(op_id)

    def _with_state(self, res: dict[str, Any], state: str, operational: str | None = None) -> dict[str, Any]:
        out = copy.deepcopy(res)
        out["properties"]["provisioningState"] = state
        if operational is not None:
            out["properties"]["operationalState"] = operational
        for coll in GW_COLLECTIONS:
            for child in out["properties"].get(coll) or []:
                child.setdefault("properties", {})["provisioningState"] = state
        return out

    def put_app_gateway(self, rg: str, name: str, body: dict[str, Any], if_match: str | None = None,
                        immediate: bool = False) -> tuple[dict[str, Any], Operation | None, bool]:
        """Create or update from a PUT body; returns (resource as answered, operation, created).

        `immediate` provisions at once (in-process seeding); otherwise the new configuration is
        `Updating` until the modeled delay has passed.
        """
        self._settle()
        with self._lock:
            rg = self._require_rg(rg)
            key = _key(rg, name)
            gw = self._gateways.get(key)
            if gw is not None:
                name = gw.resource["name"]
            if gw is not None and gw.op is not None:
                raise ArmError(
                    409, "AnotherOperationInProgress",
                    f"Another operation on this or dependent resource is in progress. To retrieve status of "
                    f"the operation use uri: {self.async_operation_path(gw.op)}.",
                )
            if if_match not in (None, "*") and (gw is None or if_match != gw.resource["etag"]):
                raise ArmError(412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met.")
            resource = self._normalize(rg, name, body, gw)
            created = gw is None
            if immediate:
                resource = self._with_state(resource, "Succeeded", operational="Running")
                self._gateways[key] = _Gateway(resource, resource)
                self._record("gateway provisioned", gateway=name, etag=resource["etag"], immediate=True)
                return copy.deepcopy(resource), None, created
            seconds = self.timings.gateway_create_seconds if created else self.timings.gateway_update_seconds
            op = self._new_op("put", rg, name, seconds)
            op.fail_with = self._fail_next.pop(key, None)
            resource = self._with_state(resource, "Updating", operational=None if not created else "Stopped")
            if created:
                self._gateways[key] = _Gateway(resource, None, op)
            else:
                gw.resource, gw.op = resource, op  # type: ignore[union-attr]
            self._schedule(op)
            self._record("gateway update started", gateway=name, created=created, seconds=round(seconds, 3))
            return copy.deepcopy(resource), op, created

    def create_app_gateway(self, rg: str, name: str, body: dict[str, Any], immediate: bool = True) -> dict[str, Any]:
        """In-process create/update (validated like a PUT); provisioned at once unless immediate=False."""
        return self.put_app_gateway(rg, name, body, immediate=immediate)[0]

    def delete_app_gateway(self, rg: str, name: str, immediate: bool = True) -> Operation | None:
        """Delete; None if there was nothing to delete (ARM answers 204), else the operation."""
        self._settle()
        with self._lock:
            rg = self._require_rg(rg)
            key = _key(rg, name)
            gw = self._gateways.get(key)
            if gw is None:
                return None
            if gw.op is not None and gw.op.kind == "delete" and not immediate:
                return gw.op
            if gw.op is not None and not immediate:
                raise ArmError(409, "AnotherOperationInProgress",
                               "Another operation on this or dependent resource is in progress.")
            if immediate:  # in-process teardown wins over anything in flight
                if gw.op is not None:
                    gw.op.status, gw.op.error = "Canceled", ArmError(409, "Canceled", "The gateway was deleted.")
                del self._gateways[key]
                self._record("gateway deleted", gateway=name, immediate=True)
                return None
            op = self._new_op("delete", rg, gw.resource["name"], self.timings.gateway_delete_seconds)
            gw.resource, gw.op = self._with_state(gw.resource, "Deleting"), op
            self._schedule(op)
            self._record("gateway delete started", gateway=name)
            return op

    def get_app_gateway(self, rg: str, name: str) -> dict[str, Any] | None:
        """The gateway as ARM's GET shows it (the requested configuration), or None."""
        self._settle()
        with self._lock:
            gw = self._gateways.get(_key(rg, name))
            return copy.deepcopy(gw.resource) if gw is not None else None

    def active_app_gateway(self, rg: str, name: str) -> dict[str, Any] | None:
        """The configuration the data plane serves: the last one that finished provisioning.

        Returned without copying for the data plane's per-request reads: never mutate it."""
        self._settle()
        with self._lock:
            gw = self._gateways.get(_key(rg, name))
            return gw.active if gw is not None else None

    def read_app_gateway(self, rg: str, name: str) -> dict[str, Any]:
        """GET semantics: the gateway, or 404 ResourceGroupNotFound / ResourceNotFound."""
        self._settle()
        with self._lock:
            rg = self._require_rg(rg)
            gw = self._gateways.get(_key(rg, name))
            if gw is None:
                raise self._not_found(GW_TYPE, name, rg)
            return copy.deepcopy(gw.resource)

    def list_app_gateways(self, rg: str | None = None) -> list[dict[str, Any]]:
        self._settle()
        with self._lock:
            if rg is not None:
                rg = self._require_rg(rg)
            return [copy.deepcopy(g.resource) for k, g in self._gateways.items() if rg is None or k[0] == rg.lower()]

    def fail_next_update(self, rg: str, name: str, code: str = "InternalServerError",
                         message: str = "An error occurred.") -> None:
        """Fault injection: the next PUT of this gateway ends `Failed` and the data plane keeps the old config."""
        with self._lock:
            self._fail_next[_key(rg, name)] = ArmError(500, code, message)

    # -- backend health --------------------------------------------------------------------------------
    def register_backend_health(self, rg: str, name: str, fn: HealthFn) -> None:
        """The data plane of this gateway reports per-server health through `fn` (ARM's backendAddressPools shape)."""
        with self._lock:
            self._health[_key(rg, name)] = fn

    def unregister_backend_health(self, rg: str, name: str) -> None:
        with self._lock:
            self._health.pop(_key(rg, name), None)

    def start_backend_health(self, rg: str, name: str) -> Operation:
        self._settle()
        with self._lock:
            rg = self._require_rg(rg)
            gw = self._gateways.get(_key(rg, name))
            if gw is None:
                raise self._not_found(GW_TYPE, name, rg)
            op = self._new_op("backendhealth", rg, gw.resource["name"], self.timings.backend_health_seconds)
            self._schedule(op)
            return op

    # -- operation URLs (paths; the server prefixes its base URL) ------------------------------------
    def async_operation_path(self, op: Operation) -> str:
        return f"/subscriptions/{self.subscription_id}/providers/{NETWORK}/locations/{self.location}/operations/{op.id}"

    def operation_result_path(self, op: Operation) -> str:
        return f"/subscriptions/{self.subscription_id}/providers/{NETWORK}/locations/{self.location}/operationResults/{op.id}"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for t in self._timers:
                t.cancel()
            self._timers = []

    # -- PUT normalisation and validation ------------------------------------------------------------
    def _normalize(self, rg: str, name: str, body: dict[str, Any], old: _Gateway | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request.")
        location = body.get("location") or (old.resource["location"] if old else None)
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        gid = self.gateway_id(rg, name)
        etag = _etag()
        props_in = copy.deepcopy(body.get("properties") or {})
        props: dict[str, Any] = {}
        index: dict[str, str] = {}  # lower id -> collection, for reference checks
        for coll in GW_COLLECTIONS:
            out = []
            for child in props_in.pop(coll, None) or []:
                cname = child.get("name") if isinstance(child, dict) else None
                if not cname:
                    raise ArmError(400, "InvalidRequestFormat", f"Cannot parse the request: a resource in {coll} has no name.")
                cid = f"{gid}/{coll}/{cname}"
                if cid.lower() in index:
                    raise ArmError(400, "InvalidRequestFormat", f"Resource name {cname} appears more than once in {coll}.")
                index[cid.lower()] = coll
                cprops = copy.deepcopy(child.get("properties") or {})
                cprops.pop("provisioningState", None)
                if coll == "urlPathMaps":
                    for pr in cprops.get("pathRules") or []:
                        prid = f"{cid}/pathRules/{pr.get('name')}"
                        index[prid.lower()] = "pathRules"
                        pr.update(id=prid, etag=etag, type=f"{GW_TYPE}/urlPathMaps/pathRules")
                out.append({"name": cname, "id": cid, "etag": etag, "type": f"{GW_TYPE}/{coll}", "properties": cprops})
            props[coll] = out
        for k in ("provisioningState", "resourceGuid", "operationalState"):
            props_in.pop(k, None)
        props.update(props_in)  # sku, sslPolicy, enableHttp2, autoscaleConfiguration, ... kept as given
        props["resourceGuid"] = old.resource["properties"]["resourceGuid"] if old else str(uuid.uuid4())
        props["operationalState"] = old.resource["properties"].get("operationalState", "Running") if old else "Stopped"
        props.setdefault("enableHttp2", False)
        self._validate(gid, props, index)
        res: dict[str, Any] = {
            "name": name, "id": gid, "etag": etag, "type": GW_TYPE, "location": location,
            "tags": dict(body.get("tags") or {}), "properties": props,
        }
        for k in ("zones", "identity"):
            if body.get(k) is not None:
                res[k] = copy.deepcopy(body[k])
        return res

    def _validate(self, gid: str, props: dict[str, Any], index: dict[str, str]) -> None:
        for coll, label in GW_REQUIRED:
            if not props.get(coll):
                raise ArmError(
                    400, "ApplicationGatewayMustHaveAtleastOneResourceOfType",
                    f"At least one {label} resource must be specified for the Application Gateway {gid}.",
                )
        tier = str((props.get("sku") or {}).get("tier") or "").lower()
        for rule in props["requestRoutingRules"]:
            if tier in V2_TIERS and rule["properties"].get("priority") is None:
                raise ArmError(
                    400, "ApplicationGatewayRequestRoutingRulePriorityCannotBeEmpty",
                    f"Priority for the request routing rule {rule['id']} cannot be empty. All request routing "
                    f"rules should have a priority defined starting from api-version 2021-08-01",
                )
        for coll in GW_COLLECTIONS:
            for child in props[coll]:
                for ref in _references(child["properties"]):
                    self._check_reference(gid, ref, child["id"], index)
                if coll == "urlPathMaps":
                    for pr in child["properties"].get("pathRules") or []:
                        for ref in _references(pr.get("properties") or {}):
                            self._check_reference(gid, ref, pr["id"], index)

    def _check_reference(self, gid: str, ref: str, referrer: str, index: dict[str, str]) -> None:
        missing = False
        if ref.lower().startswith(gid.lower() + "/"):
            missing = ref.lower() not in index
        else:
            missing = self._subnet_exists(ref) is False
        if missing:
            raise ArmError(
                400, "InvalidResourceReference",
                f"Resource {ref} referenced by resource {referrer} was not found. Please make sure that the "
                f"referenced resource exists, and that both resources are in the same region.",
            )


def _references(obj: Any) -> list[str]:
    """Every SubResource id (`{"id": ...}` with nothing else) inside a child's properties."""
    out: list[str] = []
    if isinstance(obj, dict):
        if set(obj) == {"id"} and isinstance(obj["id"], str):
            return [obj["id"]]
        for v in obj.values():
            out += _references(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _references(v)
    return out


def _unknown_health(gw: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Backend health when no data plane runs for the gateway: every server `Unknown`."""
    if gw is None:
        return []
    props = gw["properties"]
    out = []
    for pool in props.get("backendAddressPools") or []:
        settings_ids = {
            r["properties"]["backendHttpSettings"]["id"]
            for r in props.get("requestRoutingRules") or []
            if (r["properties"].get("backendAddressPool") or {}).get("id", "").lower() == pool["id"].lower()
            and r["properties"].get("backendHttpSettings")
        }
        servers = [
            {"address": a.get("ipAddress") or a.get("fqdn"), "health": "Unknown",
             "healthProbeLog": "The gateway's data plane is not running."}
            for a in pool["properties"].get("backendAddresses") or []
        ]
        out.append({
            "backendAddressPool": {"id": pool["id"]},
            "backendHttpSettingsCollection": [
                {"backendHttpSettings": {"id": sid}, "servers": servers} for sid in sorted(settings_ids)
            ],
        })
    return out


# -- seeds ------------------------------------------------------------------------------------------
def seed_virtual_network(state: ArmState, rg: str = "rg-blue", name: str = "vnet-blue") -> dict[str, Any]:
    """vnet-blue as the seeds' 1-always stack has it (design: 172.16.0.0/16; snet-aks per the runbook)."""
    if state.get_resource_group(rg) is None:
        state.create_resource_group(rg)
    return state.create_virtual_network(
        rg, name, ["172.16.0.0/16"],
        {"snet-appgw": "172.16.1.0/24", "snet-aks": "172.16.11.0/24", "snet-db": "172.16.31.0/24"},
    )


def lifecycle_rule(container: str, prefix: str = "backups/", days: int = 30, name: str = "delete-old-backups") -> dict[str, Any]:
    """A lifecycle rule deleting block blobs under container/prefix `days` after their last modification."""
    return {
        "enabled": True, "name": name, "type": "Lifecycle",
        "definition": {
            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [f"{container}/{prefix}"]},
            "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": days}}},
        },
    }


def seed_storage_account(
    state: ArmState, rg: str = "rg-blue", name: str = "bloberry01", backup_container: str = "mysql-backups",
    retention_days: int = 30,
) -> dict[str, Any]:
    """bloberry01 as the 1-always stack has it, with the design's 30-day lifecycle rule for the backups."""
    if state.get_resource_group(rg) is None:
        state.create_resource_group(rg)
    acct = state.create_storage_account(rg, name)
    state.put_management_policy(rg, name, {"properties": {"policy": {"rules": [
        lifecycle_rule(backup_container, "backups/", retention_days),
    ]}}})
    return acct


def seed_app_gateway(
    rg: str = "rg-blue",
    name: str = "appgw-blue",
    blob_fqdn: str = "bloberry01.z12.web.core.windows.net",
    *,
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
    location: str = DEFAULT_LOCATION,
    vnet: str = "vnet-blue",
    subnet: str = "snet-appgw",
    public_ip: str = "pip-appgw-blue",
    served_by: str = "azure",
) -> dict[str, Any]:
    """The PUT body of appgw-blue as the seeds' Terraform (azure/2-failover) creates it.

    One HTTP listener on port 80 and one Basic rule -> `blob-backend-pool` (the Blob static-website
    FQDN) with `blob-http-settings` (Https 443, host name from the backend address) probed by
    `health-probe` (Https /), plus rewrite rule set `add-served-by` that adds `X-Served-By: azure`
    to every response, so PetClinic served from Azure is told apart from AWS.
    """
    rgid = f"/subscriptions/{subscription_id}/resourceGroups/{rg}"
    gid = f"{rgid}/providers/{GW_TYPE}/{name}"

    def ref(coll: str, child: str) -> dict[str, str]:
        return {"id": f"{gid}/{coll}/{child}"}

    return {
        "location": location,
        "tags": {"stack": "2-failover"},
        "properties": {
            "sku": {"name": "Standard_v2", "tier": "Standard_v2", "capacity": 1},
            "gatewayIPConfigurations": [{
                "name": "appgw-ip-config",
                "properties": {"subnet": {"id": f"{rgid}/providers/{VNET_TYPE}/{vnet}/subnets/{subnet}"}},
            }],
            "frontendIPConfigurations": [{
                "name": "appgw-frontend-ip",
                "properties": {
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {"id": f"{rgid}/providers/{NETWORK}/publicIPAddresses/{public_ip}"},
                },
            }],
            "frontendPorts": [{"name": "http-port", "properties": {"port": 80}}],
            "backendAddressPools": [{"name": "blob-backend-pool", "properties": {"backendAddresses": [{"fqdn": blob_fqdn}]}}],
            "backendHttpSettingsCollection": [{
                "name": "blob-http-settings",
                "properties": {
                    "port": 443, "protocol": "Https", "cookieBasedAffinity": "Disabled", "requestTimeout": 60,
                    "pickHostNameFromBackendAddress": True, "probe": ref("probes", "health-probe"),
                },
            }],
            "probes": [{
                "name": "health-probe",
                "properties": {
                    "protocol": "Https", "path": "/", "interval": 30, "timeout": 30, "unhealthyThreshold": 3,
                    "pickHostNameFromBackendHttpSettings": True, "minServers": 0,
                    "match": {"statusCodes": ["200-399"]},
                },
            }],
            "httpListeners": [{
                "name": "http-listener",
                "properties": {
                    "frontendIPConfiguration": ref("frontendIPConfigurations", "appgw-frontend-ip"),
                    "frontendPort": ref("frontendPorts", "http-port"),
                    "protocol": "Http", "hostNames": [], "requireServerNameIndication": False,
                },
            }],
            "requestRoutingRules": [{
                "name": "routing-rule",
                "properties": {
                    "ruleType": "Basic", "priority": 100,
                    "httpListener": ref("httpListeners", "http-listener"),
                    "backendAddressPool": ref("backendAddressPools", "blob-backend-pool"),
                    "backendHttpSettings": ref("backendHttpSettingsCollection", "blob-http-settings"),
                    "rewriteRuleSet": ref("rewriteRuleSets", "add-served-by"),
                },
            }],
            "rewriteRuleSets": [{
                "name": "add-served-by",
                "properties": {"rewriteRules": [{
                    "name": "served-by", "ruleSequence": 100, "conditions": [],
                    "actionSet": {
                        "requestHeaderConfigurations": [],
                        "responseHeaderConfigurations": [{"headerName": "X-Served-By", "headerValue": served_by}],
                    },
                }]},
            }],
            "enableHttp2": False,
        },
    }
