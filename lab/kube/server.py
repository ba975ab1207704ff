"""The lab AKS's API server: HTTPS + bearer token in front of the store (state.py) and controllers.

Serves what the official Python client and kubectl 1.32 use: discovery (/version, /api, /apis,
/api/v1, /apis/apps/v1 — legacy discovery; kubectl falls back to it when the reply is plain JSON),
CRUD with the real status codes and Status bodies, PATCH in all four content types, list with
label/field selectors, `watch=true` as a chunked NDJSON stream, server-side Tables for `kubectl get`,
and deployments' /status and /scale subresources. OpenAPI is not served (404), which is why kubectl
needs `--validate=false`.
"""
from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme
import yaml

from lab import fault_shapes
from lab.events import EventLog
from lab.faults import Faults, drop, hold
from lab.kube.controller import ContainerRunner, Controller
from lab.kube.errors import ApiError, bad_request
from lab.kube.network import ClusterNetwork
from lab.kube.patches import PATCH_TYPES, json_patch, merge_patch, strategic_merge
from lab.kube.protobuf import PROTOBUF, decode_protobuf
from lab.kube.resources import RESOURCES, Resource
from lab.kube.state import Store
from lab.kube.tables import TABLES, selector_text
from lab.kube.tables import table as make_table
from lab.ports import free_port

KUBE_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.6", "gitCommit": "7b0ab2e4b6b4d0a4a4d3f6b3c1c0ef5c1f1e2b1a",
    "gitTreeState": "clean", "buildDate": "2025-06-17T18:36:20Z", "goVersion": "go1.23.10", "compiler": "gc",
    "platform": "linux/amd64",
}
WATCH_DEFAULT_TIMEOUT = 1800.0
_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>apps)/(?P<gv>v1))"
                   r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


def _group_resources(group: str) -> list[Resource]:
    return [r for r in RESOURCES.values() if r.group == group]


