"""The Application Gateway data plane: routing from the ARM state's active configuration to small
local backends through the resolver, the rewrite header, App Gateway's probes (scaled interval,
timeout and unhealthy threshold), its 502 page, and a pool repointed through the real SDK.

Every test builds its own gateway (in-process, from the seed) and data plane, so they are independent.
"""
from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as M

from lab.azure.appgw_dataplane import AppGatewayDataPlane
from lab.azure.arm_server import ArmEmulator
from lab.azure.arm_state import ArmTimings, seed_app_gateway
from lab.events import EventLog
from lab.httpfwd import Request, Response, Server
from lab.ports import free_port

pytestmark = pytest.mark.lab

SCALE = 60.0  # App Gateway's 30 s probe interval plays as 0.5 s
INTERVAL = 30 / SCALE
BLOB = "bloberry01.z12.web.core.windows.net"
CLUSTER_IP = "10.0.0.10"
TIMINGS = ArmTimings(gateway_update_seconds=90)  # 1.5 s at SCALE: long enough to watch the old config serve


class Backend:
    """A tiny HTTP backend whose answer can be changed; remembers what it saw."""

    def __init__(self, name: str) -> None:
        self.name, self.status = name, 200
        self.seen: list[tuple[float, Request, int]] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.server = Server(self.port, self.handle).start()

    def handle(self, req: Request) -> Response:
        status = self.status
        with self._lock:
            self.seen.append((time.monotonic(), req, status))
        return Response(status, [("Content-Type", "text/plain"), ("X-Backend", self.name)], f"backend {self.name}".encode())

    def probes(self) -> list[tuple[float, Request, int]]:
        with self._lock:
            return [s for s in self.seen if s[1].headers.get("User-Agent", "").startswith("ApplicationGatewayProbe")]

    def requests(self) -> list[Request]:
        with self._lock:
            return [s[1] for s in self.seen if not s[1].headers.get("User-Agent", "").startswith("ApplicationGatewayProbe")]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmEmulator]:
    work = tmp_path_factory.mktemp("appgw")
    em = ArmEmulator(work, EventLog(work / "events.jsonl"), time_scale=SCALE, timings=TIMINGS).start()
    em.seed()
    yield em
    em.stop()


@pytest.fixture(scope="module")
def client(emu: ArmEmulator) -> NetworkManagementClient:
    cred = ClientSecretCredential(emu.tenant_id, emu.client_id, emu.client_secret, authority=emu.url,
                                  disable_instance_discovery=True, connection_verify=str(emu.ca_path))
    return NetworkManagementClient(cred, emu.subscription_id, base_url=emu.url, connection_verify=str(emu.ca_path))


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str) -> Backend:
        made.append(Backend(name))
        return made[-1]

    yield make
    for b in made:
        b.server.stop()


Routes = dict[tuple[str, int], list[tuple[str, int]]]


@pytest.fixture
def plane(emu: ArmEmulator) -> Iterator[Callable[[str, dict[str, Any] | None, Routes], AppGatewayDataPlane]]:
    """Create gateway `name` (seed body unless given) and start its data plane with `routes` as the resolver."""
    made: list[AppGatewayDataPlane] = []

    def make(name: str, body: dict[str, Any] | None, routes: Routes) -> AppGatewayDataPlane:
        if body is not None or emu.state.get_app_gateway("rg-blue", name) is None:
            emu.state.create_app_gateway("rg-blue", name, body or seed_app_gateway("rg-blue", name, subscription_id=emu.subscription_id,
                                                                                    served_by="azure"))
        dp = AppGatewayDataPlane(emu.state, "rg-blue", name, lambda a, p: list(routes.get((a.lower(), p), [])),
                                 SCALE, emu.events).start()
        made.append(dp)
        return dp

    yield make
    for dp in made:
        dp.stop()


