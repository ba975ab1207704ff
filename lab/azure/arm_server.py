"""The HTTPS surface of the lab's Azure control plane: Azure Resource Manager + the Entra ID authority.

azure-core refuses bearer tokens over plain http, so the emulator serves TLS with a trustme CA made
at start (`ca_path`); clients pass `connection_verify=str(ca_path)` (or set REQUESTS_CA_BUNDLE).
It is also the token authority, so drivers use the production credential path unchanged:

    ClientSecretCredential(tenant_id, client_id, client_secret, authority=emulator.url,
                           disable_instance_discovery=True, connection_verify=str(emulator.ca_path))

MSAL then calls `GET /{tenant}/v2.0/.well-known/openid-configuration` and
`POST /{tenant}/oauth2/v2.0/token` (client_credentials, client_secret_post). Tokens are opaque
random strings; ARM accepts only unexpired tokens issued for the ARM audience.

Routes (api-version required and accepted as given):
  GET/PUT  /subscriptions/{s}/resourceGroups/{rg}                      GET /subscriptions/{s}/resourcegroups
  GET      .../providers/Microsoft.Network/virtualNetworks[/{v}[/subnets[/{s}]]]   PUT/DELETE .../subnets/{s}
  GET      .../providers/Microsoft.Network/publicIPAddresses[/{name}]     (created in-process by the lab's stack)
  GET      .../providers/Microsoft.Storage/storageAccounts/{a}
  GET/PUT/DELETE .../storageAccounts/{a}/managementPolicies/default   (the account's lifecycle rules)
  GET      .../providers/Microsoft.Network/applicationGateways          (list in rg; also per subscription)
  GET/PUT/DELETE .../applicationGateways/{name}                        POST .../{name}/backendhealth
  GET      /subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/operations/{id}        (Azure-AsyncOperation)
  GET      /subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/operationResults/{id}  (Location)
  GET      .../providers/Microsoft.ContainerService/managedClusters[/{name}]   POST .../{name}/listClusterUserCredential
  GET      .../resourceGroups/{rg}/providers/Microsoft.Authorization/permissions     (managed_clusters.py)
  GET      .../providers/Microsoft.DBforMySQL/flexibleServers[/{s}]   (created in-process by the lab's stack)
  GET/PUT/DELETE .../flexibleServers/{s}/firewallRules[/{rule}]      (PUT/DELETE: 202, long-running)
  GET      /subscriptions/{s}/providers/Microsoft.DBforMySQL/locations/{loc}/(azureAsyncOperation|operationResults)/{id}
"""
from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

from lab import fault_shapes
from lab.azure.arm_state import (
    DEFAULT_LOCATION,
    DEFAULT_SUBSCRIPTION_ID,
    ArmError,
    ArmState,
    ArmTimings,
    Operation,
    seed_app_gateway,
    seed_virtual_network,
)
from lab.azure.managed_clusters import ManagedClusters
from lab.events import EventLog
from lab.faults import Faults
from lab.httpfwd import Request, Response, Server
from lab.ports import free_port

# Default identities of the emulated tenant/subscription: fixed so target files and logs are stable.
TENANT_ID = "8d3c5b1a-6e7f-4a2b-9c0d-1e2f3a4b5c6d"
SUBSCRIPTION_ID = DEFAULT_SUBSCRIPTION_ID
CLIENT_ID = "0c4b3d2e-1f0a-4b9c-8d7e-6f5a4b3c2d1e"
ARM_AUDIENCES = {
    "https://management.azure.com", "https://management.azure.com/",
    "https://management.core.windows.net", "https://management.core.windows.net/",
}
RETRY_AFTER = "1"  # 0 would make azure-core fall back to its 30 s default poll interval


@dataclass
class _Token:
    expires: float  # time.time()
    audience: str
    client_id: str


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    hs = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Cache-Control", "no-cache"),
        ("x-ms-request-id", str(uuid.uuid4())),
        ("x-ms-correlation-request-id", str(uuid.uuid4())),
    ]
    return Response(status, hs + (headers or []), json.dumps(body).encode() if body is not None else b"")


