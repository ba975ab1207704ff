"""The goupang lab (Route 53 DNS failover, the Azure VM DR site) through the production SDKs.

One lab (`lab/topologies/goupang.py`, time scale 30) for the module:
  - a failing endpoint turns its health check unhealthy after FailureThreshold × RequestInterval
    (scaled), seen where Route 53 acts on it: the zone's answer flips to the secondary, then back
    once the endpoint passes again; GetHealthCheckStatus (boto3) shows the checkers' failures;
  - a caching resolver that has the old answer keeps it until the TTL (60 s, scaled) runs out;
  - the DR VM's power state follows start/deallocate through azure-mgmt-compute, and its guest
    serves PetClinic at the VM's address only while it runs;
  - the Redis session store keeps a signed-in user across the web tier's replicas.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from drivers.azure_compute import VirtualMachine, make_client
from drivers.azure_network import AzureAuth
from drivers.dns_resolver import CachingResolver
from lab.client import LabProcess

pytestmark = [pytest.mark.lab, pytest.mark.slow]
SCALE = 30.0
WWW = "www.goupang.shop"
TITLE = "PetClinic :: a Spring Framework demonstration"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proc = LabProcess(SCALE, workdir=tmp_path_factory.mktemp("goupang-lab"), watch_parent=True, topology="goupang")
    try:
        yield proc.start()
    finally:
        proc.stop()


def _r53(ep: dict[str, Any]) -> Any:
    return boto3.client("route53", region_name="us-east-1", endpoint_url=ep["aws_endpoint"],
                        aws_access_key_id=ep["aws_access_key_id"], aws_secret_access_key=ep["aws_secret_access_key"])


def _answer(ep: dict[str, Any], name: str = WWW) -> str:
    return CachingResolver(ep["dns_nameserver"], honour_ttl=False).query(name)[0]


def _wait_answer(ep: dict[str, Any], want: str, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _answer(ep) == want:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"the zone still does not answer {want} after {timeout:.1f}s (answers {_answer(ep)})")


def test_failing_endpoint_fails_over_after_threshold_times_interval_and_back(lab: dict[str, Any]) -> None:
    ep, r53 = lab, _r53(lab)
    hc_id = ep["health_check_id"]
    primary, secondary = ep["public_addresses"]["alb"], ep["public_addresses"]["maintenance_cdn"]
    config = r53.get_health_check(HealthCheckId=hc_id)["HealthCheck"]["HealthCheckConfig"]
    interval, threshold = config["RequestInterval"] / SCALE, config["FailureThreshold"]
    assert _answer(ep) == primary

    # The endpoint fails: every check now gets a 404.
    r53.update_health_check(HealthCheckId=hc_id, ResourcePath="/no-such-page")
    flipped = _wait_answer(ep, secondary, timeout=threshold * interval + 4 * interval + 2)
    # Each checker needs `threshold` consecutive failures at its interval: not before (threshold - 1)
    # intervals, and within threshold intervals plus one of stagger (checkers are uncoordinated).
    assert (threshold - 1) * interval <= flipped <= (threshold + 1) * interval + 0.6, (flipped, interval, threshold)
    obs = r53.get_health_check_status(HealthCheckId=hc_id)["HealthCheckObservations"]
    assert len(obs) == 8 and sum(o["StatusReport"]["Status"].startswith("Failure") for o in obs) >= 7, obs
    assert all("404" in o["StatusReport"]["Status"] for o in obs if o["StatusReport"]["Status"].startswith("Failure"))

    # The endpoint recovers: Route 53 answers with the primary again by itself.
    r53.update_health_check(HealthCheckId=hc_id, ResourcePath="/actuator/health")
    back = _wait_answer(ep, primary, timeout=threshold * interval + 4 * interval + 2)
    assert (threshold - 1) * interval <= back <= (threshold + 1) * interval + 0.6, (back, interval, threshold)
    # Users reach PetClinic from the primary's address and the maintenance page from the secondary's.
    port = ep["site_port"]
    assert TITLE in httpx.get(f"http://{primary}:{port}/", headers={"Host": f"{WWW}:{port}"}).text
    assert "점검" in httpx.get(f"http://{secondary}:{port}/", headers={"Host": f"{WWW}:{port}"}).text


def test_vm_power_state_follows_start_and_deallocate(lab: dict[str, Any]) -> None:
    ep = lab
    auth = AzureAuth(subscription_id=ep["azure_subscription_id"], tenant_id=ep["azure_tenant_id"],
                     client_id=ep["azure_client_id"], client_secret=ep["azure_client_secret"],
                     authority_host=ep["azure_authority_host"], resource_manager_url=ep["arm_endpoint"],
                     ca_bundle=ep["azure_ca_bundle"])
    client = make_client(auth)
    vm = VirtualMachine(client, ep["azure_resource_group"], ep["vm_name"])
    assert vm.power_state() == "deallocated"
    got = client.virtual_machines.get(ep["azure_resource_group"], ep["vm_name"], expand="instanceView")
    assert got.hardware_profile.vm_size == "Standard_B2s"
    assert any(s.code == "PowerState/deallocated" for s in got.instance_view.statuses)
    url = f"http://{ep['public_addresses']['vm']}:{ep['site_port']}/"

    t0 = time.monotonic()
    poller = client.virtual_machines.begin_start(ep["azure_resource_group"], ep["vm_name"], polling_interval=1)
    assert vm.power_state() == "starting"
    poller.result(timeout=30)
    started = time.monotonic() - t0
    assert vm.power_state() == "running"
    assert 60 / SCALE - 0.1 <= started <= 60 / SCALE + 2.5, started  # the start LRO ends when the VM runs
    # The guest boots after PowerState/running: nginx + PetClinic answer at the VM's address.
    deadline = time.monotonic() + 20
    while True:
        try:
            r = httpx.get(url, headers={"Host": f"dr.goupang.shop:{ep['site_port']}"}, timeout=2)
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the VM's guest never served PetClinic"
        time.sleep(0.2)
    assert TITLE in r.text
    assert time.monotonic() - t0 >= (60 + 45) / SCALE - 0.2

    client.virtual_machines.begin_deallocate(ep["azure_resource_group"], ep["vm_name"], polling_interval=1).result(timeout=30)
    assert vm.power_state() == "deallocated"
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=2)


def test_sessions_in_redis_outlive_a_replica(lab: dict[str, Any]) -> None:
    """The web tier's replicas share sessions through Redis: a sign-in on one is known to the other."""
    import redis

    port = lab["site_port"]
    alb = f"http://{lab['public_addresses']['alb']}:{port}"
    r = httpx.post(f"{alb}/login", data={"username": "kim"}, headers={"Host": f"{WWW}:{port}"})
    assert r.status_code == 302 and r.headers["set-cookie"].startswith("SESSION=")
    cookie = r.headers["set-cookie"].split(";", 1)[0]
    # Several requests: the ALB spreads them over both replicas; each must know the session.
    for _ in range(6):
        page = httpx.get(f"{alb}/", headers={"Host": f"{WWW}:{port}", "Cookie": cookie})
        assert "Signed in as kim" in page.text
    keys = redis.Redis(port=lab["redis_port"]).keys("spring:session:sessions:*")
    assert keys, "no session in Redis"


