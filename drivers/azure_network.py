"""Azure Application Gateway through azure-mgmt-network: the runbook's Phase 2.4 and 2.5.

The SDK updates a gateway as a whole (GET, modify, PUT), so repointing the backend pool, the HTTP
settings and the probe (three `az network application-gateway ... update` calls in the runbook) is
one get-modify-`begin_create_or_update(...).result()` here: one provisioning round instead of three,
and no window where the settings say Http but the probe still says Https.

Every change goes through the rollback ledger first (drill.ledger): the inverse is the previous pool
addresses, settings and probe as plain data, recorded before the PUT, so `drill unwind` in a fresh
process can put them back with `execute_azure_action`.

Credentials: `make_credential(cfg)` gives a ClientSecretCredential when a client secret is
configured (optionally against another authority host and with a CA bundle, which is how the lab's
emulated Entra authority is reached), else DefaultAzureCredential. Secrets never reach the ledger,
reprs or logs.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as M

from drill.ledger import Action, Entry, Ledger
from drivers.retries import ApiSettings, azure_client_kwargs

OP_CONFIGURE_BACKEND = "azure.appgw.configure_backend"
OP_SET_RESPONSE_HEADER = "azure.appgw.set_response_header"


@dataclass(frozen=True)
class AzureAuth:
    """What `make_credential`/`make_client` read; any object with these attributes will do
    (e.g. a pydantic target section). `client_secret` may be a pydantic SecretStr."""

    subscription_id: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: Any = None
    authority_host: str | None = None  # e.g. the lab's https://127.0.0.1:PORT; None = public cloud
    resource_manager_url: str | None = None  # None = https://management.azure.com
    ca_bundle: str | None = None  # PEM file trusted for both the authority and ARM
    disable_instance_discovery: bool | None = None  # default: True iff authority_host is set
    api: ApiSettings = field(default_factory=ApiSettings)  # timeouts and the time scale of the SDK's retry backoff

    def __repr__(self) -> str:
        return (f"AzureAuth(subscription_id={self.subscription_id!r}, tenant_id={self.tenant_id!r}, "
                f"client_id={self.client_id!r}, authority_host={self.authority_host!r}, "
                f"resource_manager_url={self.resource_manager_url!r})")


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)
    return str(get() if callable(get) else value) or None


def make_credential(cfg: Any) -> TokenCredential:
    """ClientSecretCredential if `cfg.client_secret` is set, else DefaultAzureCredential.

    A custom authority host has no instance-discovery metadata, so discovery is turned off with it
    (otherwise MSAL asks login.microsoftonline.com about it first). The CA bundle is passed as
    `connection_verify`: SSL_CERT_FILE is ignored by azure-core's requests transport.
    """
    authority = getattr(cfg, "authority_host", None)
    ca = getattr(cfg, "ca_bundle", None)
    no_discovery = getattr(cfg, "disable_instance_discovery", None)
    kw: dict[str, Any] = {}
    if authority:
        kw["authority"] = authority
    if no_discovery if no_discovery is not None else bool(authority):
        kw["disable_instance_discovery"] = True
    if ca:
        kw["connection_verify"] = str(ca)
    secret = _secret(getattr(cfg, "client_secret", None))
    if secret:
        if not cfg.tenant_id or not cfg.client_id:
            raise ValueError("a client secret needs tenant_id and client_id")
        return ClientSecretCredential(cfg.tenant_id, cfg.client_id, secret, **kw)
    return DefaultAzureCredential(**kw)


def client_kwargs(cfg: Any) -> dict[str, Any]:
    """What every ARM client of the drill is built with: the CA bundle, timeouts, the recording retry policy."""
    kw: dict[str, Any] = azure_client_kwargs(getattr(cfg, "api", None) or ApiSettings())
    if getattr(cfg, "ca_bundle", None):
        kw["connection_verify"] = str(cfg.ca_bundle)
    return kw


def make_client(cfg: Any, credential: TokenCredential | None = None) -> NetworkManagementClient:
    """NetworkManagementClient for `cfg.subscription_id`, against `cfg.resource_manager_url` if set."""
    kw: dict[str, Any] = client_kwargs(cfg)
    return NetworkManagementClient(
        credential or make_credential(cfg), cfg.subscription_id,
        base_url=getattr(cfg, "resource_manager_url", None) or None, **kw,
    )


def _value(x: Any) -> Any:
    """An SDK enum as its wire value (the models hand back str-enums)."""
    return getattr(x, "value", x)


def _leaf(resource_id: str | None) -> str | None:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else None


def _address_dict(address: str) -> dict[str, str]:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return {"fqdn": address}
    return {"ipAddress": address}


class AppGateway:
    """One application gateway: read it, repoint its backend (ledgered), read backend health."""

    def __init__(self, client: NetworkManagementClient, resource_group: str, name: str, ledger: Ledger | None = None) -> None:
        self.client = client
        self.resource_group = resource_group
        self.name = name
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"AppGateway({self.resource_group}/{self.name})"

    def get(self) -> M.ApplicationGateway:
        return self.client.application_gateways.get(self.resource_group, self.name)

    @staticmethod
    def _find(items: list[Any] | None, name: str, what: str, gw: str) -> Any:
        for item in items or []:
            if (item.name or "").lower() == name.lower():
                return item
        raise KeyError(f"application gateway {gw} has no {what} {name!r}")

    def backend_pool(self, name: str) -> list[str]:
        """The pool's addresses (IP or FQDN), in order."""
        pool = self._find(self.get().backend_address_pools, name, "backend pool", self.name)
        return [a.ip_address or a.fqdn for a in pool.backend_addresses or []]

    def snapshot(self, pool: str, http_settings: str, probe: str, gw: M.ApplicationGateway | None = None) -> dict[str, Any]:
        """The parts `point_at` changes, as data (ARM property names): what an inverse restores."""
        gw = gw or self.get()
        p = self._find(gw.backend_address_pools, pool, "backend pool", self.name)
        s = self._find(gw.backend_http_settings_collection, http_settings, "HTTP settings", self.name)
        pr = self._find(gw.probes, probe, "probe", self.name)
        return {
            "pool": {"name": p.name, "backendAddresses": [
                {k: v for k, v in (("ipAddress", a.ip_address), ("fqdn", a.fqdn)) if v} for a in p.backend_addresses or []
            ]},
            "http_settings": {
                "name": s.name, "port": s.port, "protocol": _value(s.protocol), "probe": _leaf(s.probe.id if s.probe else None),
                "pickHostNameFromBackendAddress": s.pick_host_name_from_backend_address, "hostName": s.host_name,
            },
            "probe": {
                "name": pr.name, "protocol": _value(pr.protocol), "path": pr.path, "host": pr.host,
                "pickHostNameFromBackendHttpSettings": pr.pick_host_name_from_backend_http_settings, "port": pr.port,
            },
        }

    def put(self, change: Callable[[M.ApplicationGateway], None], attempts: int = 5) -> M.ApplicationGateway:
        """GET, `change` the model, PUT it back with If-Match on the etag read; wait until provisioned.

        If-Match (ARM's optimistic concurrency on resource etags) turns a lost update into 412
        PreconditionFailed: when the read was stale (an eventually consistent GET still showing the
        gateway before the previous PUT) or someone changed the gateway meanwhile, the whole GET-
        change-PUT is done again on a fresh read instead of writing the old state back."""
        from azure.core.exceptions import HttpResponseError

        for attempt in range(1, attempts + 1):
            gw = self.get()
            change(gw)
            headers = {"If-Match": gw.etag} if gw.etag else {}
            try:
                return self.client.application_gateways.begin_create_or_update(
                    self.resource_group, self.name, gw, headers=headers).result()
            except HttpResponseError as e:
                if e.status_code != 412 or attempt == attempts:
                    raise
                time.sleep(min(2.0, 0.2 * attempt))
        raise AssertionError("unreachable")

    def apply(self, snap: dict[str, Any]) -> M.ApplicationGateway:
        """Set pool, settings and probe to `snap` (a `snapshot` shape) in one PUT; wait until provisioned."""
        return self.put(lambda gw: self._set(gw, snap))

    def _set(self, gw: M.ApplicationGateway, snap: dict[str, Any]) -> None:
        p = self._find(gw.backend_address_pools, snap["pool"]["name"], "backend pool", self.name)
        p.backend_addresses = [
            M.ApplicationGatewayBackendAddress(ip_address=a.get("ipAddress"), fqdn=a.get("fqdn"))
            for a in snap["pool"]["backendAddresses"]
        ]
        sd = snap["http_settings"]
        s = self._find(gw.backend_http_settings_collection, sd["name"], "HTTP settings", self.name)
        s.port, s.protocol = sd["port"], sd["protocol"]
        s.pick_host_name_from_backend_address, s.host_name = sd["pickHostNameFromBackendAddress"], sd["hostName"]
        s.probe = M.SubResource(id=f"{gw.id}/probes/{sd['probe']}") if sd["probe"] else None
        pd = snap["probe"]
        pr = self._find(gw.probes, pd["name"], "probe", self.name)
        pr.protocol, pr.path, pr.host, pr.port = pd["protocol"], pd["path"], pd["host"], pd["port"]
        pr.pick_host_name_from_backend_http_settings = pd["pickHostNameFromBackendHttpSettings"]

    def point_at(
        self,
        pool: str,
        address: str,
        http_settings: str,
        port: int,
        protocol: str,
        probe: str,
        probe_host: str | None,
        probe_path: str = "/",
    ) -> Entry:
        """Runbook 2.4 in one PUT: pool -> [address], settings -> protocol/port with `probe`, probe ->
        protocol/path with host `probe_host` (None: host from the settings). Inverse recorded first."""
        if self.ledger is None:
            raise RuntimeError("a change needs a rollback ledger")
        gw = self.get()
        before = self.snapshot(pool, http_settings, probe, gw)
        after = {
            "pool": {"name": before["pool"]["name"], "backendAddresses": [_address_dict(address)]},
            "http_settings": {**before["http_settings"], "port": int(port), "protocol": protocol, "probe": before["probe"]["name"]},
            "probe": {
                **before["probe"], "protocol": protocol, "path": probe_path, "host": probe_host,
                "pickHostNameFromBackendHttpSettings": probe_host is None,
            },
        }
        where = {"resource_group": self.resource_group, "gateway": self.name}
        entry = self.ledger.record(
            Action(OP_CONFIGURE_BACKEND, {**where, **after},
                   f"point {self.name}/{pool} at {address} ({protocol} {port}, probe {probe_path} host {probe_host})"),
            Action(OP_CONFIGURE_BACKEND, {**where, **before},
                   f"restore {self.name}/{pool} to {[_address_dict_value(a) for a in before['pool']['backendAddresses']]} "
                   f"({before['http_settings']['protocol']} {before['http_settings']['port']})"),
        )
        if not entry.planned:
            self.apply(after)
            self.ledger.applied(entry)
        return entry

    def backend_health(self) -> list[dict[str, Any]]:
        """show-backend-health, flattened: one dict per server (pool, http_settings, address, health, log)."""
        h = self.client.application_gateways.begin_backend_health(self.resource_group, self.name).result()
        out = []
        for pool in h.backend_address_pools or []:
            pool_name = _leaf(pool.backend_address_pool.id if pool.backend_address_pool else None)
            for sc in pool.backend_http_settings_collection or []:
                settings_name = _leaf(sc.backend_http_settings.id if sc.backend_http_settings else None)
                for srv in sc.servers or []:
                    out.append({
                        "pool": pool_name, "http_settings": settings_name, "address": srv.address,
                        "health": _value(srv.health), "log": srv.health_probe_log,
                    })
        return out

    def wait_health(self, address: str, health: str = "Up", timeout: float = 600.0, poll: float = 1.0) -> float:
        """Wait until backend health reports `address` as `health`; return seconds waited."""
        t0 = time.monotonic()
        while True:
            seen = [s["health"] for s in self.backend_health() if (s["address"] or "").lower() == address.lower()]
            if seen and all(h == health for h in seen):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{address} not {health} in {self.name} after {timeout:.0f}s (last: {seen})")
            time.sleep(poll)