def _header(req: Request, name: str) -> str | None:
    for k, v in req.headers.items():
        if k.lower() == name.lower():
            return v
    return None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class ArmEmulator:
    """ARM + Entra authority over HTTPS on 127.0.0.1. `state` is the in-process model (see arm_state)."""

    def __init__(
        self,
        workdir: Path,
        events: EventLog | None = None,
        time_scale: float = 1.0,
        *,
        timings: ArmTimings | None = None,
        location: str = DEFAULT_LOCATION,
        port: int | None = None,
        token_lifetime_seconds: int = 3599,
        faults: Faults | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.faults = faults or Faults(time_scale, events)  # lab.faults: answers chosen for chosen calls
        self.events = events
        self.time_scale = time_scale
        self.subscription_id = SUBSCRIPTION_ID
        self.tenant_id = TENANT_ID
        self.client_id = CLIENT_ID
        self.client_secret = secrets.token_urlsafe(24)  # fresh per lab run
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_path = self.workdir / "azure-arm-ca.pem"
        self.token_lifetime_seconds = token_lifetime_seconds
        self.state = ArmState(self.subscription_id, location, time_scale, events, timings)
        self.clusters = ManagedClusters(self.subscription_id, location, self.client_id)  # AKS + caller permissions
        self._tokens: dict[str, _Token] = {}
        self._tokens_lock = threading.Lock()
        self._server: Server | None = None
        # (method, path without query, status) of recent requests: lets tests count LRO polls.
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=2000)
        # Routes by resource provider namespace (lower case), one handler per family of resources:
        # .../resourceGroups/{rg}/providers/{namespace}/... and /subscriptions/{s}/providers/{namespace}/...
        self._providers: dict[str, Callable[[Request, str, list[str], list[str], str], Response]] = {
            "microsoft.network": self._network,
            "microsoft.storage": self._storage_provider,
            "microsoft.dbformysql": self._mysql,
            "microsoft.containerservice": self._clusters_provider("microsoft.containerservice"),
            "microsoft.authorization": self._clusters_provider("microsoft.authorization"),
        }
        self._subscription_providers: dict[str, Callable[[Request, list[str], list[str], str], Response]] = {
            "microsoft.network": self._network_subscription,
            "microsoft.dbformysql": self._mysql_subscription,
        }

    def add_provider(self, namespace: str, handler: Callable[[Request, str, list[str], list[str], str], Response],
                     subscription_handler: Callable[[Request, list[str], list[str], str], Response] | None = None) -> None:
        """Serve one more resource provider (e.g. Microsoft.Compute, lab.azure.virtual_machines)."""
        self._providers[namespace.lower()] = handler
        if subscription_handler is not None:
            self._subscription_providers[namespace.lower()] = subscription_handler

    def __repr__(self) -> str:  # reprs reach Allure step parameters and logs: never the secret
        return f"ArmEmulator(url={self.url!r}, tenant_id={self.tenant_id!r}, subscription_id={self.subscription_id!r})"

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> ArmEmulator:
        ca = trustme.CA(organization_name="dr-drill lab")
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(self.ca_path))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        server = Server(self.port, self.handle)
        # Handshake lazily in the handler thread, not in the accept loop (one slow client must not
        # stall the others); failed handshakes (an untrusting client) are not worth a traceback.
        server.httpd.socket = ctx.wrap_socket(server.httpd.socket, server_side=True, do_handshake_on_connect=False)
        server.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._server = server.start()
        if self.events is not None:
            self.events.record("azure-arm", "started", url=self.url)
        return self

    def stop(self) -> None:
        self.state.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def seed(self, rg: str = "rg-blue", gateway: str = "appgw-blue",
             blob_fqdn: str = "bloberry01.z12.web.core.windows.net") -> dict[str, Any]:
        """rg-blue, vnet-blue (snet-appgw, snet-aks, snet-db) and appgw-blue as Terraform leaves them."""
        seed_virtual_network(self.state, rg)
        body = seed_app_gateway(rg, gateway, blob_fqdn, subscription_id=self.subscription_id, location=self.state.location)
        return self.state.create_app_gateway(rg, gateway, body)

    def credential(self) -> Any:
        """The production credential type, pointed at this authority (for lab-side callers)."""
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            self.tenant_id, self.client_id, self.client_secret, authority=self.url,
            disable_instance_discovery=True, connection_verify=str(self.ca_path),
        )

    def revoke_tokens(self) -> None:
        """Forget every issued token (ARM then answers 401 until the client gets a new one)."""
        with self._tokens_lock:
            self._tokens.clear()

    # -- dispatch -----------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        parts = urlsplit(req.path)
        segs = [s for s in parts.path.split("/") if s]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            if len(segs) >= 2 and segs[0].lower() != "subscriptions":
                resp = self._authority(req, segs)
            else:
                self._authenticate(req)
                resp = self._faulty(req, parts.path, lambda: self._arm(req, segs, query))
        except ArmError as e:
            headers = []
            if e.status == 401:  # as ARM sends it; carries no claims, so azure-core does not retry
                headers.append(("WWW-Authenticate", f'Bearer authorization_uri="{self.url}/{self.tenant_id}", '
                                f'error="invalid_token", error_description="{e.message}"'))
            resp = _json(e.status, e.body(), headers)
        self.requests.append((req.method, parts.path, resp.status))
        return resp

    def _faulty(self, req: Request, path: str, serve: Callable[[], Response]) -> Response:
        """An ARM call through the lab's faults: a chosen fault instead of the call, or a stale read."""
        key = f"{req.method} {path}"
        rule = self.faults.take("arm", key)
        if rule is not None:
            if rule.kind == "hang":
                return Response(0, hang=self.faults.hang_seconds(rule))
            status, headers, body = fault_shapes.arm(rule.kind, req.method, self.subscription_id,
                                                     self.faults.retry_after(rule), rule.status)
            return Response(status, headers, body)
        resp = serve()
        if req.method == "GET":
            stale = self.faults.read("arm", key, resp.status, resp.headers, resp.body, memo=req.path)
            if stale is not None:
                return Response(stale.status, stale.headers, stale.body)
        return resp

    # -- Entra ID authority ---------------------------------------------------------------------------
    def _aad_error(self, status: int, error: str, aadsts: int, description: str) -> Response:
        return _json(status, {
            "error": error, "error_description": f"AADSTS{aadsts}: {description} Trace ID: {uuid.uuid4()} "
            f"Correlation ID: {uuid.uuid4()} Timestamp: {_iso(time.time())}",
            "error_codes": [aadsts], "timestamp": _iso(time.time()), "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        })

    def _authority(self, req: Request, segs: list[str]) -> Response:
        tenant = segs[0]
        if tenant.lower() not in (self.tenant_id, "organizations"):
            return self._aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        rest = "/".join(segs[1:]).lower()
        base = f"{self.url}/{self.tenant_id}"
        if req.method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return _json(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "AS", "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net", "msgraph_host": "graph.microsoft.com",
            })
        if req.method == "POST" and rest == "oauth2/v2.0/token":
            return self._token(req)
        return _json(404, {"error": "not_found", "error_description": f"{req.method} {req.path} is not served"})

    def _token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _header(req, "Authorization")
        if basic and basic.lower().startswith("basic "):  # client_secret_basic
            import base64
            from urllib.parse import unquote

            cid, _, sec = base64.b64decode(basic[6:]).decode().partition(":")
            client_id, client_secret = unquote(cid), unquote(sec)
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        if client_id != self.client_id:
            self._record("token refused", reason="unknown client")
            return self._aad_error(400, "unauthorized_client", 700016,
                                   f"Application with identifier '{client_id}' was not found in the directory.")
        if not client_secret or not secrets.compare_digest(client_secret, self.client_secret):
            self._record("token refused", reason="invalid client secret")
            return self._aad_error(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent in the request is "
                                   "the client secret value, not the client secret ID.")
        scope = (form.get("scope") or "").split()
        resource = next((s[: -len(".default")] for s in scope if s.endswith("/.default")), None)
        if resource is None:
            return self._aad_error(400, "invalid_scope", 1002012,
                                   "The provided value for scope is not valid. Client credential flows must have a "
                                   "scope value with /.default suffixed to the resource identifier.")
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            now = time.time()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires > now}
            self._tokens[token] = _Token(now + self.token_lifetime_seconds, resource, client_id)
        self._record("token issued", client_id=client_id, audience=resource)
        return _json(200, {
            "token_type": "Bearer", "expires_in": self.token_lifetime_seconds,
            "ext_expires_in": self.token_lifetime_seconds, "access_token": token,
        })

    def _record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("azure-aad", event, **detail)

    # -- ARM authentication ------------------------------------------------------------------------------
    def _authenticate(self, req: Request) -> None:
        auth = _header(req, "Authorization")
        if not auth:
            raise self._unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise self._unauthorized(
                "AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.")
        with self._tokens_lock:
            tok = self._tokens.get(auth[7:].strip())
        if tok is None:
            raise self._unauthorized("InvalidAuthenticationToken", "The access token is invalid.")
        if tok.expires <= time.time():
            raise self._unauthorized(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_iso(tok.expires)}' is earlier than current UTC time '{_iso(time.time())}'.")
        if tok.audience.rstrip("/") + "/" not in ARM_AUDIENCES and tok.audience not in ARM_AUDIENCES:
            raise self._unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{tok.audience}'. It should exactly "
                f"match with one of the allowed audiences 'https://management.core.windows.net/',"
                f"'https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.")

    def _unauthorized(self, code: str, message: str) -> ArmError:
        self._record("arm request refused", code=code)
        return ArmError(401, code, message)

    # -- ARM routes --------------------------------------------------------------------------------------
    def _arm(self, req: Request, segs: list[str], query: dict[str, str]) -> Response:
        api = query.get("api-version")
        if not api:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        low = [s.lower() for s in segs]
        if len(segs) < 2:
            raise ArmError(404, "InvalidResourceType", "The resource type could not be found.")
        if segs[1].lower() != self.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        st, m = self.state, req.method
        rest, lrest = segs[2:], low[2:]
        # /subscriptions/{s}/providers/{namespace}/...
        if len(lrest) >= 2 and lrest[0] == "providers":
            handler = self._subscription_providers.get(lrest[1])
            if handler is None:
                raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(rest[2:])}' could not be found.")
            return handler(req, rest[2:], lrest[2:], api)
        if lrest == ["resourcegroups"] and m == "GET":
            return _json(200, {"value": st.list_resource_groups()})
        if len(lrest) < 2 or lrest[0] != "resourcegroups":
            raise ArmError(404, "InvalidResourceType", "The resource type could not be found.")
        rg, after, lafter = rest[1], rest[2:], lrest[2:]
        if not after:
            if m == "GET":
                found = st.get_resource_group(rg)
                if found is None:
                    raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
                return _json(200, found)
            if m == "PUT":
                existed = st.get_resource_group(rg) is not None
                body = json.loads(req.body or b"{}")
                return _json(200 if existed else 201, st.create_resource_group(rg, body.get("location"), body.get("tags")))
            raise self._method(m)
        # /subscriptions/{s}/resourceGroups/{rg}/providers/{namespace}/{type}/...
        rg_handler = self._providers.get(lafter[1]) if len(lafter) >= 3 and lafter[0] == "providers" else None
        if rg_handler is None:
            raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(after)}' could not be found.")
        return rg_handler(req, rg, after[2:], lafter[2:], api)

    # -- Microsoft.Network --------------------------------------------------------------------------------
    def _network_subscription(self, req: Request, tail: list[str], ltail: list[str], api: str) -> Response:
        """/subscriptions/{s}/providers/Microsoft.Network/...: gateways of the subscription, operations."""
        if ltail == ["applicationgateways"] and req.method == "GET":
            return _json(200, {"value": self.state.list_app_gateways()})
        if len(ltail) == 4 and ltail[0] == "locations" and ltail[2] in ("operations", "operationresults"):
            return self._operation(tail[3], ltail[2] == "operations", api)
        raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(tail)}' could not be found.")

    def _network(self, req: Request, rg: str, after: list[str], lafter: list[str], api: str) -> Response:
        """.../resourceGroups/{rg}/providers/Microsoft.Network/{type}/..."""
        rtype, names, lnames = lafter[0], after[1:], lafter[1:]
        if rtype == "virtualnetworks":
            return self._vnets(req.method, rg, names, lnames, req)
        if rtype == "applicationgateways":
            return self._gateways(req, rg, names, lnames, api)
        if rtype == "publicipaddresses":
            return self._public_ips(req.method, rg, names)
        raise ArmError(404, "InvalidResourceType",
                       f"The resource type '{after[0]}' could not be found in the namespace 'Microsoft.Network' for api version '{api}'.")

    def _public_ips(self, m: str, rg: str, names: list[str]) -> Response:
        if len(names) > 1:
            raise ArmError(404, "InvalidResourceType", "The resource type could not be found.")
        if m != "GET":
            raise self._method(m)
        st = self.state
        return _json(200, st.get_public_ip(rg, names[0]) if names else {"value": st.list_public_ips(rg)})

    # -- Microsoft.DBforMySQL -----------------------------------------------------------------------------
    def _mysql_subscription(self, req: Request, tail: list[str], ltail: list[str], api: str) -> Response:
        """/subscriptions/{s}/providers/Microsoft.DBforMySQL/locations/{loc}/(azureAsyncOperation|operationResults)/{id}"""
        if len(ltail) == 4 and ltail[0] == "locations" and ltail[2] in ("azureasyncoperation", "operationresults"):
            return self._operation(tail[3], ltail[2] == "azureasyncoperation", api)
        raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(tail)}' could not be found.")

    def _mysql(self, req: Request, rg: str, after: list[str], lafter: list[str], api: str) -> Response:
        """.../resourceGroups/{rg}/providers/Microsoft.DBforMySQL/flexibleServers/{s}[/firewallRules[/{r}]]"""
        op: Operation | None
        st, m = self.state, req.method
        if lafter == ["flexibleservers"] and m == "GET":
            return _json(200, {"value": st.list_mysql_flexible_servers(rg)})
        if len(lafter) < 2 or lafter[0] != "flexibleservers" or (len(lafter) > 2 and lafter[2] != "firewallrules") \
                or len(lafter) > 4:
            raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(after)}' could not be found.")
        server = after[1]
        if len(lafter) == 2:
            if m != "GET":
                raise self._method(m)
            return _json(200, st.get_mysql_flexible_server(rg, server))
        if len(lafter) == 3:
            if m != "GET":
                raise self._method(m)
            return _json(200, {"value": st.list_firewall_rules(rg, server)})
        rule = after[3]
        if m == "GET":
            return _json(200, st.get_firewall_rule(rg, server, rule))
        if m == "PUT":
            try:
                body = json.loads(req.body or b"{}")
            except json.JSONDecodeError as e:
                raise ArmError(400, "InvalidRequestFormat", f"Cannot parse the request: {e.msg}.") from None
            op = st.put_firewall_rule(rg, server, rule, body)
        elif m == "DELETE":
            op = st.delete_firewall_rule(rg, server, rule)
            if op is None:
                return _json(204, None)
        else:
            raise self._method(m)
        # As Microsoft.DBforMySQL answers: 202 Accepted, the status in Azure-AsyncOperation and the
        # result at Location (the SDK's LRO option final-state-via: location).
        return _json(202, None, [
            ("Azure-AsyncOperation", self._op_url(op, api)),
            ("Location", self._op_url(op, api, result=True)), ("Retry-After", RETRY_AFTER),
        ])

    # -- Microsoft.Storage --------------------------------------------------------------------------------
    def _storage_provider(self, req: Request, rg: str, after: list[str], lafter: list[str], api: str) -> Response:
        """.../resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/..."""
        if len(lafter) >= 2 and lafter[0] == "storageaccounts":
            return self._storage(req, rg, after[1:], lafter[1:])
        raise ArmError(404, "InvalidResourceType", f"The resource type '{'/'.join(after)}' could not be found.")

    def _clusters_provider(self, namespace: str) -> Callable[[Request, str, list[str], list[str], str], Response]:
        """.../resourceGroups/{rg}/providers/Microsoft.ContainerService|Microsoft.Authorization/... (managed_clusters.py)"""
        def handle(req: Request, rg: str, after: list[str], lafter: list[str], api: str) -> Response:
            found = self.state.get_resource_group(rg)
            if found is None:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            return _json(*self.clusters.handle(req.method, found["name"], namespace, after))

        return handle

    def _method(self, m: str) -> ArmError:
        return ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{m}'.")

    def _storage(self, req: Request, rg: str, names: list[str], lnames: list[str]) -> Response:
        st, m = self.state, req.method
        if len(names) == 1:
            if m != "GET":
                raise self._method(m)
            return _json(200, st.get_storage_account(rg, names[0]))
        if len(names) == 3 and lnames[1] == "managementpolicies":
            if lnames[2] != "default":  # Azure has exactly one policy per account, named default
                raise ArmError(400, "InvalidManagementPolicyName", "The management policy name must be 'default'.")
            if m == "GET":
                return _json(200, st.get_management_policy(rg, names[0]))
            if m == "PUT":
                try:
                    body = json.loads(req.body or b"{}")
                except json.JSONDecodeError as e:
                    raise ArmError(400, "InvalidRequestFormat", f"Cannot parse the request: {e.msg}.") from None
                return _json(200, st.put_management_policy(rg, names[0], body))
            if m == "DELETE":
                return _json(200 if st.delete_management_policy(rg, names[0]) else 204, None)
            raise self._method(m)
        raise ArmError(404, "InvalidResourceType", "The resource type could not be found.")

    def _vnets(self, m: str, rg: str, names: list[str], lnames: list[str], req: Request | None = None) -> Response:
        st = self.state
        if len(names) == 3 and lnames[1] == "subnets" and m in ("PUT", "DELETE"):
            if m == "DELETE":
                return _json(200 if st.delete_subnet(rg, names[0], names[2]) else 204, None)
            try:
                body = json.loads((req.body if req is not None else b"") or b"{}")
            except json.JSONDecodeError as e:
                raise ArmError(400, "InvalidRequestFormat", f"Cannot parse the request: {e.msg}.") from None
            subnet, created = st.put_subnet(rg, names[0], names[2], body)
            return _json(201 if created else 200, subnet)
        if m != "GET":
            raise self._method(m)
        if not names:
            return _json(200, {"value": st.list_virtual_networks(rg)})
        if len(names) == 1:
            return _json(200, st.get_virtual_network(rg, names[0]))
        if lnames[1] == "subnets" and len(names) == 2:
            return _json(200, {"value": st.get_virtual_network(rg, names[0])["properties"]["subnets"]})
        if lnames[1] == "subnets" and len(names) == 3:
            return _json(200, st.get_subnet(rg, names[0], names[2]))
        raise ArmError(404, "InvalidResourceType", "The resource type could not be found.")

    def _gateways(self, req: Request, rg: str, names: list[str], lnames: list[str], api: str) -> Response:
        op: Operation | None
        st, m = self.state, req.method
        if not names:
            if m == "GET":
                return _json(200, {"value": st.list_app_gateways(rg)})
            raise self._method(m)
        name = names[0]
        if len(names) == 2 and lnames[1] == "backendhealth":
            if m != "POST":
                raise self._method(m)
            op = st.start_backend_health(rg, name)
            return _json(202, None, [("Location", self._op_url(op, api, result=True)), ("Retry-After", RETRY_AFTER)])
        if len(names) != 1:
            raise ArmError(404, "InvalidResourceType", "The resource type could not be found.")
        if m == "GET":
            return _json(200, st.read_app_gateway(rg, name))
        if m == "PUT":
            try:
                body = json.loads(req.body or b"{}")
            except json.JSONDecodeError as e:
                raise ArmError(400, "InvalidRequestFormat", f"Cannot parse the request: {e.msg}.") from None
            res, op, created = st.put_app_gateway(rg, name, body, if_match=_header(req, "If-Match"))
            headers = [("Retry-After", RETRY_AFTER)]
            if op is not None:
                headers.append(("Azure-AsyncOperation", self._op_url(op, api)))
            return _json(201 if created else 200, res, headers)
        if m == "DELETE":
            op = st.delete_app_gateway(rg, name, immediate=False)
            if op is None:
                return _json(204, None)
            return _json(202, None, [
                ("Azure-AsyncOperation", self._op_url(op, api)),
                ("Location", self._op_url(op, api, result=True)), ("Retry-After", RETRY_AFTER),
            ])
        raise self._method(m)

    def _op_url(self, op: Operation, api: str, result: bool = False) -> str:
        path = self.state.operation_result_path(op) if result else self.state.async_operation_path(op)
        return f"{self.url}{path}?api-version={api}"

    def _operation(self, op_id: str, status_resource: bool, api: str) -> Response:
        op = self.state.get_operation(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
        if status_resource:  # Azure-AsyncOperation: the operation resource
            status = op.status if op.done else "InProgress"
            body: dict[str, Any] = {"id": self.state.async_operation_path(op), "name": op.id, "status": status}
            if op.error is not None:
                body["error"] = {"code": op.error.code, "message": op.error.message}
            # Without Retry-After here azure-core polls at its 30 s default, not the initial response's.
            return _json(200, body, [] if op.done else [("Retry-After", RETRY_AFTER)])
        if not op.done:  # Location: 202 until done, then the result
            return _json(202, None, [("Location", self._op_url(op, api, result=True)), ("Retry-After", RETRY_AFTER)])
        if op.error is not None:
            return _json(op.error.status, op.error.body())
        if op.result is not None:  # backend health, or the resource a PUT made (final-state-via: location)
            return _json(200, op.result)
        return _json(204, None)
