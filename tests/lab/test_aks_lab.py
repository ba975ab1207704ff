"""The lab's AKS as the real one behaves towards the drill, driven through the production SDKs.

- An App Gateway can reach a Service's internal load balancer IP (a private IP of snet-aks, assigned
  after AKS's "minute or two", scaled) and cannot reach its ClusterIP: azure-mgmt-network points the
  backend at the ClusterIP, users (httpx) get 502 and backend health says Down; at the load
  balancer's IP they get PetClinic.
- The cluster's credentials come from ARM (azure-mgmt-containerservice's listClusterUserCredential),
  exist only while the cluster does, and a kubeconfig of an earlier cluster of the same name is
  refused by the kubernetes client with its real errors.
- Without the role, ARM refuses the credentials (403 AuthorizationFailed) — and preflight says so
  before a drill starts; each preflight finding of the AKS part comes from breaking that part.
- An unwind in a fresh process (`drill unwind`) whose kubeconfig is gone fetches it again.

One ARM emulator, one AKS cluster (PetClinic, one replica) and one App Gateway data plane for the
module, in-process, at time scale 60.
"""
from __future__ import annotations

import copy
import ipaddress
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import urllib3
import yaml
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import models as NM
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from drill.config import KubeloginConfig, Target, load_target, placeholder_value
from drill.ledger import Ledger
from drivers.actions import azure_auth
from drivers.aks import AksCredentials, Kubelogin, cluster_ref, make_client
from drivers.azure_network import AppGateway
from drivers.azure_network import make_client as network_client
from drivers.kube import Kube, petclinic_manifests
from lab.azure.appgw_dataplane import AppGatewayDataPlane
from lab.azure.arm_base import ArmError
from lab.azure.arm_server import ArmEmulator
from lab.azure.gateway_network import GatewayNetwork
from lab.events import EventLog
from lab.kube import KubeApiServer, PetClinicRunner
from lab.kube.network import ClusterNetwork
from steps import preflight

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCALE = 60.0
RG, VNET, SUBNET, CLUSTER, GW = "rg-blue", "vnet-blue", "snet-aks", "aks-dr-blue", "appgw-blue"
BLOB = "bloberry01.z12.web.core.windows.net"
NS = "petclinic"
LB_DELAY = 120 / SCALE  # AKS: "a minute or two" for the load balancer's IP, the lab plays 120 s


def _cluster(work: Path, emu: ArmEmulator, events: EventLog) -> KubeApiServer:
    """AKS in vnet-blue/snet-aks, as the lab's failover stack creates it, registered with ARM."""
    subnet = emu.state.get_subnet(RG, VNET, SUBNET)

    def other(name: str) -> ipaddress.IPv4Network | None:
        try:
            return ipaddress.IPv4Network(emu.state.get_subnet(RG, VNET, name)["properties"]["addressPrefix"])
        except (ArmError, KeyError, ValueError):  # ARM's 404 (no such subnet); no single or no valid addressPrefix
            return None

    net = ClusterNetwork(node_subnet=ipaddress.IPv4Network(subnet["properties"]["addressPrefix"]), subnet_name=SUBNET,
                         subnets=other)
    srv = KubeApiServer(work, PetClinicRunner(work / "pods"), time_scale=SCALE, events=events, cluster_name=CLUSTER, network=net)
    srv.start()
    emu.clusters.register(RG, CLUSTER, srv.client_kubeconfig, subnet_id=subnet["id"])
    return srv


class World:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.events = EventLog(work / "events.jsonl")
        self.emu = ArmEmulator(work / "arm", self.events, time_scale=SCALE).start()
        self.emu.seed(RG, GW, BLOB)
        self.srv = _cluster(work / "aks", self.emu, self.events)
        self.gateway_net = GatewayNetwork({}, lambda: ["172.16.0.0/16"], lambda: [self.srv], vnet_name=VNET)
        self.dataplane = AppGatewayDataPlane(self.emu.state, RG, GW, self.gateway_net.resolve, SCALE, self.events).start()
        self.target = lab_target(self.emu)
        self.auth = azure_auth(self.target)

    def stop(self) -> None:
        self.dataplane.stop()
        self.srv.stop()
        self.emu.stop()


