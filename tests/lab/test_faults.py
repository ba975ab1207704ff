"""The lab's API faults (lab.faults), met by the production SDKs as the drill builds them.

For each surface and fault kind: the SDK sees the real service's error shape (status, error code,
Retry-After); a fault within the SDK's retry budget lets the call succeed, recorded as retried
(drivers.retries); a fault beyond it fails the call with the service's error named, recorded with
its attempt count. Faults are armed through the lab's control endpoint, as the fault matrix does.
The drill-level half (a step failing, the unwind, an empty baseline_diff) is test_fault_matrix.py.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from drill.config import Target
from drivers import retries
from drivers.aws import Aws
from drivers.retries import AWS_MAX_ATTEMPTS, ApiSettings
from lab import topology as T
from lab.client import arm_fault, clear_faults, faults

pytestmark = pytest.mark.lab


@pytest.fixture
def calls(lab: dict[str, Any]) -> Iterator[retries.CallLog]:
    """This test's record of retried and failed calls; no fault rule outlives the test."""
    log = retries.CallLog()
    previous = retries.use(log)
    try:
        yield log
    finally:
        retries.use(previous)
        clear_faults(lab)


def _fast(target: Target, read_timeout: float = 5.0) -> ApiSettings:
    return ApiSettings(connect_timeout=2.0, read_timeout=read_timeout, time_scale=float(target.time_scale))


def _raw_boto(lab: dict[str, Any], service: str, **config: Any) -> Any:
    """A boto3 client that does not retry: what the wire answer is, as botocore parses it."""
    return boto3.client(service, endpoint_url=lab["aws_endpoint"], region_name=lab["region"],
                        aws_access_key_id=lab["aws_access_key_id"], aws_secret_access_key=lab["aws_secret_access_key"],
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config))


# -- control endpoint ---------------------------------------------------------------------------------
def test_a_bad_fault_rule_is_refused_naming_the_field(lab: dict[str, Any], calls: retries.CallLog) -> None:
    with pytest.raises(ValueError, match="kind: terraform cannot answer 'stale'"):
        arm_fault(lab, "terraform", "stale")
    with pytest.raises(ValueError, match="count: 0 is not a positive integer"):
        arm_fault(lab, "aws", "throttle", count=0)
    assert faults(lab) == []


# -- AWS (moto behind the fault gate) -------------------------------------------------------------------
@pytest.mark.parametrize(("service", "call", "code"), [
    ("eks", lambda c: c.describe_cluster(name=T.CLUSTER), "ThrottlingException"),  # rest-json
    ("autoscaling", lambda c: c.describe_auto_scaling_groups(), "Throttling"),  # query
    ("cloudfront", lambda c: c.list_distributions(), "Throttling"),  # rest-xml
])
def test_aws_throttling_is_the_services_own_error(lab: dict[str, Any], calls: retries.CallLog, service: str,
                                                   call: Any, code: str) -> None:
    arm_fault(lab, "aws", "throttle", f"{service}:*")
    with pytest.raises(ClientError) as ei:
        call(_raw_boto(lab, service))
    err = ei.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, 400)
    call(_raw_boto(lab, service))  # one call only: the next is answered
    (rule,) = faults(lab)
    assert len(rule["hits"]) == 1 and rule["remaining"] == 0


