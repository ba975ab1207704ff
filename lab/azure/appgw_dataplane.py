"""The data plane of one Application Gateway in the lab: "the gateway's public IP", port 80.

Every request reads the gateway's *active* configuration from the ARM state (the last one that
finished provisioning), so a change made through the SDK takes effect when Azure would apply it.
Per request: listener (frontend port, host names) -> rule (lowest priority; Basic or path-based) ->
backend pool + HTTP settings -> a backend the probes have not marked Down (round robin) -> its
concrete (host, port) via `resolve(address, port)` (the lab maps the Blob FQDN to its static-website
server and, in the VNet, an AKS internal load balancer IP to its pods' ports — never a ClusterIP —
see lab/azure/gateway_network.py; an address that resolves to nothing is Down).
Response headers are rewritten by the rule's rewrite rule set (e.g. `X-Served-By: azure`); the
gateway's own 502 page is not (it never passed through a backend).

Probes behave as documented (shared/notes/real-mechanisms.md): per (pool, settings, address), the
custom probe of the settings or the default probe (GET / on the settings' protocol and port,
interval 30 s, timeout 30 s, unhealthy threshold 3); 200-399 (or the probe's match) is healthy; a
server is Down after `unhealthyThreshold` consecutive failures and Up again after one success.
Durations are divided by `time_scale`. A new or changed backend starts `Unknown` and is probed at
once; it receives traffic until the probes mark it Down, as App Gateway does.

TLS to backends is not modeled: `Https` settings/probes talk plain HTTP to what `resolve` returns
(the lab's backends are plain HTTP servers standing in for the real HTTPS endpoints).
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.events import EventLog
from lab.httpfwd import Request, Response, Server, UpstreamError, forward
from lab.ports import free_port

Resolver = Callable[[str, int], list[tuple[str, int]]]

PAGE_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
PAGE_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
GATEWAY_HEADERS = [("Server", "Microsoft-Azure-Application-Gateway/v2"), ("Content-Type", "text/html")]
DEFAULT_PROBE = {"path": "/", "interval": 30, "timeout": 30, "unhealthyThreshold": 3}
DEFAULT_REQUEST_TIMEOUT = 20  # ARM's default requestTimeout for backend HTTP settings
MIN_INTERVAL, MIN_TIMEOUT = 0.02, 0.2  # floors so an extreme time scale cannot starve the machine


@dataclass(frozen=True)
class _Probe:
    protocol: str
    path: str
    host: str | None
    pick_host_from_settings: bool
    port: int | None
    interval: float
    timeout: float
    threshold: int
    match: tuple[tuple[int, int], ...]
    custom: bool


@dataclass(frozen=True)
class _Settings:
    id: str
    name: str
    port: int
    protocol: str
    host_name: str | None
    pick_host_from_backend: bool
    request_timeout: float
    path: str | None
    probe: _Probe


@dataclass(frozen=True)
class _Target:
    """One server of one pool under one HTTP settings: the unit App Gateway probes."""

    pool_id: str
    pool: str
    settings: _Settings
    address: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.pool_id.lower(), self.settings.id.lower(), self.address.lower()

    def request_host(self, original: str | None) -> str | None:
        if self.settings.host_name:
            return self.settings.host_name
        if self.settings.pick_host_from_backend:
            return self.address
        return original

    def probe_host(self) -> str:
        p = self.probe
        if p.host:
            return p.host
        if p.pick_host_from_settings or not p.custom:
            return self.request_host(None) or "127.0.0.1"
        return "127.0.0.1"  # App Gateway's default for a probe without host

    @property
    def probe(self) -> _Probe:
        return self.settings.probe

    @property
    def probe_port(self) -> int:
        return self.probe.port or self.settings.port


@dataclass
class _Route:
    listener: str
    host_names: tuple[str, ...]
    priority: int
    rule: str
    pool_id: str | None
    settings_id: str | None
    rewrite: tuple[dict[str, Any], ...]
    path_rules: tuple[tuple[tuple[str, ...], str | None, str | None, tuple[dict[str, Any], ...]], ...]
    redirect: dict[str, Any] | None


@dataclass
class _Config:
    etag: str
    routes: list[_Route]
    pools: dict[str, tuple[str, list[str], str]]  # lower id -> (name, addresses, id)
    settings: dict[str, _Settings]
    targets: dict[tuple[str, str, str], _Target]
    pool_order: list[str]


@dataclass
class _Health:
    target: _Target
    status: str = "Unknown"  # Unknown | Up | Down
    failures: int = 0
    log: str = "Probe not yet sent."
    next_due: float = 0.0
    in_flight: bool = False


def _ranges(match: dict[str, Any] | None) -> tuple[tuple[int, int], ...]:
    out = []
    for code in (match or {}).get("statusCodes") or ["200-399"]:
        lo, _, hi = str(code).partition("-")
        out.append((int(lo), int(hi or lo)))
    return tuple(out)


def _id(ref: Any) -> str | None:
    return ref.get("id") if isinstance(ref, dict) else None


def _parse(gw: dict[str, Any], time_scale: float, listen_port: int) -> _Config:
    props = gw["properties"]
    by_id = lambda coll: {c["id"].lower(): c for c in props.get(coll) or []}  # noqa: E731
    probes, ports, listeners = by_id("probes"), by_id("frontendPorts"), by_id("httpListeners")
    rewrites, path_maps, redirects = by_id("rewriteRuleSets"), by_id("urlPathMaps"), by_id("redirectConfigurations")

    def probe_of(sp: dict[str, Any]) -> _Probe:
        ref = _id(sp.get("probe"))
        custom = probes.get(ref.lower()) if ref else None
        pp = (custom or {}).get("properties") or {}
        merged = {**DEFAULT_PROBE, **{k: v for k, v in pp.items() if v is not None}}
        return _Probe(
            protocol=str(pp.get("protocol") or sp.get("protocol") or "Http"),
            path=str(merged["path"] or "/"),
            host=pp.get("host") or None,
            pick_host_from_settings=bool(pp.get("pickHostNameFromBackendHttpSettings")),
            port=pp.get("port"),
            interval=max(MIN_INTERVAL, float(merged["interval"]) / time_scale),
            timeout=max(MIN_TIMEOUT, float(merged["timeout"]) / time_scale),
            threshold=max(1, int(merged["unhealthyThreshold"])),
            match=_ranges(pp.get("match")),
            custom=custom is not None,
        )

    settings: dict[str, _Settings] = {}
    for s in props.get("backendHttpSettingsCollection") or []:
        sp = s["properties"]
        settings[s["id"].lower()] = _Settings(
            id=s["id"], name=s["name"], port=int(sp.get("port") or 80), protocol=str(sp.get("protocol") or "Http"),
            host_name=sp.get("hostName") or None, pick_host_from_backend=bool(sp.get("pickHostNameFromBackendAddress")),
            request_timeout=float(sp.get("requestTimeout") or DEFAULT_REQUEST_TIMEOUT), path=sp.get("path") or None,
            probe=probe_of(sp),
        )
    pools: dict[str, tuple[str, list[str], str]] = {}
    for p in props.get("backendAddressPools") or []:
        addrs = [a.get("ipAddress") or a.get("fqdn") for a in (p["properties"].get("backendAddresses") or [])]
        pools[p["id"].lower()] = (p["name"], [a for a in addrs if a], p["id"])

    def rules_of(ref: str | None) -> tuple[dict[str, Any], ...]:
        rs = rewrites.get(ref.lower()) if ref else None
        rules = (rs or {}).get("properties", {}).get("rewriteRules") or []
        return tuple(sorted(rules, key=lambda r: r.get("ruleSequence") or 100))

    routes: list[_Route] = []
    for r in props.get("requestRoutingRules") or []:
        rp = r["properties"]
        lst = listeners.get((_id(rp.get("httpListener")) or "").lower())
        if lst is None:
            continue
        lp = lst["properties"]
        port = ports.get((_id(lp.get("frontendPort")) or "").lower())
        if port is None or int(port["properties"].get("port") or 0) != listen_port or str(lp.get("protocol")) != "Http":
            continue  # the data plane models the public IP's plain-HTTP port only
        hosts = tuple(h.lower() for h in (lp.get("hostNames") or ([lp["hostName"]] if lp.get("hostName") else [])))
        pool_id, settings_id = _id(rp.get("backendAddressPool")), _id(rp.get("backendHttpSettings"))
        path_rules: list[tuple[tuple[str, ...], str | None, str | None, tuple[dict[str, Any], ...]]] = []
        pm = path_maps.get((_id(rp.get("urlPathMap")) or "").lower())
        rewrite = rules_of(_id(rp.get("rewriteRuleSet")))
        if pm is not None:
            mp = pm["properties"]
            pool_id, settings_id = _id(mp.get("defaultBackendAddressPool")), _id(mp.get("defaultBackendHttpSettings"))
            rewrite = rules_of(_id(mp.get("defaultRewriteRuleSet"))) or rewrite
            for pr in mp.get("pathRules") or []:
                prp = pr.get("properties") or {}
                path_rules.append((
                    tuple(prp.get("paths") or []), _id(prp.get("backendAddressPool")),
                    _id(prp.get("backendHttpSettings")), rules_of(_id(prp.get("rewriteRuleSet"))),
                ))
        redirect = redirects.get((_id(rp.get("redirectConfiguration")) or "").lower())
        routes.append(_Route(
            lst["name"], hosts, int(rp.get("priority") or 20000), r["name"],
            pool_id.lower() if pool_id else None, settings_id.lower() if settings_id else None,
            rewrite, tuple(path_rules), (redirect or {}).get("properties"),
        ))
    routes.sort(key=lambda rt: (not rt.host_names, rt.priority))  # multi-site listeners before basic ones

    targets: dict[tuple[str, str, str], _Target] = {}

    def add(pool_id: str | None, settings_id: str | None) -> None:
        if not pool_id or not settings_id or pool_id.lower() not in pools or settings_id.lower() not in settings:
            return
        name, addrs, _ = pools[pool_id.lower()]
        for a in addrs:
            t = _Target(pool_id, name, settings[settings_id.lower()], a)
            targets[t.key] = t

    for rt in routes:
        add(rt.pool_id, rt.settings_id)
        for _, pid, sid, _ in rt.path_rules:
            add(pid or rt.pool_id, sid or rt.settings_id)
    return _Config(gw["etag"], routes, pools, settings, targets, list(pools))


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    host = host.split(":", 1)[0].lower()
    return any(re.fullmatch(re.escape(p).replace(r"\*", ".*").replace(r"\?", "."), host) for p in patterns)


def _path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in patterns)


class AppGatewayDataPlane:
    """An HTTP server on a free port serving one gateway's active configuration, with its probes."""

    def __init__(
        self,
        state: Any,
        resource_group: str,
        name: str,
        resolve: Resolver,
        time_scale: float = 1.0,
        events: EventLog | None = None,
        *,
        port: int | None = None,
        listen_port: int = 80,
        tick: float = 0.02,
    ) -> None:
        self.state = state  # lab.azure.arm_state.ArmState (needs active_app_gateway + register_backend_health)
        self.resource_group, self.name = resource_group, name
        self.resolve = resolve
        self.time_scale = time_scale
        self.events = events
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.listen_port = listen_port
        self.tick = tick
        self._lock = threading.RLock()
        self._health: dict[tuple[str, str, str], _Health] = {}
        self._cache: tuple[str, _Config] | None = None
        # Separate round-robin counters: sharing one would lock requests onto a subset of backends.
        self._rr_backend, self._rr_endpoint, self._rr_probe = itertools.count(), itertools.count(), itertools.count()
        self._stop = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._pools_seen: dict[str, list[str]] | None = None
        self._failing = False  # serving 502s now (for the "first 502" event)

    def __repr__(self) -> str:
        return f"AppGatewayDataPlane({self.resource_group}/{self.name}, url={self.url!r})"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> AppGatewayDataPlane:
        self.state.register_backend_health(self.resource_group, self.name, self.backend_health)
        server = Server(self.port, self.handle)
        # The stdlib handler adds `Server: BaseHTTP/... Python/...` to every response; App Gateway
        # passes the backend's Server header through and names itself only on its own pages.
        server.httpd.RequestHandlerClass.send_response = _send_response_without_server  # type: ignore[attr-defined]
        self._server = server.start()
        self._thread = threading.Thread(target=self._probe_loop, name=f"appgw-probes:{self.name}", daemon=True)
        self._thread.start()
        self._record("started", url=self.url)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.state.unregister_backend_health(self.resource_group, self.name)

    def _record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("appgw", event, gateway=self.name, **detail)

    # -- configuration ---------------------------------------------------------------------------
    def _config(self) -> _Config | None:
        gw = self.state.active_app_gateway(self.resource_group, self.name)
        if gw is None or gw["properties"].get("operationalState") != "Running":
            return None
        cached = self._cache
        if cached is not None and cached[0] == gw["etag"]:
            return cached[1]
        cfg = _parse(gw, self.time_scale, self.listen_port)
        self._cache = (gw["etag"], cfg)
        self._sync(cfg)  # at once, not at the probe loop's next tick: new servers must be routable (Unknown) now
        return cfg

    def _sync(self, cfg: _Config | None) -> None:
        """Align probe state with the configuration: new/changed servers start Unknown, probed at once."""
        targets = cfg.targets if cfg is not None else {}
        changed = []
        with self._lock:
            for key in list(self._health):
                if key not in targets:
                    del self._health[key]
            for key, t in targets.items():
                h = self._health.get(key)
                if h is None or h.target != t:
                    self._health[key] = _Health(t, next_due=time.monotonic())
            pools = {name: addrs for name, addrs, _ in (cfg.pools.values() if cfg else [])}
            if self._pools_seen is not None and pools != self._pools_seen:
                changed = [(n, self._pools_seen.get(n), pools.get(n)) for n in sorted(set(pools) | set(self._pools_seen))
                           if pools.get(n) != self._pools_seen.get(n)]
            self._pools_seen = pools
        for name, before, after in changed:
            self._record("pool changed", pool=name, before=before, after=after)

    # -- probes ------------------------------------------------------------------------------------
    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync(self._config())
                now = time.monotonic()
                with self._lock:
                    due = [h for h in self._health.values() if not h.in_flight and h.next_due <= now]
                    for h in due:
                        h.in_flight = True
                for h in due:
                    threading.Thread(target=self._probe, args=(h.target,), daemon=True,
                                     name=f"appgw-probe:{h.target.address}").start()
            except Exception as e:  # noqa: BLE001 — a probe-loop bug must be visible, not silently stop all probing
                self._record("probe loop error", error=repr(e))
            self._stop.wait(self.tick)

    def _probe_once(self, t: _Target) -> tuple[bool, str, bool]:
        """(healthy, probe log, definitive) — an unresolvable server is Down at once."""
        p = t.probe
        try:
            resolved = self.resolve(t.address, t.probe_port)
        except Exception as e:  # noqa: BLE001 — the resolver is pluggable (the lab's network model, a test's stub): whatever it raises means unresolvable
            resolved, why = [], repr(e)
        else:
            why = "no endpoint"
        if not resolved:
            return False, (f"Cannot resolve or reach the backend server {t.address}:{t.probe_port} ({why}). "
                           f"Check the backend address and the DNS settings."), True
        host, port = resolved[next(self._rr_probe) % len(resolved)]  # like kube-proxy spreading over endpoints
        try:
            resp = forward(host, port, Request("GET", p.path, {"User-Agent": "ApplicationGatewayProbe/2.0"}, b""),
                           p.timeout, p.timeout, host_header=t.probe_host())
        except UpstreamError as e:
            if e.timed_out:
                return False, ("Time taken by the backend to respond to application gateway's health probe is more "
                               "than the time-out threshold in the probe configuration."), False
            return False, ("Cannot connect to backend server. Check whether any NSG/UDR/Firewall is blocking access "
                           f"to the server. ({e.kind})"), False
        if any(lo <= resp.status <= hi for lo, hi in p.match):
            return True, f"Success. Received {resp.status} status code", False
        codes = ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in p.match)
        return False, (f"Received invalid status code: {resp.status} in the backend server's HTTP response. As per the "
                       f"health probe configuration, {codes} is the acceptable status code."), False

    def _probe(self, t: _Target) -> None:
        started = time.monotonic()
        try:
            ok, log, definitive = self._probe_once(t)
        except Exception as e:  # noqa: BLE001 — a probe thread records any failure as a failed probe; it must never die silently
            ok, log, definitive = False, f"probe error: {e!r}", False
        event = None
        with self._lock:
            h = self._health.get(t.key)
            if h is None or h.target != t:  # configuration changed while probing: result is stale
                return
            before = h.status
            h.log, h.in_flight = log, False
            # Probes go out every interval (from the previous probe's start), never two at once.
            h.next_due = max(started + t.probe.interval, time.monotonic())
            if ok:
                h.failures, h.status = 0, "Up"
            else:
                h.failures += 1
                if definitive or h.failures >= t.probe.threshold:
                    h.status = "Down"
            if h.status != before and h.status in ("Up", "Down"):
                event = "backend healthy" if h.status == "Up" else "backend unhealthy"
        if event:
            self._record(event, pool=t.pool, settings=t.settings.name, address=t.address, log=log)

    def backend_health(self) -> list[dict[str, Any]]:
        """Per-server health in ARM's backendhealth shape (`backendAddressPools` items)."""
        cfg = self._config()
        if cfg is None:
            return []
        self._sync(cfg)
        out = []
        with self._lock:
            for pool_key in cfg.pool_order:
                _, _, pool_id = cfg.pools[pool_key]
                per_settings: dict[str, list[dict[str, Any]]] = {}
                for h in self._health.values():
                    if h.target.pool_id.lower() == pool_key:
                        per_settings.setdefault(h.target.settings.id, []).append(
                            {"address": h.target.address, "health": h.status, "healthProbeLog": h.log})
                out.append({
                    "backendAddressPool": {"id": pool_id},
                    "backendHttpSettingsCollection": [
                        {"backendHttpSettings": {"id": sid}, "servers": servers} for sid, servers in per_settings.items()
                    ],
                })
        return out

    # -- requests ------------------------------------------------------------------------------------
    def _gateway_502(self, reason: str) -> Response:
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            self._record("first 502", reason=reason)
        return Response(502, list(GATEWAY_HEADERS), PAGE_502)

    def handle(self, req: Request) -> Response:
        cfg = self._config()
        if cfg is None:
            return self._gateway_502("gateway not running")
        host = next((v for k, v in req.headers.items() if k.lower() == "host"), "")
        route = next((r for r in cfg.routes if not r.host_names or _host_matches(host, r.host_names)), None)
        if route is None:
            return Response(404, list(GATEWAY_HEADERS), PAGE_404)
        if route.redirect is not None:
            target = route.redirect.get("targetUrl") or "/"
            code = {"Permanent": 301, "Found": 302, "SeeOther": 303, "Temporary": 307}.get(
                str(route.redirect.get("redirectType")), 302)
            return Response(code, [("Location", target)] + list(GATEWAY_HEADERS), b"")
        pool_id, settings_id, rewrite = route.pool_id, route.settings_id, route.rewrite
        path_only = req.path.split("?", 1)[0]
        for paths, pid, sid, rw in route.path_rules:
            if _path_matches(path_only, paths):
                pool_id, settings_id, rewrite = pid or pool_id, sid or settings_id, rw or rewrite
                break
        if not pool_id or not settings_id or pool_id.lower() not in cfg.pools:
            return self._gateway_502("rule has no backend pool")
        settings = cfg.settings.get(settings_id.lower())
        if settings is None:
            return self._gateway_502("rule has no HTTP settings")
        _, addrs, _ = cfg.pools[pool_id.lower()]
        with self._lock:
            live = [cfg.targets[k] for a in addrs
                    if (k := (pool_id.lower(), settings_id.lower(), a.lower())) in cfg.targets
                    and (h := self._health.get(k)) is not None and h.status != "Down"]
        if not live:
            return self._gateway_502("no healthy backend")
        t = live[next(self._rr_backend) % len(live)]
        try:
            resolved = self.resolve(t.address, settings.port)
        except Exception:  # noqa: BLE001 — the resolver is pluggable (the lab's network model, a test's stub): whatever it raises means unresolvable
            resolved = []
        if not resolved:
            return self._gateway_502(f"cannot resolve {t.address}")
        dst_host, dst_port = resolved[next(self._rr_endpoint) % len(resolved)]
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "x-forwarded-for")}
        headers.update({
            "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Port": str(self.listen_port),
            "X-Original-Host": host,
        })
        path = req.path if not settings.path else settings.path.rstrip("/") + req.path
        try:
            resp = forward(dst_host, dst_port, Request(req.method, path, headers, req.body),
                           min(settings.request_timeout, 10.0), settings.request_timeout,
                           host_header=t.request_host(host))
        except UpstreamError as e:
            return self._gateway_502(f"backend {t.address} {e.kind}")
        with self._lock:
            cleared, self._failing = self._failing, False
        if cleared:
            self._record("502 cleared", backend=t.address, status=resp.status)
        resp.headers = _rewrite(resp.headers, rewrite, req, path_only)
        return resp