def lab_target(emu: ArmEmulator) -> Target:
    """targets/lab.yaml pointed at this module's ARM emulator (the AWS side is never called here)."""
    endpoints = {
        "azure_subscription_id": emu.subscription_id, "azure_tenant_id": emu.tenant_id, "azure_client_id": emu.client_id,
        "azure_client_secret": emu.client_secret, "azure_authority_host": emu.url, "azure_ca_bundle": str(emu.ca_path),
        "arm_endpoint": emu.url, "aws_endpoint": "http://127.0.0.1:9", "blob_endpoint": "http://127.0.0.1:9/bloberry01",
        "site_url": "http://127.0.0.1:9/", "blob_web_url": "http://127.0.0.1:9/", "appgw_http_port": 80,
        "target_group_arn": "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/x/0",
    }

    class Endpoints(dict):
        def __missing__(self, key: str) -> Any:
            return placeholder_value(key)  # the same stand-ins the target is validated with before a lab runs

    return load_target("lab", Endpoints(endpoints))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("aks-lab"))
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def petclinic(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kube, Path]]:
    """PetClinic on the cluster behind an internal LoadBalancer Service, as the drill deploys it,
    through a kubeconfig fetched from ARM."""
    run = tmp_path_factory.mktemp("run")
    path = AksCredentials(make_client(world.auth)).fetch(RG, CLUSTER, run / "kubeconfig")
    kube = Kube(path, cluster=cluster_ref(RG, CLUSTER))
    ledger = Ledger(run / "ledger.json")
    kube.ensure_namespace(NS, ledger)
    kube.apply_configmap(NS, "petclinic-config", {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "9", "MYSQL_DATABASE": "petclinic"}, ledger)
    kube.apply_secret(NS, "petclinic-secret", {"MYSQL_USER": "u", "MYSQL_PASSWORD": "p-aks-lab-1"}, ledger)
    dep, svc = petclinic_manifests("springcommunity/spring-petclinic:latest", 1, NS, "LoadBalancer", SUBNET)
    kube.apply_deployment(NS, dep, ledger)
    kube.apply_service(NS, svc, ledger)
    kube.wait_rollout(NS, "petclinic", timeout=30)
    yield kube, path
    kube.close()


def _admin(srv: KubeApiServer) -> kclient.CoreV1Api:
    return kclient.CoreV1Api(kconfig.new_client_from_config(str(srv.kubeconfig_path), persist_config=False))


def _lb_service(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}}


def _ingress_ip(core: kclient.CoreV1Api, name: str, ns: str = "default") -> str | None:
    ing = core.read_namespaced_service(name, ns).status.load_balancer.ingress
    return ing[0].ip if ing else None


def _wait_ip(core: kclient.CoreV1Api, name: str, timeout: float = 10) -> tuple[str | None, float]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        ip = _ingress_ip(core, name)
        if ip:
            return ip, time.monotonic() - t0
        time.sleep(0.05)
    return None, time.monotonic() - t0


# -- the internal load balancer ---------------------------------------------------------------------


