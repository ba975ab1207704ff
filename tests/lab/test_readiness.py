"""`pytest -m readiness` against one lab: ready when healthy, and not ready — naming the broken check —
for each way the checks cover the lab being unready.

One lab for the module. Each test breaks the lab through the clouds' own SDKs (boto3 against the
lab's moto, azure-storage-blob with the account key, azure-mgmt-* through the ARM emulator), runs
readiness as an operator would (a subprocess attached to the lab with --lab-endpoints), and repairs
the lab in `finally`, so the next test starts from a healthy lab. The stale-backup test comes last:
after the backup job resumes, the pause stays visible as a gap in the backup schedule for the
schedule window (2 minutes in the lab).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as NM
from azure.mgmt.storage import StorageManagementClient
from azure.storage.blob import BlobServiceClient, ContentSettings

from drivers.backups import BackupStore, parse_name_time
from lab.client import LabProcess
from lab.client import control as lab_control

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = re.compile(r"password|secret|key|token|connection_string", re.I)
RG, VNET, ACCOUNT = "rg-blue", "vnet-blue", "bloberry01"
RPO_WALL = (300 + 60) / 30  # lab.yaml: RPO + backup in flight, real-world seconds / time_scale


@dataclass
class Lab:
    endpoints: dict[str, Any]
    endpoints_path: Path

    def aws(self, service: str) -> Any:
        e = self.endpoints
        return boto3.client(service, region_name=e["region"], endpoint_url=e["aws_endpoint"],
                            aws_access_key_id=e["aws_access_key_id"], aws_secret_access_key=e["aws_secret_access_key"])

    def blob(self) -> BlobServiceClient:
        e = self.endpoints
        return BlobServiceClient(e["blob_endpoint"], credential={"account_name": e["storage_account"],
                                                                 "account_key": e["storage_account_key"]})

    def backups(self) -> BackupStore:
        return BackupStore(self.blob().get_container_client("mysql-backups"))

    def _arm_kw(self) -> dict[str, Any]:
        e = self.endpoints
        cred = ClientSecretCredential(e["azure_tenant_id"], e["azure_client_id"], e["azure_client_secret"],
                                      authority=e["azure_authority_host"], disable_instance_discovery=True,
                                      connection_verify=e["azure_ca_bundle"])
        return {"credential": cred, "subscription_id": e["azure_subscription_id"], "base_url": e["arm_endpoint"],
                "connection_verify": e["azure_ca_bundle"]}

    def network(self) -> NetworkManagementClient:
        return NetworkManagementClient(**self._arm_kw())

    def storage(self) -> StorageManagementClient:
        return StorageManagementClient(**self._arm_kw())

    def control(self, path: str) -> dict[str, Any]:
        return lab_control(self.endpoints, path)

    def secrets(self) -> list[str]:
        return [v for k, v in self.endpoints.items()
                if SECRET_KEY.search(k) and isinstance(v, str) and len(v) >= 6 and not v.startswith("/")]


@dataclass
class Readiness:
    proc: subprocess.CompletedProcess[str]
    summary: dict[str, Any]
    bundle: Path
    seconds: float

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    @property
    def failed(self) -> set[str]:
        return {c["check"] for c in self.summary["checks"] if not c["passed"]}

    def verdict(self, check: str) -> dict[str, Any]:
        return next(c for c in self.summary["checks"] if c["check"] == check)

    def explain(self) -> str:
        return f"exit {self.proc.returncode}, failed {sorted(self.failed)}\n{self.proc.stdout[-3000:]}"


@pytest.fixture(scope="module")
def ready_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    proc = LabProcess(30.0)
    try:
        endpoints = proc.start()
        yield Lab(endpoints, proc.workdir / "endpoints.json")
    finally:
        proc.stop()


def seed_passing_drill(evidence: Path, days_ago: float = 7.0) -> Path:
    """A sealed bundle of a passing full drill `days_ago` (drills.last_passing reads the record of drills)."""
    from drill.seal import seal_bundle

    started = datetime.now(UTC) - timedelta(days=days_ago)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-5eed00"
    b = evidence / run_id
    b.mkdir(parents=True)
    phases = [{"name": n, "rto_seconds": 1.0, "rto_target_seconds": 10.0, "passed": True} for n in ("phase1", "phase2", "phase3")]
    (b / "summary.json").write_text(json.dumps({
        "run_id": run_id, "target": "lab", "time_scale": 30.0, "dry_run": False, "verdict": "passed", "phases": phases,
        "started_at": started.isoformat(), "finished_at": (started + timedelta(minutes=3)).isoformat()}))
    seal_bundle(b)
    return b


def readiness(lab: Lab, tmp_path: Path, *extra: str, seed: bool = True) -> Readiness:
    reports = tmp_path / "reports"
    if seed and not (reports / "evidence").exists():
        seed_passing_drill(reports / "evidence")
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "readiness", "steps/cloudfront/test_readiness.py", "-p", "no:cacheprovider",
         f"--lab-endpoints={lab.endpoints_path}", f"--reports-dir={reports}", f"--alluredir={reports / 'allure'}", *extra],
        cwd=REPO, env=dict(os.environ, TMPDIR=str(tmp_path)), capture_output=True, text=True, timeout=180,
    )
    seconds = time.monotonic() - t0
    bundle = (reports / "evidence" / "readiness-latest").resolve()
    assert (bundle / "readiness.json").exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    return Readiness(proc, json.loads((bundle / "readiness.json").read_text()), bundle, seconds)


def assert_not_ready(r: Readiness, check: str, *words: str) -> None:
    """Exit non-zero, the verdict says not ready, and the check is named as failed everywhere."""
    assert r.proc.returncode != 0, r.explain()
    assert r.summary["verdict"] == "not ready"
    assert check in r.failed, r.explain()
    detail = r.verdict(check)["detail"]
    assert detail.startswith(f"{check}: ")
    for w in words:
        assert w in detail, detail
    assert f"FAIL  {check}" in r.proc.stdout and f"{check}: " in r.proc.stdout, r.proc.stdout[-3000:]
    assert "**FAIL**" in (r.bundle / "readiness.md").read_text()


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(poll)


def lab_state(lab: Lab) -> dict[str, Any]:
    """What readiness must not change: distribution config version, node groups, containers, subnets, policy."""
    dist = lab.endpoints["cloudfront_distribution_id"]
    eks = lab.aws("eks")
    return {
        "distribution_etag": lab.aws("cloudfront").get_distribution_config(Id=dist)["ETag"],
        "nodegroups": {ng: eks.describe_nodegroup(clusterName="blue-eks", nodegroupName=ng)["nodegroup"]["scalingConfig"]
                       for ng in ("blue-web-ng", "blue-was-ng")},
        "containers": sorted(c.name for c in lab.blob().list_containers()),
        "subnets": sorted(s.name for s in lab.network().virtual_networks.get(RG, VNET).subnets),
        "policy": lab.storage().management_policies.get(RG, ACCOUNT, "default").as_dict()["properties"]["policy"],
    }


# -- healthy ------------------------------------------------------------------------------------------
def test_healthy_lab_is_ready_and_readiness_changes_nothing(ready_lab: Lab, tmp_path: Path) -> None:
    before = lab_state(ready_lab)
    r = readiness(ready_lab, tmp_path)
    assert r.proc.returncode == 0, r.explain()
    assert r.summary["verdict"] == "ready" and r.failed == set()
    checks = {c["check"] for c in r.summary["checks"]}
    assert {
        "backups.freshness", "backups.schedule", "backups.restorable", "backups.restored_tables",
        "backups.restored_reference", "backups.restored_append_only", "backups.lifecycle",
        "cdn.failover_criteria", "cdn.secondary_origin", "cdn.maintenance_page",
        "aws.nodegroups", "aws.alb_targets", "aws.alarms", "aws.site",
        "azure.storage_account", "azure.containers", "azure.network", "azure.failover_plan",
        "credentials.aws.sts", "credentials.azure.token", "credentials.azure.mysql", "credentials.terraform", "drills.last_passing",
    } <= checks, sorted(checks)
    for c in r.summary["checks"]:
        assert {"check", "passed", "measured", "threshold", "detail"} <= set(c) and c["detail"].startswith(c["check"] + ": ")
    assert "READY" in r.proc.stdout and "dr-drill readiness" in r.proc.stdout
    # Read-only: the distribution's ETag (any update changes it), sizes, containers, subnets, policy unchanged.
    assert lab_state(ready_lab) == before
    # The scratch database was emptied again at the end.
    scratch = ready_lab.endpoints
    import pymysql

    conn = pymysql.connect(host=scratch["scratch_db_host"], port=scratch["scratch_db_port"], user=scratch["scratch_db_user"],
                           password=scratch["scratch_db_password"], database=scratch["scratch_db_database"])
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
    conn.close()
    # Evidence: a manifest, Allure verdicts, and no secret of the lab anywhere.
    assert {"readiness.json", "readiness.md", "target.json", "environment.json", "manifest.json"} <= {p.name for p in r.bundle.iterdir()}
    allure = "".join(p.read_text(errors="replace") for p in (tmp_path / "reports" / "allure").glob("*-attachment*"))
    assert '"check": "backups.restorable"' in allure
    texts = [r.output] + [p.read_text(errors="replace") for p in r.bundle.iterdir()]
    for secret in ready_lab.secrets():
        assert not any(secret in t for t in texts), "a lab secret leaked into the output or the evidence"


# -- CDN ------------------------------------------------------------------------------------------------
def test_wrong_secondary_origin(ready_lab: Lab, tmp_path: Path) -> None:
    cf, dist = ready_lab.aws("cloudfront"), ready_lab.endpoints["cloudfront_distribution_id"]

    def set_secondary(domain: str) -> str:
        got = cf.get_distribution_config(Id=dist)
        cfg = got["DistributionConfig"]
        origin = next(o for o in cfg["Origins"]["Items"] if o["Id"] == "secondary-azure")
        previous = origin["DomainName"]
        origin["DomainName"] = domain
        cf.update_distribution(Id=dist, DistributionConfig=cfg, IfMatch=got["ETag"])
        return str(previous)

    original = set_secondary("maintenance.example.net")
    try:
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "cdn.secondary_origin", "maintenance.example.net", original)
        assert r.failed == {"cdn.secondary_origin"}, r.explain()
    finally:
        set_secondary(original)
        wait_for("the distribution Deployed", lambda: cf.get_distribution(Id=dist)["Distribution"]["Status"] == "Deployed", 60)


# -- Azure always-on ---------------------------------------------------------------------------------------
def test_missing_maintenance_container(ready_lab: Lab, tmp_path: Path) -> None:
    svc = ready_lab.blob()
    svc.delete_container("$web")
    try:
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "azure.containers", "$web")
        # The maintenance page lived in it: the direct fetch fails too.
        assert r.failed == {"azure.containers", "cdn.maintenance_page"}, r.explain()
    finally:
        def recreate() -> bool:
            try:
                web = svc.create_container("$web")
            except Exception:  # noqa: BLE001 — the deletion may still be settling
                return False
            web.upload_blob("index.html", (REPO / "lab" / "static" / "maintenance.html").read_bytes(), overwrite=True,
                            content_settings=ContentSettings(content_type="text/html; charset=utf-8"))
            return True

        wait_for("$web re-created", recreate, 30)


def test_missing_subnet(ready_lab: Lab, tmp_path: Path) -> None:
    net = ready_lab.network()
    prefix = net.subnets.get(RG, VNET, "snet-aks").address_prefix
    net.subnets.begin_delete(RG, VNET, "snet-aks").result()
    try:
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "azure.network", "snet-aks")
        # The internal load balancer PetClinic would get takes its IP from snet-aks: preflight sees it too.
        assert_not_ready(r, "preflight.aks.backend_reachable", "'snet-aks' is not a subnet of vnet-blue")
        assert r.failed == {"azure.network", "preflight.aks.backend_reachable"}, r.explain()
    finally:
        net.subnets.begin_create_or_update(
            RG, VNET, "snet-aks", NM.Subnet(properties=NM.SubnetPropertiesFormat(address_prefix=prefix))).result()


def test_missing_lifecycle_policy(ready_lab: Lab, tmp_path: Path) -> None:
    sm = ready_lab.storage()
    policy = sm.management_policies.get(RG, ACCOUNT, "default")
    sm.management_policies.delete(RG, ACCOUNT, "default")
    try:
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "backups.lifecycle", "no lifecycle management policy")
        assert r.failed == {"backups.lifecycle"}, r.explain()
    finally:
        sm.management_policies.create_or_update(RG, ACCOUNT, "default", policy)


def test_missing_azure_credential(ready_lab: Lab, tmp_path: Path) -> None:
    # A service principal whose secret was rotated away: every Azure probe says so, by API and error code.
    target = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    target["azure"]["credential"]["client_secret"] = "rotated-away-client-secret"
    path = tmp_path / "lab-stale-secret.yaml"
    path.write_text(yaml.safe_dump(target, allow_unicode=True))
    r = readiness(ready_lab, tmp_path, f"--target={path}")
    assert_not_ready(r, "credentials.azure.token", "ClientAuthenticationError", "AADSTS7000215")
    assert {"credentials.azure.network", "credentials.azure.app_gateways", "credentials.azure.mysql",
            "credentials.azure.storage_management"} <= r.failed
    assert not any(c.startswith("credentials.aws") for c in r.failed), r.explain()


# -- AWS primary -----------------------------------------------------------------------------------------
def test_nodegroup_at_the_wrong_size(ready_lab: Lab, tmp_path: Path) -> None:
    # blue-was-ng runs no lab replicas (only blue-web-ng does): resizing it changes nothing users see.
    eks = ready_lab.aws("eks")
    eks.update_nodegroup_config(clusterName="blue-eks", nodegroupName="blue-was-ng", scalingConfig={"desiredSize": 3})
    try:
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "aws.nodegroups", "blue-was-ng has desiredSize 3, expected 2")
        assert r.failed == {"aws.nodegroups"}, r.explain()
    finally:
        eks.update_nodegroup_config(clusterName="blue-eks", nodegroupName="blue-was-ng", scalingConfig={"desiredSize": 2})


# -- the team's alarms --------------------------------------------------------------------------------------
def test_alarm_without_action_and_alarm_stuck_in_alarm(ready_lab: Lab, tmp_path: Path) -> None:
    """alb-5xx-errors-high loses its actions (it would tell no one); unhealthy-hosts is re-put with a
    threshold its metric always crosses (0 unhealthy > -1): the lab's evaluation puts it in ALARM and
    keeps it there, as CloudWatch would. Both are put back through PutMetricAlarm afterwards."""
    cw = ready_lab.aws("cloudwatch")
    keys = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "MetricName", "Namespace",
            "Statistic", "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
            "ComparisonOperator", "TreatMissingData")
    original = {a["AlarmName"]: {k: a[k] for k in keys if k in a}
                for a in cw.describe_alarms(AlarmNames=["alb-5xx-errors-high", "unhealthy-hosts"])["MetricAlarms"]}
    assert set(original) == {"alb-5xx-errors-high", "unhealthy-hosts"}

    def state(name: str) -> str:
        return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]

    cw.put_metric_alarm(**{**original["alb-5xx-errors-high"], "AlarmActions": [], "OKActions": []})
    cw.put_metric_alarm(**{**original["unhealthy-hosts"], "Threshold": -1.0})
    try:
        wait_for("unhealthy-hosts in ALARM", lambda: state("unhealthy-hosts") == "ALARM", timeout=20)
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "aws.alarms", "alb-5xx-errors-high has no ALARM action", "unhealthy-hosts is ALARM since")
        assert r.failed == {"aws.alarms"}, r.explain()
        assert r.verdict("aws.alarms")["measured"]["unhealthy-hosts"] == "ALARM"
    finally:
        for a in original.values():
            cw.put_metric_alarm(**a)
    wait_for("unhealthy-hosts OK again", lambda: state("unhealthy-hosts") == "OK", timeout=20)


# -- backups ----------------------------------------------------------------------------------------------
def test_corrupt_newest_backup(ready_lab: Lab, tmp_path: Path) -> None:
    store = ready_lab.backups()
    before = store.latest().name
    newest = wait_for("a new backup", lambda: (b := store.latest()).name != before and b, 20, poll=0.2)
    whole = store.container.download_blob(newest.name).readall()
    assert gzip.decompress(whole)  # a good backup, cut in half below
    # Named 14 s after the newest real backup: it stays the newest until the job's second next backup
    # (20 s away), long enough for readiness to list it; 14 s is within the schedule's 15 s tolerance.
    at = newest.taken_at.timestamp() + 14
    name = f"backups/backup-{datetime.fromtimestamp(at, UTC):%Y%m%d-%H%M%S}.sql.gz"
    store.container.upload_blob(name, io.BytesIO(whole[: len(whole) // 2]), overwrite=False)
    try:
        r = readiness(ready_lab, tmp_path)
        assert r.verdict("backups.restorable")["data"].get("backup") == name, (
            f"readiness did not list the planted backup as the newest (it took {r.seconds:.1f}s): " + r.explain())
        assert_not_ready(r, "backups.restorable", name, "corrupt")
        assert r.failed == {"backups.restorable"}, r.explain()
    finally:
        store.container.delete_blob(name)


def test_stale_backups(ready_lab: Lab, tmp_path: Path) -> None:
    """Last in the module: the pause leaves a gap in the schedule for the next 2 minutes."""
    store = ready_lab.backups()
    ready_lab.control("/backups/pause")
    try:
        wait_for("the newest backup older than the RPO",
                 lambda: time.time() - store.latest().started_at.timestamp() > RPO_WALL + 0.5, 30)
        r = readiness(ready_lab, tmp_path)
        assert_not_ready(r, "backups.freshness", "old, more than the RPO")
        assert r.failed == {"backups.freshness"}, r.explain()
    finally:
        ready_lab.control("/backups/resume")  # takes a backup at once
    assert time.time() - store.latest().started_at.timestamp() < RPO_WALL
    assert parse_name_time(store.latest().name) is not None