def gateway_body(emu: ArmEmulator, name: str, addresses: list[str], probe: dict[str, Any] | None = None,
                 settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The seed gateway with an IP pool on Http 80 and a custom probe (overrides applied)."""
    body = copy.deepcopy(seed_app_gateway("rg-blue", name, subscription_id=emu.subscription_id, served_by="azure"))
    p = body["properties"]
    p["backendAddressPools"][0]["properties"]["backendAddresses"] = [{"ipAddress": a} for a in addresses]
    p["backendHttpSettingsCollection"][0]["properties"].update(
        {"port": 80, "protocol": "Http", "pickHostNameFromBackendAddress": False, **(settings or {})})
    p["probes"][0]["properties"].update({"protocol": "Http", "pickHostNameFromBackendHttpSettings": False,
                                        "host": "127.0.0.1", **(probe or {})})
    return body


def wait_for(fn: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s (last: {v!r})")
        time.sleep(interval)


def health(dp: AppGatewayDataPlane) -> dict[str, str]:
    return {s["address"]: s["health"] for p in dp.backend_health()
            for c in p["backendHttpSettingsCollection"] for s in c["servers"]}


def all_up(dp: AppGatewayDataPlane) -> bool:
    h = health(dp)
    return bool(h) and all(v == "Up" for v in h.values())


# -- routing --------------------------------------------------------------------------------------------
def test_seeded_gateway_serves_blob_with_rewrite_header(emu: ArmEmulator, plane: Any, backends: Any) -> None:
    blob = backends("blob")
    body = seed_app_gateway("rg-blue", "appgw-blue", subscription_id=emu.subscription_id, served_by="azure")
    dp = plane("appgw-blue", body, {(BLOB, 443): [("127.0.0.1", blob.port)]})
    wait_for(lambda: all_up(dp), 2, "blob backend Up")
    r = httpx.get(dp.url + "/index.html?x=1", headers={"Host": "blueisthenewblack.store"})
    assert (r.status_code, r.text, r.headers["X-Served-By"]) == (200, "backend blob", "azure")
    seen = blob.requests()[-1]
    assert seen.path == "/index.html?x=1"
    assert seen.headers["Host"] == BLOB  # pickHostNameFromBackendAddress
    assert seen.headers["X-Original-Host"] == "blueisthenewblack.store" and "X-Forwarded-For" in seen.headers
    _, probe, _ = blob.probes()[-1]
    assert (probe.path, probe.headers["Host"]) == ("/", BLOB)  # health-probe: host from the HTTP settings


def test_round_robin_over_healthy_backends(emu: ArmEmulator, plane: Any, backends: Any) -> None:
    a, b = backends("a"), backends("b")
    dp = plane("appgw-rr", gateway_body(emu, "appgw-rr", ["10.1.0.1", "10.1.0.2"]),
               {("10.1.0.1", 80): [("127.0.0.1", a.port)], ("10.1.0.2", 80): [("127.0.0.1", b.port)]})
    wait_for(lambda: all_up(dp), 2, "both Up")
    served = [httpx.get(dp.url + "/").headers["X-Backend"] for _ in range(20)]
    assert served.count("a") == served.count("b") == 10


def test_all_backends_down_gives_502_after_unhealthy_threshold(emu: ArmEmulator, plane: Any, backends: Any) -> None:
    a, b = backends("a"), backends("b")
    dp = plane("appgw-down", gateway_body(emu, "appgw-down", ["10.2.0.1", "10.2.0.2"]),
               {("10.2.0.1", 80): [("127.0.0.1", a.port)], ("10.2.0.2", 80): [("127.0.0.1", b.port)]})
    wait_for(lambda: all_up(dp), 2, "both Up")
    after = time.monotonic()
    a.status = b.status = 503
    t0 = time.monotonic()
    first = httpx.get(dp.url + "/")
    # Until the probes have failed `unhealthyThreshold` (3) times, the backends' own 503 passes through.
    assert (first.status_code, first.headers["X-Served-By"]) == (503, "azure")
    r = wait_for(lambda: (x := httpx.get(dp.url + "/")).status_code == 502 and x, 5, "502")
    took = time.monotonic() - t0
    assert 2 * INTERVAL - 0.1 <= took <= 3 * INTERVAL + 1.0, took
    assert "Microsoft-Azure-Application-Gateway/v2" in r.text and "X-Served-By" not in r.headers
    assert r.headers["Server"] == "Microsoft-Azure-Application-Gateway/v2"
    for be in (a, b):
        assert len([p for p in be.probes() if p[0] >= t0 and p[2] == 503]) >= 3
    assert set(health(dp).values()) == {"Down"}
    names = [e.event for e in emu.events.events(after=after) if e.detail.get("gateway") == "appgw-down"]
    assert names.count("backend unhealthy") == 2 and "first 502" in names
    assert names.index("first 502") > names.index("backend unhealthy")
    # One successful probe brings a server back.
    a.status = b.status = 200
    wait_for(lambda: httpx.get(dp.url + "/").status_code == 200, INTERVAL + 1.0, "served again")
    assert "502 cleared" in [e.event for e in emu.events.events(after=after)]


def test_probe_interval_timeout_and_threshold_are_scaled(emu: ArmEmulator, plane: Any, backends: Any) -> None:
    be = backends("p")
    body = gateway_body(emu, "appgw-probe", ["10.3.0.1"], probe={
        "path": "/healthz", "host": "probe.example", "interval": 30, "timeout": 30, "unhealthyThreshold": 2,
    })
    dp = plane("appgw-probe", body, {("10.3.0.1", 80): [("127.0.0.1", be.port)]})
    wait_for(lambda: all_up(dp), 2, "Up")
    t0 = time.monotonic()
    time.sleep(2.0)
    window = [p for p in be.probes() if p[0] >= t0]
    assert 3 <= len(window) <= 5, len(window)  # 2 s / 0.5 s
    gaps = [y[0] - x[0] for x, y in itertools.pairwise(window)]
    assert all(INTERVAL - 0.05 <= g <= INTERVAL + 0.15 for g in gaps), gaps
    assert {(p[1].path, p[1].headers["Host"]) for p in window} == {("/healthz", "probe.example")}
    be.status = 500
    t1 = time.monotonic()
    wait_for(lambda: health(dp).get("10.3.0.1") == "Down", 3, "Down")
    failing = [p for p in be.probes() if p[0] >= t1 and p[2] == 500]
    assert len(failing) == 2  # exactly unhealthyThreshold failures, not one
    assert time.monotonic() - t1 <= 2 * INTERVAL + 0.3
    [srv] = [s for p in dp.backend_health() for c in p["backendHttpSettingsCollection"] for s in c["servers"]]
    assert "Received invalid status code: 500" in srv["healthProbeLog"]


def test_default_probe_when_settings_have_no_probe(emu: ArmEmulator, plane: Any, backends: Any) -> None:
    be = backends("d")
    body = gateway_body(emu, "appgw-default", ["10.4.0.1"])
    del body["properties"]["backendHttpSettingsCollection"][0]["properties"]["probe"]
    dp = plane("appgw-default", body, {("10.4.0.1", 80): [("127.0.0.1", be.port)]})
    wait_for(lambda: all_up(dp), 2, "Up")
    _, probe, _ = be.probes()[-1]
    assert (probe.method, probe.path, probe.headers["Host"]) == ("GET", "/", "127.0.0.1")


def test_probe_timeout_marks_slow_backend_down(emu: ArmEmulator, plane: Any, backends: Any) -> None:
    slow = Server(free_port(), lambda r: (time.sleep(1.0), Response(200, [], b"late"))[1]).start()  # type: ignore[func-returns-value]  # sleep, then answer
    try:
        body = gateway_body(emu, "appgw-slow", ["10.6.0.1"], probe={"timeout": 15, "unhealthyThreshold": 1})
        dp = plane("appgw-slow", body, {("10.6.0.1", 80): [("127.0.0.1", slow.port)]})  # timeout 0.25 s
        wait_for(lambda: health(dp).get("10.6.0.1") == "Down", 3, "Down")
        [srv] = [s for p in dp.backend_health() for c in p["backendHttpSettingsCollection"] for s in c["servers"]]
        assert "time-out threshold" in srv["healthProbeLog"]
    finally:
        slow.stop()


def test_unresolvable_backend_is_down_at_once(emu: ArmEmulator, plane: Any) -> None:
    dp = plane("appgw-nx", gateway_body(emu, "appgw-nx", ["10.9.9.9"]), {})
    wait_for(lambda: health(dp).get("10.9.9.9") == "Down", 0.5, "Down after the first probe")
    r = httpx.get(dp.url + "/")
    assert r.status_code == 502 and "Application-Gateway" in r.text


# -- configuration changes through ARM ---------------------------------------------------------------------
def test_pool_repointed_through_sdk_traffic_follows(emu: ArmEmulator, client: NetworkManagementClient,
                                                   plane: Any, backends: Any) -> None:
    blob, pod1, pod2 = backends("blob"), backends("pod1"), backends("pod2")
    routes = {(BLOB, 443): [("127.0.0.1", blob.port)],
              (CLUSTER_IP, 80): [("127.0.0.1", pod1.port), ("127.0.0.1", pod2.port)]}  # a Service over 2 pods
    dp = plane("appgw-repoint", None, routes)
    wait_for(lambda: all_up(dp), 2, "blob Up")
    assert httpx.get(dp.url + "/").headers["X-Backend"] == "blob"
    after = time.monotonic()

    gw = client.application_gateways.get("rg-blue", "appgw-repoint")
    gw.backend_address_pools[0].backend_addresses = [M.ApplicationGatewayBackendAddress(ip_address=CLUSTER_IP)]
    hs = gw.backend_http_settings_collection[0]
    hs.port, hs.protocol = 80, "Http"
    pr = gw.probes[0]
    pr.protocol, pr.path, pr.host, pr.pick_host_name_from_backend_http_settings = "Http", "/", CLUSTER_IP, False
    poller = client.application_gateways.begin_create_or_update("rg-blue", "appgw-repoint", gw)
    statuses = set()
    with httpx.Client() as h:
        while not poller.done():
            statuses.add(h.get(dp.url + "/").status_code)
            time.sleep(0.02)
    poller.result()
    assert statuses == {200}  # no gap while the gateway updates
    [done] = [e for e in emu.events.events("gateway provisioned", after=after)
              if e.detail["gateway"] == "appgw-repoint"]
    # The old configuration serves while Updating; the switch happens when provisioning completes
    # (the SDK only notices at its next poll, up to Retry-After later). Times are when backends saw them.
    served = lambda be: [t for t, req, _ in be.seen if not req.headers.get("User-Agent", "").startswith("ApplicationGateway")]  # noqa: E731
    assert len([t for t in served(blob) if after < t < done.mono]) >= 10
    assert all(t > done.mono for t in served(pod1) + served(pod2))
    assert done.mono - after >= TIMINGS.gateway_update_seconds / SCALE

    # The new configuration is active once provisioned: both pods behind the ClusterIP get traffic.
    wait_for(lambda: {httpx.get(dp.url + "/").headers["X-Backend"] for _ in range(6)} == {"pod1", "pod2"},
             1.0, "traffic on both pods")
    r = httpx.get(dp.url + "/")
    assert r.headers["X-Served-By"] == "azure"
    assert pod1.requests()[-1].headers["Host"] == CLUSTER_IP  # pickHostNameFromBackendAddress kept
    changed = [e for e in emu.events.events("pool changed", after=after) if e.detail["gateway"] == "appgw-repoint"]
    assert changed and changed[0].detail["before"] == [BLOB] and changed[0].detail["after"] == [CLUSTER_IP]
    health = client.application_gateways.begin_backend_health("rg-blue", "appgw-repoint").result()
    [srv] = health.backend_address_pools[0].backend_http_settings_collection[0].servers
    assert (srv.address, srv.health) == (CLUSTER_IP, "Up")
    _, probe, _ = (pod1.probes() + pod2.probes())[-1]
    assert probe.headers["Host"] == CLUSTER_IP
