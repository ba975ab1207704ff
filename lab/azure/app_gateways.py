"""Application gateways (Microsoft.Network/applicationGateways) in the lab's ARM model.

What the model keeps from real ARM:
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.azure.arm_base import DEFAULT_LOCATION, DEFAULT_SUBSCRIPTION_ID, NETWORK, ArmError, Operation, _etag, _key
from lab.azure.networks import VNET_TYPE, VirtualNetworks

GW_TYPE = "Microsoft.Network/applicationGateways"
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


@dataclass
class _Gateway:
    resource: dict[str, Any]  # what GET returns (the requested configuration)
    active: dict[str, Any] | None  # what the data plane serves; replaced, never mutated
    op: Operation | None = None


HealthFn = Callable[[], list[dict[str, Any]]]
GATEWAY_OPERATIONS = ("put", "delete", "backendhealth")


class AppGateways(VirtualNetworks):
    """Gateways validate their references to subnets, hence a `VirtualNetworks` family."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gateways: dict[tuple[str, str], _Gateway] = {}
        self._health: dict[tuple[str, str], HealthFn] = {}
        self._fail_next: dict[tuple[str, str], ArmError] = {}

    def gateway_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{GW_TYPE}/{name}"

    # -- operations ------------------------------------------------------------------------------------
    def _collects(self, op: Operation) -> bool:
        return (op.kind == "backendhealth" and op.fail_with is None) or super()._collects(op)

    def _collect(self, op: Operation) -> None:
        if op.kind != "backendhealth":
            return super()._collect(op)
        # The data plane reads the state back (active_app_gateway), so never call it under the lock.
        with self._lock:
            fn = self._health.get(_key(op.rg, op.name))
            gw = self._gateways.get(_key(op.rg, op.name))
            active = gw.active if gw is not None else None
        try:
            pools = fn() if fn is not None else _unknown_health(active)
        except Exception as e:  # noqa: BLE001 — a failing data plane shows as a failed operation, as ARM would
            with self._lock:
                op.status, op.error = "Failed", ArmError(500, "InternalServerError", f"backend health: {e!r}")
            return
        with self._lock:
            op.result, op.status = {"backendAddressPools": pools}, "Succeeded"

    def _complete(self, op: Operation) -> None:
        if op.kind not in GATEWAY_OPERATIONS:
            return super()._complete(op)
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

    # -- gateways ----------------------------------------------------------------------------------------
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
                assert gw is not None  # not created: it exists
                gw.resource, gw.op = resource, op
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
        in_gateway = ref.lower().startswith(gid.lower() + "/")
        missing = ref.lower() not in index if in_gateway else self._subnet_exists(ref) is False
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
    served_by: str | None = None,
) -> dict[str, Any]:
    """The PUT body of appgw-blue as the seeds' Terraform (azure/2-failover) creates it.

    One HTTP listener on port 80 and one Basic rule -> `blob-backend-pool` (the Blob static-website
    FQDN) with `blob-http-settings` (Https 443, host name from the backend address) probed by
    `health-probe` (Https /). Nothing in the seeds tells the gateway's responses apart from AWS's:
    the drill adds a response header itself. `served_by` (tests only) adds rewrite rule set
    `add-served-by` (`X-Served-By: <served_by>` on every response) to the seed.
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
                    **({"rewriteRuleSet": ref("rewriteRuleSets", "add-served-by")} if served_by else {}),
                },
            }],
            "rewriteRuleSets": [] if not served_by else [{
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