def _discovery(group: str) -> dict[str, Any]:
    out = []
    for r in _group_resources(group):
        d: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                             "verbs": sorted(r.verbs)}
        if r.short_names:
            d["shortNames"] = list(r.short_names)
        if r.categories:
            d["categories"] = list(r.categories)
        out.append(d)
        if r.plural in ("namespaces", "pods", "services", "deployments"):
            out.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": ["get", "patch", "update"] if r.plural == "deployments" else ["get"]})
        if r.plural == "deployments":
            out.append({"name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
                        "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1" if group else "v1", "resources": out}


# -- HTTP -------------------------------------------------------------------------------------------


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type, ctx: ssl.SSLContext) -> None:
        super().__init__(addr, handler)
        self.ctx = ctx
        self.conns: set[ssl.SSLSocket] = set()
        self.conns_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's thread, so a slow client cannot stall accept().
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self.conns_lock:
            self.conns.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.conns_lock:
                self.conns.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def drop_connections(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "lab-kube-apiserver"
    timeout = 300  # idle keep-alive connections
    api: KubeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # A plain read (no watch): (its call key, the read with its query); its answer may be replaced by a stale one.
    _read_key: tuple[str, str] | None = None

    # -- plumbing --------------------------------------------------------------------------------------
    def _send_json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        if self._read_key is not None:
            stale = self.api.faults.read("kube", self._read_key[0], code, [], data, memo=self._read_key[1])
            if stale is not None:
                code, data = stale.status, stale.body
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.api.token.encode())

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        try:
            if ctype == PROTOBUF:
                return decode_protobuf(raw)
            if ctype.endswith("yaml"):
                return yaml.safe_load(raw)
            if ctype == "application/json" or ctype.endswith("+json"):
                return json.loads(raw)
        except (ValueError, IndexError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise bad_request(f"the body of the request could not be decoded: {e}") from None
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media "
                       "types include: application/json, application/yaml, application/vnd.kubernetes.protobuf")

    def _handle(self, method: str) -> None:
        self._read_key = None
        try:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = self._body()
            if url.path in ("/healthz", "/livez", "/readyz"):
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if not self._authorized():
                raise ApiError(401, "Unauthorized", "Unauthorized")
            watching = query.get("watch") in ("true", "1")
            key = f"{method} {url.path}" + ("?watch" if watching else "")
            # API Priority and Fairness admits (or rejects, 429) a request after authentication.
            rule = self.api.faults.take("kube", key)
            if rule is not None:
                return self._fault(rule)
            self._read_key = (key, f"{key}?{url.query}") if method == "GET" and not watching else None
            self._route(method, url.path.rstrip("/") or "/", query, body)
        except ApiError as e:
            self._send_json(e.code, e.status())
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 — an emulator bug must look like a 500 from the API server, not a hang
            self._send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {type(e).__name__}: {e}").status())

    def _fault(self, rule: Any) -> None:
        faults = self.api.faults
        if rule.kind == "hang":
            hold(self.connection, faults.hang_seconds(rule))
            drop(self.connection)
            self.close_connection = True
            return
        status, headers, data = fault_shapes.kube(rule.kind, faults.retry_after(rule), rule.status)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # -- routing -----------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, q: dict[str, str], body: Any) -> None:
        static = {
            "/version": KUBE_VERSION,
            "/api": {"kind": "APIVersions", "versions": ["v1"],
                     "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.api.port}"}]},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]},
            "/apis/apps": {"kind": "APIGroup", "apiVersion": "v1", "name": "apps",
                           "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                           "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
            "/api/v1": _discovery(""),
            "/apis/apps/v1": _discovery("apps"),
        }
        if path in static:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            return self._send_json(200, static[path])
        m = _PATH.match(path)
        if not m:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group = m.group("group") or ""
        ns, plural, name, sub = m.group("ns"), m.group("res"), m.group("name"), m.group("sub")
        if ns is not None and name is None and plural in ("status", "finalize") and not group:
            ns, plural, name, sub = None, "namespaces", ns, plural  # /api/v1/namespaces/{name}/status
        res = RESOURCES.get(plural)
        if res is None or res.group != group:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and ns is None and (name is not None or method != "GET"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not res.namespaced and ns is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        store = self.api.state
        ns_ = ns or ""
        dry = q.get("dryRun") == "All"
        if name is None:
            if method == "GET":
                if q.get("watch") in ("true", "1"):
                    return self._watch(res, ns, q)
                items, rv = store.list(plural, ns, q.get("labelSelector"), q.get("fieldSelector"))
                return self._send_list(res, items, rv, q)
            if method == "POST":
                return self._send_json(201, store.create(plural, ns_, body, dry_run=dry))
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection of {res.qualified} in this lab")
        if sub is not None:
            return self._subresource(method, res, ns_, name, sub, q, body, dry)
        if method == "GET":
            return self._send_json(200, store.get(plural, ns_, name))
        if method == "PUT":
            return self._send_json(200, store.replace(plural, ns_, name, body, dry_run=dry))
        if method == "PATCH":
            obj, created = store.patch(plural, ns_, name, self.headers.get("Content-Type", ""), body,
                                       field_manager=q.get("fieldManager"), dry_run=dry)
            return self._send_json(201 if created else 200, obj)
        if method == "DELETE":
            options = dict(body) if isinstance(body, dict) else {}
            if "gracePeriodSeconds" in q:
                options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            if "propagationPolicy" in q:
                options["propagationPolicy"] = q["propagationPolicy"]
            dry = dry or "All" in (options.get("dryRun") or [])
            return self._send_json(200, store.delete(plural, ns_, name, options, dry_run=dry))
        raise ApiError(405, "MethodNotAllowed", "method not allowed")

    def _send_list(self, res: Resource, items: list[dict[str, Any]], rv: str, q: dict[str, str]) -> None:
        start = 0
        if q.get("continue"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(q["continue"]))["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result.") from None
        limit = int(q.get("limit") or 0)
        page = items[start:start + limit] if limit > 0 else items[start:]
        meta: dict[str, Any] = {"resourceVersion": rv}
        if limit > 0 and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        accept = self.headers.get("Accept", "")
        if "as=Table" in accept and res.plural in TABLES:
            table = make_table(res.plural, page, rv, q.get("includeObject", "Metadata"))
            table["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return self._send_json(200, table)
        for o in page:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        self._send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": page})

    def _watch(self, res: Resource, ns: str | None, q: dict[str, str]) -> None:
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else WATCH_DEFAULT_TIMEOUT
        events = self.api.state.watch(res.plural, ns, q.get("resourceVersion"), q.get("labelSelector"),
                                      q.get("fieldSelector"), timeout, stop=self.api.closing)
        # Headers go out at once: clients wait for them before they start reading events.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.flush()
            for ev in events:
                if ev is None:
                    if self._client_gone():
                        self.close_connection = True
                        return
                    continue
                self._chunk(json.dumps(ev, separators=(",", ":")).encode() + b"\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            events.close()

    def _client_gone(self) -> bool:
        """A watching client sends nothing; a readable socket means it closed (or gave up)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _subresource(self, method: str, res: Resource, ns: str, name: str, sub: str, q: dict[str, str], body: Any, dry: bool) -> None:
        store = self.api.state
        if sub == "status" and res.plural in ("deployments", "namespaces", "pods", "services"):
            if method == "GET":
                return self._send_json(200, store.get(res.plural, ns, name))
            if res.plural == "deployments" and method == "PUT":
                return self._send_json(200, store.replace(res.plural, ns, name, body, subresource="status", dry_run=dry))
            if res.plural == "deployments" and method == "PATCH":
                obj, _ = store.patch(res.plural, ns, name, self.headers.get("Content-Type", ""), body, subresource="status",
                                     field_manager=q.get("fieldManager"), dry_run=dry)
                return self._send_json(200, obj)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {res.plural}/status in this lab")
        if sub == "scale" and res.plural == "deployments":
            current = _scale(store.get("deployments", ns, name))
            if method == "GET":
                return self._send_json(200, current)
            if method == "PUT":
                new = body
            elif method == "PATCH":
                ptype = PATCH_TYPES.get((self.headers.get("Content-Type") or "").split(";")[0].strip())
                new = json_patch(current, body) if ptype == "json" else merge_patch(current, body) if ptype == "merge" \
                    else strategic_merge(current, body)
            else:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on deployments/scale")
            if not isinstance(new, dict) or not isinstance((new.get("spec") or {}).get("replicas"), int):
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Required value')
            patch: dict[str, Any] = {"spec": {"replicas": new["spec"]["replicas"]}}
            rv = (new.get("metadata") or {}).get("resourceVersion")
            if method == "PUT" and rv:
                patch["metadata"] = {"resourceVersion": rv}
            obj, _ = store.patch("deployments", ns, name, "application/merge-patch+json", patch, dry_run=dry)
            return self._send_json(200, _scale(obj))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")


def _scale(d: dict[str, Any]) -> dict[str, Any]:
    m = d["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m},
        "spec": {"replicas": d["spec"].get("replicas", 1)},
        "status": {"replicas": (d.get("status") or {}).get("replicas", 0), "selector": selector_text(d["spec"].get("selector"))},
    }


# -- the server --------------------------------------------------------------------------------------


class KubeApiServer:
    """The lab's AKS API endpoint: state + controllers + HTTPS, with a kubeconfig to reach it."""

    def __init__(self, workdir: Path, runner: ContainerRunner, time_scale: float = 1.0, events: EventLog | None = None,
                 cluster_name: str = "aks-dr-blue", network: ClusterNetwork | None = None,
                 faults: Faults | None = None) -> None:
        self.workdir = Path(workdir)
        self.faults = faults or Faults(time_scale, events)  # lab.faults: answers chosen for chosen calls
        self.dir = self.workdir / "kube" / cluster_name
        self.cluster_name = cluster_name
        self.time_scale = time_scale
        self.events = events
        # Fresh per cluster, as AKS makes a new cluster CA and new credentials for every cluster it
        # creates: a kubeconfig of an earlier cluster of the same name is refused (TLS, then 401).
        self.token = secrets.token_urlsafe(32)
        self.ca_pem = b""
        self.state = Store(cluster_name, network=network)
        self.controller = Controller(self.state, runner, time_scale, events)
        self.ca_path = self.dir / "ca.pem"
        self.kubeconfig_path = self.dir / "kubeconfig"
        self.port = 0
        self.url = ""
        self.closing = threading.Event()
        self._httpd: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def __repr__(self) -> str:
        # No token: reprs end up in pytest and Allure step parameters.
        return f"KubeApiServer(cluster={self.cluster_name!r}, url={self.url!r})"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])  # no h2: kubectl then speaks HTTP/1.1, which this server does
        ca.cert_pem.write_to_path(str(self.ca_path))
        self.ca_pem = ca.cert_pem.bytes()
        handler = type("KubeHandler", (_Handler,), {"api": self})
        last: OSError | None = None
        for _ in range(5):
            port = free_port()
            try:
                self._httpd = _TLSServer(("127.0.0.1", port), handler, ctx)
                break
            except OSError as e:  # the port was taken between free_port() and bind()
                last = e
        if self._httpd is None:
            raise RuntimeError(f"kube API server could not bind a port: {last}")
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"kube-apiserver:{self.port}", daemon=True)
        self._thread.start()
        self._write_kubeconfig()
        self.controller.start()
        if self.events is not None:
            self.events.record("kube", "api server started", cluster=self.cluster_name, url=self.url)

    def _write_kubeconfig(self) -> None:
        user = f"clusterUser_{self.cluster_name}"
        cfg = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": self.cluster_name, "cluster": {"server": self.url, "certificate-authority": str(self.ca_path)}}],
            "users": [{"name": user, "user": {"token": self.token}}],
            "contexts": [{"name": self.cluster_name, "context": {"cluster": self.cluster_name, "user": user}}],
            "current-context": self.cluster_name,
        }
        fd = os.open(self.kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        os.chmod(self.kubeconfig_path, 0o600)

    def stop(self) -> None:
        """Stop serving and stop every pod process. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.closing.set()
        self.state.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.drop_connections()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.controller.stop()
        if self.events is not None:
            self.events.record("kube", "api server stopped", cluster=self.cluster_name)

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_kubeconfig(self, user: str | None = None) -> str:
        """A self-contained kubeconfig (CA and token inline), shaped as AKS's listClusterUserCredential
        returns it: what the lab's ARM hands out for this cluster."""
        user = user or f"clusterUser_{self.cluster_name}"
        cfg = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": self.cluster_name, "cluster": {
                "certificate-authority-data": base64.b64encode(self.ca_pem).decode(), "server": self.url}}],
            "contexts": [{"name": self.cluster_name, "context": {"cluster": self.cluster_name, "user": user}}],
            "current-context": self.cluster_name,
            "users": [{"name": user, "user": {"token": self.token}}],
        }
        return yaml.safe_dump(cfg, sort_keys=False)

    # Data-plane lookups: in-cluster (a ClusterIP, through kube-proxy) and from the VNet (the lab's App Gateway).
    def service_endpoints(self, cluster_ip: str, port: int) -> list[tuple[str, int]]:
        return self.controller.service_endpoints(cluster_ip, port)

    def vnet_endpoints(self, address: str, port: int) -> list[tuple[str, int]] | None:
        return self.controller.vnet_endpoints(address, port)

    def namespace_exists(self, name: str) -> bool:
        return self.controller.namespace_exists(name)


__all__ = ["KUBE_VERSION", "KubeApiServer"]