def test_aws_throttling_within_the_retry_budget_is_ridden_out_and_recorded(
        lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    aws = Aws(target.aws, _fast(target))
    arm_fault(lab, "aws", "throttle", "eks:DescribeNodegroup", count=2)
    ng = aws.client("eks").describe_nodegroup(clusterName=T.CLUSTER, nodegroupName=T.WAS_NODEGROUP)
    assert ng["nodegroup"]["nodegroupName"] == T.WAS_NODEGROUP
    (c,) = calls.calls()
    assert (c.sdk, c.service, c.operation, c.attempts, c.outcome) == ("botocore", "eks", "DescribeNodegroup", 3, "ok")
    assert c.errors == ["400 ThrottlingException"] * 2


def test_aws_5xx_beyond_the_retry_budget_fails_naming_the_error_and_the_attempts(
        lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    aws = Aws(target.aws, _fast(target))
    arm_fault(lab, "aws", "5xx", "eks:UpdateNodegroupConfig", count=AWS_MAX_ATTEMPTS + 5, status=503)
    with pytest.raises(ClientError) as ei:
        aws.client("eks").update_nodegroup_config(clusterName=T.CLUSTER, nodegroupName=T.WAS_NODEGROUP,
                                                  scalingConfig={"desiredSize": 0, "minSize": 0, "maxSize": 4})
    assert ei.value.response["Error"]["Code"] == "ServiceUnavailableException"
    (c,) = calls.calls()
    assert (c.operation, c.outcome, c.attempts) == ("UpdateNodegroupConfig", "failed", AWS_MAX_ATTEMPTS + 1)  # retries + the first
    assert "503 ServiceUnavailableException" in c.sentence()
    # Not carried out: the node group is as it was.
    ng = aws.client("eks").describe_nodegroup(clusterName=T.CLUSTER, nodegroupName=T.WAS_NODEGROUP)
    assert ng["nodegroup"]["scalingConfig"]["desiredSize"] > 0


def test_aws_hang_is_given_up_after_the_read_timeout_and_retried(
        lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    aws = Aws(target.aws, _fast(target, read_timeout=1.0))
    arm_fault(lab, "aws", "hang", "elbv2:*", seconds=30)
    t0 = time.monotonic()
    groups = aws.client("elbv2").describe_target_groups()["TargetGroups"]
    assert groups and 1.0 <= time.monotonic() - t0 < 15
    (c,) = calls.calls()
    assert (c.outcome, c.attempts, c.errors) == ("ok", 2, ["ReadTimeoutError"])
    with pytest.raises(ReadTimeoutError):  # a client that does not retry sees the hang as it is
        arm_fault(lab, "aws", "hang", "elbv2:*", seconds=30)
        _raw_boto(lab, "elbv2", read_timeout=1).describe_target_groups()


def test_aws_stale_read_gives_the_previous_answer(lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    from drivers.aws import NodeGroups

    asg = _raw_boto(lab, "autoscaling")
    name = NodeGroups(Aws(target.aws)).auto_scaling_groups(T.CLUSTER, T.WAS_NODEGROUP)[0]
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    was = group["DesiredCapacity"]
    asg.describe_auto_scaling_groups()  # another read of the same operation: not this one's previous answer

    def desired() -> int:
        (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return int(g["DesiredCapacity"])

    assert desired() == was  # remembered
    arm_fault(lab, "aws", "stale", "autoscaling:DescribeAutoScalingGroups", count=2)
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=was + 1)
    try:
        assert [desired(), desired(), desired()] == [was, was, was + 1]  # two stale reads, then fresh
    finally:
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=was)


# -- ARM ------------------------------------------------------------------------------------------------
def _network(target: Target, api: ApiSettings) -> Any:
    from drivers.actions import azure_auth
    from drivers.azure_network import make_client

    return make_client(replace(azure_auth(target), api=api))


def test_arm_throttling_is_429_with_retry_after_and_azure_core_honours_it(
        lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    from azure.core.exceptions import HttpResponseError

    assert target.azure is not None
    net = _network(target, _fast(target))
    arm_fault(lab, "arm", "throttle", "GET */virtualNetworks/*", count=2, retry_after=30)
    t0 = time.monotonic()
    vnet = net.virtual_networks.get(target.azure.resource_group, T.AZURE_VNET)
    waited = time.monotonic() - t0
    assert vnet.name == T.AZURE_VNET
    # Retry-After 30 s real is 1 s at the lab's 30×: azure-core waited it out twice.
    assert waited >= 2 * 30 / target.time_scale - 0.1
    (c,) = calls.calls()
    assert (c.sdk, c.outcome, c.attempts) == ("azure-core", "ok", 3)
    assert c.errors == ["429 SubscriptionRequestsThrottled"] * 2
    # Beyond the budget (3 retries): the service's error, named.
    arm_fault(lab, "arm", "throttle", "GET */virtualNetworks/*", count=10, retry_after=1)
    with pytest.raises(HttpResponseError) as ei:
        net.virtual_networks.get(target.azure.resource_group, T.AZURE_VNET)
    assert ei.value.status_code == 429 and ei.value.error is not None
    assert ei.value.error.code == "SubscriptionRequestsThrottled"
    assert getattr(ei.value.response, "headers", {}).get("Retry-After") == "1"
    failed = [c for c in calls.calls() if c.outcome == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 4


def test_arm_5xx_and_hang_are_retried(lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    assert target.azure is not None
    net = _network(target, _fast(target, read_timeout=1.0))
    arm_fault(lab, "arm", "5xx", "GET */virtualNetworks/*", count=1, status=500)
    arm_fault(lab, "arm", "hang", "GET */virtualNetworks/*", count=1, seconds=30)
    assert net.virtual_networks.get(target.azure.resource_group, T.AZURE_VNET).name == T.AZURE_VNET
    (c,) = calls.calls()
    assert c.outcome == "ok" and c.attempts == 3
    assert c.errors[0] == "500 InternalServerError" and c.errors[1] in ("ServiceResponseError", "ServiceResponseTimeoutError")


# -- Blob (Azurite behind the lab's front) -----------------------------------------------------------------
def test_blob_server_busy_is_503_and_the_storage_sdk_retries_it(
        lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    from azure.core.exceptions import HttpResponseError

    from drivers.actions import blob_service

    assert target.azure is not None
    container = blob_service(target).get_container_client(target.azure.storage.backup_container)
    arm_fault(lab, "blob", "throttle", "GET */*?comp=list&restype=container", count=2)
    assert list(container.list_blobs(name_starts_with=target.azure.storage.backup_prefix)) is not None
    (c,) = calls.calls()
    assert (c.sdk, c.outcome, c.attempts, c.errors) == ("azure-storage", "ok", 3, ["503 ServerBusy"] * 2)
    arm_fault(lab, "blob", "throttle", "GET */*?comp=list&restype=container", count=10)
    with pytest.raises(HttpResponseError) as ei:
        list(container.list_blobs())
    assert ei.value.status_code == 503 and getattr(ei.value, "error_code", None) == "ServerBusy"


def test_blob_stale_read_gives_the_previous_answer(lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    from drivers.actions import blob_service

    assert target.azure is not None
    blob = blob_service(target).get_blob_client(target.azure.storage.backup_container, f"fault-test-{time.monotonic_ns()}")
    blob.upload_blob(b"one")
    try:
        assert blob.download_blob().readall() == b"one"
        arm_fault(lab, "blob", "stale", "GET /*/fault-test-*", count=1)
        blob.upload_blob(b"two", overwrite=True)
        assert blob.download_blob().readall() == b"one"  # the previous state, once
        assert blob.download_blob().readall() == b"two"
    finally:
        blob.delete_blob()


# -- Kubernetes API server -------------------------------------------------------------------------------
@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[Any]:
    from lab.kube import KubeApiServer, PetClinicRunner

    s = KubeApiServer(tmp_path, PetClinicRunner(tmp_path / "pods"), time_scale=30.0)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_kube_429_carries_retry_after_and_a_status_and_reads_are_retried(kube_api: Any, calls: retries.CallLog) -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    from drivers.kube import Kube, KubeError

    kube_api.faults.add({"surface": "kube", "kind": "throttle", "match": "GET /api/v1/namespaces/*", "count": 1})
    # urllib3 under the Python client retries a 429 with Retry-After by itself: off, to see the answer.
    cfg = client.Configuration()
    cfg.retries = False
    raw = config.new_client_from_config(str(kube_api.kubeconfig_path), persist_config=False, client_configuration=cfg)
    with pytest.raises(ApiException) as ei:
        client.CoreV1Api(raw).read_namespace("default")
    raw.close()
    headers, body = ei.value.headers or {}, str(ei.value.body)
    assert ei.value.status == 429 and headers["Retry-After"] == "1"
    assert '"reason":"TooManyRequests"' in body and '"retryAfterSeconds":1' in body
    with Kube(kube_api.kubeconfig_path, api=ApiSettings(2.0, 1.0, 30.0)) as k:
        kube_api.faults.add({"surface": "kube", "kind": "throttle", "match": "GET /api/v1/namespaces/*", "count": 2})
        assert k.get("Namespace", None, "default") is not None
        (c,) = calls.calls()
        assert (c.sdk, c.outcome, c.attempts, c.errors) == ("kubernetes", "ok", 3, ["429 TooManyRequests"] * 2)
        kube_api.faults.add({"surface": "kube", "kind": "hang", "match": "GET /api/v1/namespaces/*", "count": 1, "seconds": 30})
        kube_api.faults.add({"surface": "kube", "kind": "5xx", "match": "GET /api/v1/namespaces/*", "count": 1})
        assert k.get("Namespace", None, "default") is not None  # idempotent: retried after no answer and a 500
        kube_api.faults.add({"surface": "kube", "kind": "5xx", "match": "GET /api/v1/namespaces/*", "count": 10})
        with pytest.raises((ApiException, KubeError), match=r"500|InternalError"):
            k.get("Namespace", None, "default")
        assert calls.calls()[-1].outcome == "failed" and calls.calls()[-1].attempts == 5


def test_kube_stale_read(kube_api: Any, calls: retries.CallLog, tmp_path: Path) -> None:
    from drill.ledger import Ledger
    from drivers.kube import Kube

    ledger = Ledger(tmp_path / "ledger.json")
    with Kube(kube_api.kubeconfig_path, api=ApiSettings(2.0, 5.0, 30.0)) as k:
        k.ensure_namespace("stale", ledger)
        k.apply_configmap("stale", "cm", {"v": "1"}, ledger)
        def data() -> Any:
            return (k.get("ConfigMap", "stale", "cm") or {}).get("data")

        assert data() == {"v": "1"}
        kube_api.faults.add({"surface": "kube", "kind": "stale", "match": "GET */configmaps/cm", "count": 1})
        k.apply_configmap("stale", "cm", {"v": "2"}, ledger)
        assert data() == {"v": "1"}
        assert data() == {"v": "2"}


# -- Terraform (the lab's shim and failover stack) ------------------------------------------------------
@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Any, Any, Path, dict[str, str]]]:
    """The lab's failover stack with instant parts, behind its control endpoint, and the `terraform` shim."""
    import secrets

    from lab.control import ControlServer
    from lab.events import EventLog
    from lab.failover_stack import CREATE_SECONDS, FailoverStack, StackParts, write_stack_dir
    from lab.faults import Faults
    from lab.topologies.cloudfront import write_terraform_shim

    made: set[str] = set()

    def creator(address: str) -> Any:
        return lambda variables: made.add(address)

    def destroyer(address: str) -> Any:
        return lambda: made.discard(address)

    parts = StackParts(create={a: creator(a) for a in CREATE_SECONDS}, destroy={a: destroyer(a) for a in CREATE_SECONDS},
                       outputs=lambda present: {"present": ",".join(sorted(present))})
    events = EventLog(tmp_path / "events.jsonl")
    fs = FailoverStack(parts, 3000.0, events, "sub-1")
    faults = Faults(3000.0, events)
    token = secrets.token_urlsafe(8)
    control = ControlServer(fs, token, None, faults).start()
    write_stack_dir(tmp_path / "stack", control.url, token)
    shim = write_terraform_shim(tmp_path / "bin")
    env = {"ARM_SUBSCRIPTION_ID": "sub-1", "TF_VAR_mysql_admin_password": "pw-1", "PATH": "/usr/bin:/bin"}
    try:
        yield fs, faults, shim, env
    finally:
        control.stop()


def _terraform(shim: Path, stack_dir: Path, env: dict[str, str], *args: str) -> Any:
    import subprocess

    return subprocess.run([str(shim), f"-chdir={stack_dir}", *args], env=env, capture_output=True, text=True, timeout=60)


def test_terraform_partial_apply_exits_1_and_the_state_holds_what_was_created(tmp_path: Path, stack: Any) -> None:
    from lab.failover_stack import DATABASE, FIREWALL, MYSQL, PARAMETER

    fs, faults, shim, env = stack
    targets = [f"-target={a}" for a in (MYSQL, DATABASE, FIREWALL, PARAMETER)]
    faults.add({"surface": "terraform", "kind": "partial", "match": "apply", "keep": 2})
    r = _terraform(shim, tmp_path / "stack", env, "apply", "-auto-approve", *targets)
    assert r.returncode == 1
    assert "Error:" in r.stderr and "polling failed" in r.stderr and "InternalServerError" in r.stderr
    state = fs.snapshot()["resources"]
    assert (state[MYSQL], state[DATABASE]) == ("present", "present")  # the first two, in configuration order
    assert state[FIREWALL] == state[PARAMETER] == "failed"
    # Applied again, the failed (tainted) resources are replaced and the apply completes.
    r = _terraform(shim, tmp_path / "stack", env, "apply", "-auto-approve", *targets)
    assert r.returncode == 0, r.stderr
    assert {fs.snapshot()["resources"][a] for a in (MYSQL, DATABASE, FIREWALL, PARAMETER)} == {"present"}
    # A destroy that fails half-way leaves what it did not get to; the next one finishes.
    faults.add({"surface": "terraform", "kind": "partial", "match": "destroy"})
    assert _terraform(shim, tmp_path / "stack", env, "destroy", "-auto-approve").returncode == 1
    assert any(s != "absent" for s in fs.snapshot()["resources"].values())
    assert _terraform(shim, tmp_path / "stack", env, "destroy", "-auto-approve").returncode == 0
    assert set(fs.snapshot()["resources"].values()) == {"absent"}


def test_terraform_throttled_apply_exits_1_with_the_providers_429_and_changes_nothing(tmp_path: Path, stack: Any) -> None:
    from drivers.provisioner import ProvisionerError
    from drivers.retries import is_transient

    fs, faults, shim, env = stack
    faults.add({"surface": "terraform", "kind": "throttle", "match": "apply"})
    r = _terraform(shim, tmp_path / "stack", env, "apply", "-auto-approve")
    assert r.returncode == 1 and "unexpected status 429" in r.stderr and "SubscriptionRequestsThrottled" in r.stderr
    assert set(fs.snapshot()["resources"].values()) == {"absent"}
    assert is_transient(ProvisionerError("terraform apply failed", 1, r.stderr))  # what the unwind may try again
    faults.add({"surface": "terraform", "kind": "5xx", "match": "output"})
    r = _terraform(shim, tmp_path / "stack", env, "output", "-json")
    assert r.returncode == 1 and "unexpected status 500" in r.stderr


def test_an_inverse_is_tried_again_after_the_sdks_retries_give_up_on_a_transient_error(
        lab: dict[str, Any], target: Target, calls: retries.CallLog) -> None:
    """The unwind's executor: a 503 beyond botocore's budget (6 attempts) is transient, so the inverse,
    idempotent, is carried out again instead of leaving the node group changed."""
    from drill.ledger import Action
    from drivers.actions import executor
    from drivers.aws import NodeGroups

    ngs = NodeGroups(Aws(target.aws))
    original = ngs.scaling(T.CLUSTER, T.WAS_NODEGROUP)
    wider = {**original.as_api(), "maxSize": original.max_size + 1}
    seen: list[str] = []
    execute = executor(target, busy_timeout=60.0, log=seen.append)
    arm_fault(lab, "aws", "5xx", "eks:UpdateNodegroupConfig", count=AWS_MAX_ATTEMPTS + 3, status=503)
    where = {"cluster": T.CLUSTER, "nodegroup": T.WAS_NODEGROUP}
    try:
        execute(Action("aws.eks.set_scaling", {**where, "scaling": wider}, "widen the node group"))
        assert ngs.scaling(T.CLUSTER, T.WAS_NODEGROUP).max_size == original.max_size + 1
        assert len(seen) == 1 and "transient failure, trying again" in seen[0] and "ServiceUnavailableException" in seen[0]
        outcomes = [(c.operation, c.outcome, c.attempts) for c in calls.calls()]
        assert outcomes[:2] == [("UpdateNodegroupConfig", "failed", AWS_MAX_ATTEMPTS + 1), ("UpdateNodegroupConfig", "ok", 3)]
    finally:
        clear_faults(lab)
        execute(Action("aws.eks.set_scaling", {**where, "scaling": original.as_api()}, "put it back"))
    assert ngs.scaling(T.CLUSTER, T.WAS_NODEGROUP) == original


def test_kube_a_throttled_read_of_what_is_not_there_is_an_answer_not_a_failure(kube_api: Any, calls: retries.CallLog) -> None:
    from drivers.kube import Kube

    with Kube(kube_api.kubeconfig_path, api=ApiSettings(2.0, 5.0, 30.0)) as k:
        kube_api.faults.add({"surface": "kube", "kind": "throttle", "match": "GET /api/v1/namespaces/*", "count": 2})
        assert k.get("Namespace", None, "not-there") is None
    (c,) = calls.calls()
    assert (c.outcome, c.attempts, c.errors) == ("ok", 3, ["429 TooManyRequests"] * 2)