def test_a_load_balancer_service_gets_its_ip_from_the_subnet_after_the_modeled_delay(world: World) -> None:
    core = _admin(world.srv)
    internal = {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}
    core.create_namespaced_service("default", _lb_service("ilb-a", internal))
    assert _ingress_ip(core, "ilb-a") is None  # <pending>
    ip, waited = _wait_ip(core, "ilb-a")
    assert ip is not None and waited >= LB_DELAY * 0.9, (ip, waited)
    nodes = {a.address for n in core.list_node().items for a in n.status.addresses if a.type == "InternalIP"}
    subnet = ipaddress.IPv4Network("172.16.11.0/24")
    assert ipaddress.ip_address(ip) in subnet and all(ipaddress.ip_address(n) in subnet for n in nodes)
    assert ip not in nodes and int(ipaddress.ip_address(ip)) - int(subnet.network_address) >= 4  # Azure's reserved .0-.3
    # Another subnet of the VNet by annotation; a subnet the VNet does not have stays pending; no annotation: public.
    core.create_namespaced_service("default", _lb_service("ilb-appgw-subnet", {
        **internal, "service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "snet-db"}))
    core.create_namespaced_service("default", _lb_service("ilb-nosuch", {
        **internal, "service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "snet-nosuch"}))
    core.create_namespaced_service("default", _lb_service("public"))
    other, _ = _wait_ip(core, "ilb-appgw-subnet")
    assert other is not None and ipaddress.ip_address(other) in ipaddress.IPv4Network("172.16.31.0/24")
    public, _ = _wait_ip(core, "public")
    assert public is not None and not ipaddress.ip_address(public).is_private
    assert _wait_ip(core, "ilb-nosuch", timeout=LB_DELAY + 1)[0] is None
    assert any("snet-nosuch" in str(e.detail.get("reason")) for e in world.events.events("load balancer error"))
    # Back to ClusterIP: the frontend goes, and the address is free for the next one.
    svc = core.read_namespaced_service("ilb-a", "default")
    svc.spec.type, svc.spec.external_traffic_policy, svc.spec.allocate_load_balancer_node_ports = "ClusterIP", None, None
    for p in svc.spec.ports:
        p.node_port = None
    core.replace_namespaced_service("ilb-a", "default", svc)
    deadline = time.monotonic() + 5
    while _ingress_ip(core, "ilb-a") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ingress_ip(core, "ilb-a") is None
    for name in ("ilb-a", "ilb-appgw-subnet", "ilb-nosuch", "public"):
        core.delete_namespaced_service(name, "default")


# -- App Gateway → AKS ------------------------------------------------------------------------------


def _gateway_at(world: World, address: str) -> None:
    """Runbook 2.4 with the production SDK: pool, Http 80 settings and probe pointed at `address`."""
    gw = AppGateway(network_client(world.auth), RG, GW, Ledger(world.work / f"gw-{address}.json"))
    gw.point_at("blob-backend-pool", address, "blob-http-settings", 80, "Http", "health-probe", probe_host=address)


def _health(world: World, address: str, want: str, timeout: float = 10) -> dict[str, Any]:
    gw = AppGateway(network_client(world.auth), RG, GW)
    deadline = time.monotonic() + timeout
    while True:
        servers = [s for s in gw.backend_health() if s["address"] == address]
        if (servers and servers[0]["health"] == want) or time.monotonic() > deadline:
            return servers[0] if servers else {}
        time.sleep(0.2)


def test_the_app_gateway_cannot_reach_a_clusterip_and_reaches_the_internal_load_balancer(
    world: World, petclinic: tuple[Kube, Path],
) -> None:
    kube, _ = petclinic
    cluster_ip = kube.service_cluster_ip(NS, "petclinic")
    lb_ip, _ = kube.wait_load_balancer_ip(NS, "petclinic", timeout=10)
    assert ipaddress.ip_address(cluster_ip) in ipaddress.IPv4Network("10.0.0.0/16")
    assert ipaddress.ip_address(lb_ip) in ipaddress.IPv4Network("172.16.11.0/24")
    # Inside the cluster the ClusterIP works (kube-proxy); the gateway is not inside the cluster.
    assert len(world.srv.service_endpoints(cluster_ip, 80)) == 1

    _gateway_at(world, cluster_ip)  # the runbook's 2.4, as written
    down = _health(world, cluster_ip, "Down")
    assert down["health"] == "Down", down
    assert "ClusterIP" in down["log"] and "virtual" in down["log"], down["log"]
    r = httpx.get(world.dataplane.url + "/", timeout=5)
    assert r.status_code == 502 and b"502 Bad Gateway" in r.content

    _gateway_at(world, lb_ip)  # what the drill does instead
    up = _health(world, lb_ip, "Up")
    assert up["health"] == "Up", up
    r = httpx.get(world.dataplane.url + "/", timeout=5)
    assert r.status_code == 200 and "PetClinic :: a Spring Framework demonstration" in r.text
    # The seeded gateway marks nothing: the drill adds `X-Served-By: azure` itself (a ledgered rewrite rule).
    assert r.headers.get("x-served-by") is None


def test_pod_ips_and_node_ports_are_what_the_vnet_would_reach(world: World, petclinic: tuple[Kube, Path]) -> None:
    """Pod IPs (overlay pod CIDR) are not routable from the VNet; a node's IP on the Service's NodePort is."""
    core = _admin(world.srv)
    pod = core.list_namespaced_pod(NS).items[0]
    with pytest.raises(LookupError, match="overlay pod CIDR"):
        world.gateway_net.resolve(pod.status.pod_ip, 8080)
    svc = core.read_namespaced_service("petclinic", NS)
    node_ip = pod.status.host_ip
    assert len(world.gateway_net.resolve(node_ip, svc.spec.ports[0].node_port)) == 1
    with pytest.raises(LookupError, match="outside vnet-blue"):
        world.gateway_net.resolve("192.168.50.5", 80)


# -- AKS credentials from ARM --------------------------------------------------------------------------


def test_credentials_come_from_arm_only_while_the_cluster_exists_and_die_with_it(world: World, tmp_path: Path) -> None:
    aks = make_client(world.auth)
    name = "aks-dr-quarterly"
    # Before the cluster exists there is nothing to fetch.
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.list_cluster_user_credentials(RG, name)
    first = KubeApiServer(tmp_path / "first", PetClinicRunner(tmp_path / "pods"), time_scale=SCALE, cluster_name=name)
    first.start()
    world.emu.clusters.register(RG, name, first.client_kubeconfig)
    old = AksCredentials(aks).fetch(RG, name, tmp_path / "last-quarter" / "kubeconfig")
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    cfg = yaml.safe_load(old.read_text())
    assert cfg["clusters"][0]["cluster"]["certificate-authority-data"] and cfg["users"][0]["user"]["token"]
    assert [n.metadata.name for n in _api(old).list_namespace().items] >= ["default"]
    mc = aks.managed_clusters.get(RG, name)
    assert mc.provisioning_state == "Succeeded" and mc.fqdn.endswith(".hcp.koreacentral.azmk8s.io")
    # The stack is destroyed and applied again: a new cluster of the same name, new CA and token.
    world.emu.clusters.unregister(RG, name)
    first.stop()
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.list_cluster_user_credentials(RG, name)
    second = KubeApiServer(tmp_path / "second", PetClinicRunner(tmp_path / "pods"), time_scale=SCALE, cluster_name=name)
    second.start()
    try:
        world.emu.clusters.register(RG, name, second.client_kubeconfig)
        assert aks.managed_clusters.get(RG, name).fqdn != mc.fqdn
        # Last quarter's kubeconfig: its API server is gone.
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            _api(old, retries=0).list_namespace()
        # Even at the new cluster's address, the new cluster's certificate is not signed by the old CA ...
        moved = tmp_path / "moved"
        moved_cfg = copy.deepcopy(cfg)
        moved_cfg["clusters"][0]["cluster"]["server"] = second.url
        moved.write_text(yaml.safe_dump(moved_cfg))
        with pytest.raises(urllib3.exceptions.MaxRetryError) as ei:
            _api(moved, retries=0).list_namespace()
        assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)
        # ... and with the new CA, the old token is not a credential of the new cluster.
        new = AksCredentials(aks).fetch(RG, name, tmp_path / "now" / "kubeconfig")
        stale = yaml.safe_load(new.read_text())
        stale["users"][0]["user"]["token"] = cfg["users"][0]["user"]["token"]
        (tmp_path / "stale").write_text(yaml.safe_dump(stale))
        with pytest.raises(ApiException) as ai:
            _api(tmp_path / "stale").list_namespace()
        assert ai.value.status == 401
        assert [n.metadata.name for n in _api(new).list_namespace().items] >= ["default"]
    finally:
        world.emu.clusters.unregister(RG, name)
        second.stop()


def _api(path: Path, retries: int | None = None) -> kclient.CoreV1Api:
    cfg = kclient.Configuration()
    kconfig.load_kube_config(str(path), client_configuration=cfg, persist_config=False)
    if retries is not None:
        cfg.retries = retries
    return kclient.CoreV1Api(kclient.ApiClient(cfg))


def test_an_entra_cluster_needs_kubelogin_and_gets_it(world: World, tmp_path: Path) -> None:
    """An Entra-integrated cluster: refused without a kubelogin mode, converted with one (a fake
    kubelogin that checks its arguments, as the Terraform CLI tests do)."""
    srv = KubeApiServer(tmp_path / "entra", PetClinicRunner(tmp_path / "pods"), time_scale=SCALE, cluster_name="aks-entra")
    srv.start()
    try:
        world.emu.clusters.register(RG, "aks-entra", srv.client_kubeconfig, aad=True)
        from drivers.aks import AksCredentialsError

        with pytest.raises(AksCredentialsError, match=r"Entra-integrated.*kubernetes\.kubelogin\.mode"):
            AksCredentials(make_client(world.auth)).fetch(RG, "aks-entra", tmp_path / "a" / "kubeconfig")
        fake = fake_kubelogin(tmp_path / "bin")
        dest = tmp_path / "b" / "kubeconfig"
        AksCredentials(make_client(world.auth), Kubelogin("workloadidentity", str(fake))).fetch(RG, "aks-entra", dest)
        argv = (tmp_path / "bin" / "argv").read_text().split("\0")
        assert argv == ["convert-kubeconfig", "-l", "workloadidentity", "--kubeconfig", str(dest)]
        assert "kubelogin" in dest.read_text() and stat.S_IMODE(dest.stat().st_mode) == 0o600
    finally:
        world.emu.clusters.unregister(RG, "aks-entra")
        srv.stop()


FAKE_KUBELOGIN = r'''#!{python}
import os, sys
import yaml
args = sys.argv[1:]
open(os.path.join(os.path.dirname(__file__), "argv"), "w").write("\0".join(args))
if args[:2] != ["convert-kubeconfig", "-l"] or args[2] not in ("azurecli", "spn", "workloadidentity", "msi") \
        or args[3] != "--kubeconfig" or len(args) != 5 or any("secret" in a.lower() for a in args):
    print("Error: unknown flag or mode: %r" % args, file=sys.stderr)
    sys.exit(1)
path = args[4]
cfg = yaml.safe_load(open(path))
for u in cfg["users"]:
    u["user"] = {{"exec": {{"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin",
                          "args": ["get-token", "--login", args[2], "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"],
                          "interactiveMode": "IfAvailable"}}}}
os.umask(0o022)
os.remove(path)
open(path, "w").write(yaml.safe_dump(cfg))
'''


def fake_kubelogin(bindir: Path) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / "kubelogin"
    path.write_text(FAKE_KUBELOGIN.format(python=sys.executable))
    path.chmod(0o755)
    return path


# -- preflight: each finding of the AKS part, from breaking that part ---------------------------------


def aks_findings(target: Target) -> dict[str, str]:
    return {f.check: f.detail for f in preflight.run(target, ["phase2"]) if f.check.startswith("preflight.aks.")}


def _with_kube(target: Target, **changes: Any) -> Target:
    return target.model_copy(update={"kubernetes": target.kubernetes.model_copy(update=changes)})


def test_preflight_finds_nothing_on_a_healthy_lab(world: World) -> None:
    assert aks_findings(world.target) == {}


def test_preflight_names_a_backend_the_app_gateway_could_not_reach(world: World) -> None:
    # The runbook's Service as written: a ClusterIP.
    found = aks_findings(_with_kube(world.target, service_type="ClusterIP"))
    assert list(found) == ["preflight.aks.backend_reachable"] and "only a ClusterIP" in found["preflight.aks.backend_reachable"]
    # The subnet the internal load balancer would take its IP from is gone from the VNet.
    net = network_client(world.auth)
    prefix = net.subnets.get(RG, VNET, SUBNET).address_prefix
    net.subnets.begin_delete(RG, VNET, SUBNET).result()
    try:
        found = aks_findings(world.target)
        assert list(found) == ["preflight.aks.backend_reachable"], found
        assert "'snet-aks' is not a subnet of vnet-blue" in found["preflight.aks.backend_reachable"]
    finally:
        net.subnets.begin_create_or_update(
            RG, VNET, SUBNET, NM.Subnet(properties=NM.SubnetPropertiesFormat(address_prefix=prefix))).result()
    assert aks_findings(world.target) == {}


def test_preflight_names_a_missing_route_to_the_new_clusters_credentials(world: World, tmp_path: Path) -> None:
    # A kubeconfig fixed in the target file, from before the cluster existed.
    found = aks_findings(_with_kube(world.target, kubeconfig=str(tmp_path / "kubeconfig")))
    assert list(found) == ["preflight.aks.credentials_route"] and "fixed file" in found["preflight.aks.credentials_route"]
    # The drill's identity lacks the role: ARM itself refuses the credentials, and preflight says so first.
    reader = {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}
    world.emu.clusters.set_permissions(RG, [reader])
    try:
        with pytest.raises(HttpResponseError) as ei:
            make_client(world.auth).managed_clusters.list_cluster_user_credentials(RG, CLUSTER)
        assert ei.value.status_code == 403 and ei.value.error.code == "AuthorizationFailed"
        found = aks_findings(world.target)
        assert list(found) == ["preflight.aks.credentials_route"], found
        assert "listClusterUserCredential/action" in found["preflight.aks.credentials_route"]
    finally:
        world.emu.clusters.set_permissions(RG, None)
    # An Entra cluster's kubelogin mode that cannot get a token here (no binary; spn without its variables).
    found = aks_findings(_with_kube(world.target, kubelogin=KubeloginConfig(mode="msi", binary=str(tmp_path / "no-kubelogin"))))
    assert "is not an executable" in found["preflight.aks.credentials_route"]
    fake = fake_kubelogin(tmp_path / "bin")
    spn = _with_kube(world.target, kubelogin=KubeloginConfig(mode="spn", binary=str(fake)))
    saved = {k: os.environ.pop(k, None) for k in ("AAD_SERVICE_PRINCIPAL_CLIENT_ID", "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET",
                                                  "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")}
    try:
        assert "AAD_SERVICE_PRINCIPAL_CLIENT_ID+AAD_SERVICE_PRINCIPAL_CLIENT_SECRET" in aks_findings(spn)["preflight.aks.credentials_route"]
        os.environ.update(AAD_SERVICE_PRINCIPAL_CLIENT_ID="x", AAD_SERVICE_PRINCIPAL_CLIENT_SECRET="y")
        assert aks_findings(spn) == {}
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


# -- unwind in a fresh process ----------------------------------------------------------------------


def test_drill_unwind_in_a_fresh_process_fetches_a_missing_kubeconfig_again(world: World, tmp_path: Path) -> None:
    run = tmp_path / "work"
    path = AksCredentials(make_client(world.auth)).fetch(RG, CLUSTER, run / "kubeconfig")
    ledger = Ledger(run / "ledger.json")
    with Kube(path, cluster=cluster_ref(RG, CLUSTER)) as kube:
        kube.ensure_namespace("unwind-me", ledger)
        kube.apply_configmap("unwind-me", "c", {"k": "v"}, ledger)
    assert all(e.inverse.params["aks"] == {"resource_group": RG, "name": CLUSTER} for e in ledger.entries)
    path.unlink()  # the drill was killed and its work dir cleaned, or the file lost
    target_file = tmp_path / "aks-lab-target.yaml"
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    raw.pop("lab")  # a plain target file: the values below, no running lab
    raw["time_scale"] = 1  # outside the lab time is real (a lab-shaped time scale is refused)
    t = world.target
    raw["aws"].update(endpoint_url="http://127.0.0.1:9", access_key_id="x", secret_access_key="y")
    raw["aws"]["alb"]["target_group_arn"] = t.aws.alb.target_group_arn
    raw["aws"]["cloudfront"]["distribution_id"] = "E0"
    raw["azure"] = {**raw["azure"], "subscription_id": t.azure.subscription_id, "arm_endpoint": t.azure.arm_endpoint,
                    "credential": {"tenant_id": t.azure.credential.tenant_id, "client_id": t.azure.credential.client_id,
                                   "client_secret": t.azure.credential.client_secret.get_secret_value(),
                                   "authority_host": t.azure.credential.authority_host, "ca_bundle": t.azure.credential.ca_bundle},
                    "storage": {"account_url": "http://127.0.0.1:9/bloberry01"}, "app_gateway": {"name": GW},
                    "mysql": {"admin_password": "unused-here"}}
    raw["failover_stack"] = {"chdir": str(tmp_path)}
    raw["site"] = {"url": "http://127.0.0.1:9/"}
    raw.pop("readiness")
    raw.pop("alarms", None)  # the lab's receipts queue: nothing here reads the alarms
    raw["stop"].pop("alarms", None)
    raw["database"].pop("ssl_ca", None)  # the lab's CA bundle: nothing here talks to a database
    target_file.write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, "-m", "drill_cli", "unwind", str(run / "ledger.json"), f"--target={target_file}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "unwound 2 of 2; 0 failure(s)" in out.stdout
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600  # fetched again, privately
    assert not world.srv.namespace_exists("unwind-me")  # the inverse waits until the namespace is gone