def test_caching_resolver_keeps_the_old_answer_until_the_ttl_expires(lab: dict[str, Any]) -> None:
    """A user's resolver honours the TTL: the zone's answer changes, the user keeps the old one for 60 s (scaled)."""
    ep, r53 = lab, _r53(lab)
    primary, secondary = ep["public_addresses"]["alb"], ep["public_addresses"]["maintenance_cdn"]
    zone = ep["hosted_zone_id"]
    records = {r.get("SetIdentifier"): r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]}
    primary_rs = records["primary-aws"]
    user = CachingResolver(ep["dns_nameserver"], time_scale=SCALE)
    first = user.resolve(WWW)
    assert first.address == primary and first.ttl == 60 and not first.cached
    # The operators repoint the primary record at the maintenance distribution (an UPSERT, at once).
    moved = {**primary_rs, "AliasTarget": {**primary_rs["AliasTarget"], "DNSName": ep["cloudfront_domain"]}}
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": moved}]})
    try:
        assert _answer(ep) == secondary  # the name server answers the new address at once
        held = user.resolve(WWW)
        assert held.address == primary and held.cached, held  # the user does not ask again before the TTL
        time.sleep(max(0.0, first.expires - time.monotonic()) + 0.05)
        fresh = user.resolve(WWW)
        assert fresh.address == secondary and not fresh.cached
        # A resolver that ignores TTL (the lower bound of what users see) follows at once.
        assert CachingResolver(ep["dns_nameserver"], time_scale=SCALE, honour_ttl=False).resolve(WWW).address == secondary
    finally:
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": primary_rs}]})
    assert _answer(ep) == primary