def _send_response_without_server(self: Any, code: int, message: str | None = None) -> None:
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())


def _condition_holds(cond: dict[str, Any], req: Request, resp_headers: list[tuple[str, str]], path: str) -> bool:
    var = str(cond.get("variable") or "")
    value: str | None
    if var.startswith("http_req_"):
        name = var[len("http_req_"):].lower()
        value = next((v for k, v in req.headers.items() if k.lower() == name), None)
    elif var.startswith("http_resp_"):
        name = var[len("http_resp_"):].lower()
        value = next((v for k, v in resp_headers if k.lower() == name), None)
    elif var == "var_uri_path":
        value = path
    elif var == "var_host":
        value = next((v for k, v in req.headers.items() if k.lower() == "host"), None)
    else:
        value = None
    flags = re.I if cond.get("ignoreCase", True) else 0
    hit = value is not None and re.search(str(cond.get("pattern") or ""), value, flags) is not None
    return hit != bool(cond.get("negate"))


def _rewrite(headers: list[tuple[str, str]], rules: tuple[dict[str, Any], ...], req: Request,
             path: str) -> list[tuple[str, str]]:
    """Apply response-header rewrites: set (replace) a header, or delete it with an empty value."""
    out = list(headers)
    for rule in rules:
        if not all(_condition_holds(c, req, out, path) for c in rule.get("conditions") or []):
            continue
        for hc in (rule.get("actionSet") or {}).get("responseHeaderConfigurations") or []:
            name, value = hc.get("headerName"), hc.get("headerValue")
            if not name:
                continue
            out = [(k, v) for k, v in out if k.lower() != name.lower()]
            if value:
                out.append((name, value))
    return out