class ResponseHeaderRewrite:
    """A response header the gateway adds to what its backends answer: a rewrite rule set attached
    to request routing rules (App Gateway v2 "Rewrite HTTP headers"), changed as one ledgered PUT.

    The drill adds `X-Served-By: azure` this way so that users' Azure PetClinic can be told from the
    AWS one (nothing in the seeds' stack adds such a header). The gateway's own error pages are not
    rewritten: they never passed through a backend.
    """

    def __init__(self, gateway: AppGateway) -> None:
        self.gateway = gateway

    def snapshot(self, rule_set: str, routing_rules: list[str] | None, gw: M.ApplicationGateway | None = None) -> dict[str, Any]:
        """The rule set named `rule_set` (ARM's shape, or None) and the rule set each routing rule uses."""
        gw = gw or self.gateway.get()
        found = next((rs for rs in gw.rewrite_rule_sets or [] if (rs.name or "").lower() == rule_set.lower()), None)
        rules = [r for r in gw.request_routing_rules or [] if routing_rules is None or r.name in routing_rules]
        missing = sorted(set(routing_rules or []) - {r.name for r in rules})
        if missing:
            raise KeyError(f"application gateway {self.gateway.name} has no request routing rule {missing[0]!r}")
        return {
            "name": rule_set, "rule_set": None if found is None else found.as_dict(),
            "routing": {r.name: _leaf(r.rewrite_rule_set.id if r.rewrite_rule_set else None) for r in rules},
        }

    def apply(self, snap: dict[str, Any]) -> M.ApplicationGateway:
        """Make the rule set and the routing rules' references what `snap` says, in one PUT (If-Match)."""
        return self.gateway.put(lambda gw: self._set(gw, snap))

    @staticmethod
    def _set(gw: M.ApplicationGateway, snap: dict[str, Any]) -> None:
        kept = [rs for rs in gw.rewrite_rule_sets or [] if (rs.name or "").lower() != snap["name"].lower()]
        if snap["rule_set"] is not None:
            kept.append(M.ApplicationGatewayRewriteRuleSet(snap["rule_set"]))
        gw.rewrite_rule_sets = kept
        for rule in gw.request_routing_rules or []:
            if rule.name in snap["routing"]:
                leaf = snap["routing"][rule.name]
                rule.rewrite_rule_set = M.SubResource(id=f"{gw.id}/rewriteRuleSets/{leaf}") if leaf else None

    def add(self, rule_set: str, header: str, value: str, routing_rules: list[str] | None = None) -> Entry:
        """Every response through `routing_rules` (None: all) gets `header: value`; the way back first."""
        ledger = self.gateway.ledger
        if ledger is None:
            raise RuntimeError("a change needs a rollback ledger")
        before = self.snapshot(rule_set, routing_rules)
        rewrite = M.ApplicationGatewayRewriteRuleSet(
            name=rule_set, properties=M.ApplicationGatewayRewriteRuleSetPropertiesFormat(rewrite_rules=[
                M.ApplicationGatewayRewriteRule(
                    name="served-by", rule_sequence=100, conditions=[],
                    action_set=M.ApplicationGatewayRewriteRuleActionSet(
                        request_header_configurations=[],
                        response_header_configurations=[
                            M.ApplicationGatewayHeaderConfiguration(header_name=header, header_value=value)],
                    ),
                )]))
        after = {"name": rule_set, "rule_set": rewrite.as_dict(), "routing": {r: rule_set for r in before["routing"]}}
        where = {"resource_group": self.gateway.resource_group, "gateway": self.gateway.name}
        rules = ", ".join(sorted(before["routing"])) or "(none)"
        entry = ledger.record(
            Action(OP_SET_RESPONSE_HEADER, {**where, **after},
                   f"add response header {header}: {value} on {self.gateway.name} (rewrite rule set {rule_set} on {rules})"),
            Action(OP_SET_RESPONSE_HEADER, {**where, **before},
                   f"remove rewrite rule set {rule_set} from {self.gateway.name}"
                   + ("" if before["rule_set"] is None else " (restore its previous version)")),
        )
        if not entry.planned:
            self.apply(after)
            ledger.applied(entry)
        return entry


def _address_dict_value(a: dict[str, str]) -> str:
    return a.get("ipAddress") or a.get("fqdn") or "?"


def execute_azure_action(action: Action, client_factory: Callable[[], NetworkManagementClient]) -> None:
    """Carry out an Azure ledger action (an inverse, usually) from its data alone."""
    p = action.params
    if action.op == OP_SET_RESPONSE_HEADER:
        ResponseHeaderRewrite(AppGateway(client_factory(), p["resource_group"], p["gateway"])).apply(p)
        return
    if action.op != OP_CONFIGURE_BACKEND:
        raise ValueError(f"no executor for operation {action.op!r}")
    AppGateway(client_factory(), p["resource_group"], p["gateway"]).apply(
        {"pool": p["pool"], "http_settings": p["http_settings"], "probe": p["probe"]}
    )