def test_readiness_reports_the_daily_snapshots_age_against_the_rpo(lab: dict[str, Any], tmp_path: Any) -> None:
    """`pytest -m readiness --target=lab-goupang`'s snapshot checks, on this lab: the newest daily dump
    (taken at lab start) is younger than 24 h (scaled) plus a dump in flight, and dumps arrive daily."""
    from drill.config import load_target
    from drill.evidence import Masker
    from steps.readiness import ReadinessRun

    target = load_target("lab-goupang", lab)
    run = ReadinessRun(target, tmp_path, Masker())
    fresh = run.check_backup_freshness()
    assert fresh.passed, fresh.detail
    assert fresh.threshold == pytest.approx((86400 + 3600) / SCALE, abs=0.01)
    assert fresh.measured is not None and 0 <= fresh.measured < fresh.threshold
    assert str(fresh.data["newest"]).startswith("backups/"), fresh.data  # db-backups/backups/…, the daily dump
    schedule = run.check_backup_schedule()
    assert schedule.passed, schedule.detail


def test_preflight_reads_the_lab_through_the_production_sdks_and_names_what_is_broken(lab: dict[str, Any], tmp_path: Any) -> None:
    """The goupang system's preflight on this lab (boto3 Route 53, azure-mgmt-compute): the lab as seeded
    has no finding, readiness reports each check; a PRIMARY record stripped of its health check (Route 53
    would never fail over: the lab's name server keeps answering with it, as Route 53 does) and a DR VM
    name that does not exist (ARM's 404) are named."""
    from drill.config import load_target
    from drill.evidence import Masker
    from steps import preflight
    from steps.readiness import ReadinessRun

    ep, r53 = lab, _r53(lab)
    target = load_target("lab-goupang", ep)
    assert preflight.run(target) == []
    verdicts = ReadinessRun(target, tmp_path, Masker()).check_preflight()
    assert {v.check for v in verdicts} >= {"preflight.route53.primary_fails_over", "preflight.route53.health_check_endpoint",
                                           "preflight.route53.ttl_within_rto", "preflight.dr_vm.startable"}
    assert all(v.passed for v in verdicts), [v.detail for v in verdicts if not v.passed]

    zone = ep["hosted_zone_id"]
    records = {r.get("SetIdentifier"): r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]}
    primary_rs = records["primary-aws"]
    bare = {k: v for k, v in primary_rs.items() if k != "HealthCheckId"}
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": bare}]})
    try:
        found = {f.check: f.detail for f in preflight.run(target)}
    finally:
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": primary_rs}]})
    assert "never answers with the secondary" in found["preflight.route53.primary_fails_over"], found

    assert target.azure is not None and target.azure.vm is not None
    missing_vm = target.model_copy(update={"azure": target.azure.model_copy(
        update={"vm": target.azure.vm.model_copy(update={"name": "vm-no-such"})})})
    found = {f.check: f.detail for f in preflight.run(missing_vm, ["phase2"])}
    assert "vm-no-such (azure.vm) does not exist" in found["preflight.dr_vm.startable"], found
    assert preflight.run(target) == []  # the lab is as it was
