"""The AWS drivers against the lab's moto, and the lab's corrections of moto pinned with plain boto3.

moto alone departs from AWS where a driver notices (lab-facts): it rejects an origin group as the
default target, ignores IfMatch, never changes the ETag, is never InProgress, reports invalidations
as COMPLETED, accepts any node group scaling, applies it at once and has no DescribeUpdate, and
reports every target `healthy`. The lab corrects these; the tests below pin the corrected behaviour so drivers written
for real AWS behave the same here.

The lab is shared with the rest of the session: every test that changes the distribution or a node
group puts it back and waits until it has settled again (try/finally), whatever happened.
"""
from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError

from drill.config import Target
from drill.ledger import Ledger
from drivers.actions import executor
from drivers.aws import Aws, CloudFront, LoadBalancing, NodeGroups, Scaling, SizeChanged, error_code
from lab import topology as T
from lab.timing import Timings

pytestmark = pytest.mark.lab

V = TypeVar("V")


# -- helpers -------------------------------------------------------------------------------------
def wait_for(fn: Callable[[], V], timeout: float, what: str, interval: float = 0.25) -> V:
    """Poll `fn` until it returns something truthy; fail with the last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout:.1f}s (last: {value!r})")
        time.sleep(interval)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def code_and_status(e: ClientError) -> tuple[str | None, int]:
    return error_code(e), int(e.response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture(scope="module")
def timings(lab: dict[str, Any]) -> Timings:
    return Timings().scaled(float(lab["time_scale"]))


@pytest.fixture(scope="module")
def aws(target: Target) -> Aws:
    return Aws(target.aws)


@pytest.fixture(scope="module")
def boto(lab: dict[str, Any]) -> Callable[[str], Any]:
    """Plain boto3 clients on the lab's endpoint (no driver in between)."""

    def make(service: str) -> Any:
        return boto3.client(
            service, region_name=lab["region"], endpoint_url=lab["aws_endpoint"],
            aws_access_key_id=lab["aws_access_key_id"], aws_secret_access_key=lab["aws_secret_access_key"],
        )

    return make


@pytest.fixture(scope="module")
def dist_id(target: Target) -> str:
    return target.aws.cloudfront.distribution_id


def restore_distribution(cf: Any, drv: CloudFront, dist: str, original: dict[str, Any], timeout: float) -> None:
    """Put the original config back (with the current ETag) if it changed, then wait until Deployed."""
    current, etag = drv.config(dist)
    if current != original:
        cf.update_distribution(Id=dist, IfMatch=etag, DistributionConfig=original)
    drv.wait_deployed(dist, timeout=timeout, poll=0.5)
    assert drv.config(dist)[0] == original


# -- drivers at steady state ---------------------------------------------------------------------
def test_aws_repr_keeps_credentials_out(aws: Aws, lab: dict[str, Any]) -> None:
    text = repr(aws)
    leaked = lab["aws_secret_access_key"] in text or lab["aws_access_key_id"] in text
    assert not leaked, "Aws repr shows lab credentials"
    assert lab["aws_endpoint"] in text and lab["region"] in text


def test_load_balancing_reports_the_web_replicas_healthy(aws: Aws, target: Target, lab: dict[str, Any]) -> None:
    lb = LoadBalancing(aws)
    tg = target.aws.alb.target_group_arn
    assert tg == lab["target_group_arn"]
    healthy = wait_for(lambda: [t for t in lb.target_health(tg) if t.state == "healthy"], 30, "targets healthy")
    want = NodeGroups(aws).scaling(target.aws.eks.cluster, target.aws.eks.web_nodegroup).desired_size
    assert len(healthy) == want == lb.healthy_count(tg) == T.NODEGROUP_SCALING["desiredSize"]
    assert all(t.target_id.startswith("i-") and isinstance(t.port, int) and t.reason is None for t in healthy)
    assert http_status(lab["alb_url"]) == 200


def test_node_group_driver_reads_the_seeded_scaling(aws: Aws, target: Target) -> None:
    ng = NodeGroups(aws)
    c, web = target.aws.eks.cluster, target.aws.eks.web_nodegroup
    assert ng.scaling(c, web) == Scaling.from_api(T.NODEGROUP_SCALING)
    assert ng.describe(c, web)["labels"] == {"role": "web"}
    assert ng.wait_active(c, web, timeout=30) >= 0


def test_set_desired_refuses_without_a_ledger_or_beyond_max(aws: Aws, target: Target) -> None:
    c, web = target.aws.eks.cluster, target.aws.eks.web_nodegroup
    with pytest.raises(RuntimeError, match="ledger"):
        NodeGroups(aws).set_desired(c, web, 0)
    ledger = Ledger()
    with pytest.raises(ValueError, match="maxSize"):
        NodeGroups(aws, ledger).set_desired(c, web, T.NODEGROUP_SCALING["maxSize"] + 1)
    assert ledger.entries == []  # nothing was recorded for a change that was never attempted


# -- CloudFront ----------------------------------------------------------------------------------
def test_seeded_distribution_targets_the_origin_group(aws: Aws, dist_id: str, lab: dict[str, Any]) -> None:
    drv = CloudFront(aws)
    cfg, _ = drv.config(dist_id)
    assert cfg["DefaultCacheBehavior"]["TargetOriginId"] == T.ORIGIN_GROUP  # moto alone rejects this
    group = drv.origin_group(dist_id)
    assert group is not None and group["Id"] == T.ORIGIN_GROUP
    assert [m["OriginId"] for m in group["Members"]["Items"]] == [T.PRIMARY_ORIGIN, T.SECONDARY_ORIGIN]
    assert sorted(group["FailoverCriteria"]["StatusCodes"]["Items"]) == T.FAILOVER_STATUS_CODES
    assert drv.origin(dist_id, T.PRIMARY_ORIGIN)["DomainName"] == lab["alb_dns_name"]
    assert drv.origin(dist_id, T.SECONDARY_ORIGIN)["DomainName"] == T.BLOB_WEB_HOST
    with pytest.raises(KeyError):
        drv.origin(dist_id, "no-such-origin")
    assert drv.status(dist_id) == "Deployed"
    # A shape the real API accepts: reads fail over through the group; the write paths, ordered
    # behaviors allowing every method, go to the primary directly (and round-trip through moto).
    behaviors = drv.behaviors(dist_id)
    assert [(b.path_pattern, b.target, b.target_is_origin_group) for b in behaviors] == (
        [(p, T.PRIMARY_ORIGIN, False) for p in T.WRITE_PATH_PATTERNS] + [("*", T.ORIGIN_GROUP, True)]
    )
    assert set(behaviors[-1].allowed_methods) == {"GET", "HEAD", "OPTIONS"}
    assert all({"POST", "PUT", "PATCH", "DELETE"} <= set(b.allowed_methods) for b in behaviors[:-1])
    assert drv.behavior_for(dist_id, "/owners/42/pets/7/visits/new").path_pattern == "/owners/*/pets/*/visits/new"
    assert drv.behavior_for(dist_id, "/owners/new").path_pattern == "/owners/new"
    assert drv.behavior_for(dist_id, "/owners/42/edit?x=1").path_pattern == "/owners/*/edit"
    assert drv.behavior_for(dist_id, "/owners/42").path_pattern == "*"


def test_write_methods_on_an_origin_group_behavior_are_refused(
    aws: Aws, boto: Callable[[str], Any], dist_id: str, timings: Timings
) -> None:
    """As UpdateDistribution/CreateDistribution refuse it: 400 InvalidArgument, which boto3 raises as
    `cf.exceptions.InvalidArgument`; a refused update changes nothing."""
    cf, drv = boto("cloudfront"), CloudFront(aws)
    original, etag = drv.config(dist_id)
    every = {"Quantity": 7, "Items": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
             "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}
    message = ("The parameter AllowedMethods cannot include POST, PUT, PATCH, or DELETE for a cached behavior "
               "associated with an origin group.")
    try:
        default_writes = copy.deepcopy(original)
        default_writes["DefaultCacheBehavior"]["AllowedMethods"] = copy.deepcopy(every)
        ordered_to_group = copy.deepcopy(original)
        ordered_to_group["CacheBehaviors"]["Items"][0]["TargetOriginId"] = T.ORIGIN_GROUP  # keeps every method
        for bad in (default_writes, ordered_to_group):
            with pytest.raises(cf.exceptions.InvalidArgument) as ei:
                cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=bad)
            assert code_and_status(ei.value) == ("InvalidArgument", 400)
            assert ei.value.response["Error"]["Message"] == message
            new = copy.deepcopy(bad)
            new["CallerReference"] = f"lab-test-{secrets.token_hex(4)}"
            with pytest.raises(cf.exceptions.InvalidArgument):
                cf.create_distribution(DistributionConfig=new)
        # An ordered behavior's target must exist too (moto checks only the default's).
        unknown = copy.deepcopy(original)
        unknown["CacheBehaviors"]["Items"][0]["TargetOriginId"] = "no-such-origin"
        with pytest.raises(ClientError) as ei:
            cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=unknown)
        assert code_and_status(ei.value) == ("NoSuchOrigin", 404)
        # Origin timeouts and attempts outside the API's ranges (the edge relies on them).
        for field, value, code in (("ConnectionAttempts", 4, "InvalidArgument"), ("ConnectionTimeout", 11, "InvalidArgument"),
                                   ("OriginReadTimeout", 0, "InvalidOriginReadTimeout"),
                                   ("ResponseCompletionTimeout", 29, "InvalidArgument")):  # < OriginReadTimeout 30
            bad = copy.deepcopy(original)
            origin = bad["Origins"]["Items"][0]
            (origin["CustomOriginConfig"] if field == "OriginReadTimeout" else origin)[field] = value
            with pytest.raises(ClientError) as ei:
                cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=bad)
            assert code_and_status(ei.value) == (code, 400), field
        assert drv.config(dist_id) == (original, etag) and drv.status(dist_id) == "Deployed"

        # Read methods on an ordered behavior that targets the group: accepted, and round-trips.
        reads = copy.deepcopy(original)
        reads["CacheBehaviors"]["Items"][0]["TargetOriginId"] = T.ORIGIN_GROUP
        reads["CacheBehaviors"]["Items"][0]["AllowedMethods"] = {
            "Quantity": 3, "Items": ["GET", "HEAD", "OPTIONS"], "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}
        reads["Origins"]["Items"][0]["ResponseCompletionTimeout"] = 60  # moto alone drops it
        etag2 = cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=reads)["ETag"]
        assert drv.config(dist_id) == (reads, etag2)
        assert drv.behaviors(dist_id)[0].target_is_origin_group
    finally:
        restore_distribution(cf, drv, dist_id, original, timeout=timings.cloudfront_deploy_seconds * 3)


def test_invalid_target_origin_is_still_rejected(aws: Aws, boto: Callable[[str], Any], dist_id: str, timings: Timings) -> None:
    cf, drv = boto("cloudfront"), CloudFront(aws)
    original, etag = drv.config(dist_id)
    try:
        bad = copy.deepcopy(original)
        bad["DefaultCacheBehavior"]["TargetOriginId"] = "no-such-origin"
        with pytest.raises(ClientError) as ei:
            cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=bad)
        assert code_and_status(ei.value) == ("NoSuchOrigin", 404)

        bad_new = copy.deepcopy(original)
        bad_new["CallerReference"] = f"lab-test-{secrets.token_hex(4)}"
        bad_new["DefaultCacheBehavior"]["TargetOriginId"] = "no-such-group"
        with pytest.raises(ClientError) as ei:
            cf.create_distribution(DistributionConfig=bad_new)
        assert code_and_status(ei.value) == ("NoSuchOrigin", 404)

        after, etag_after = drv.config(dist_id)
        assert (after, etag_after) == (original, etag)  # a rejected update changes nothing
        assert drv.status(dist_id) == "Deployed"
    finally:
        restore_distribution(cf, drv, dist_id, original, timeout=timings.cloudfront_deploy_seconds * 3)


@pytest.mark.parametrize("address", ["20.41.0.12", "127.0.0.1", "2001:db8::7"])
def test_an_ip_address_as_origin_domain_is_refused(
    aws: Aws, boto: Callable[[str], Any], dist_id: str, timings: Timings, address: str,
) -> None:
    # CloudFront: "Your origin domain must have a publicly resolvable DNS name" (Origin settings);
    # the API answers 400 InvalidArgument, which boto3 raises as its modeled InvalidArgument class.
    cf, drv = boto("cloudfront"), CloudFront(aws)
    original, etag = drv.config(dist_id)
    try:
        bad = copy.deepcopy(original)
        next(o for o in bad["Origins"]["Items"] if o["Id"] == T.SECONDARY_ORIGIN)["DomainName"] = address
        with pytest.raises(cf.exceptions.InvalidArgument) as ei:
            cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=bad)
        assert code_and_status(ei.value) == ("InvalidArgument", 400)
        assert "cannot be an IP address" in str(ei.value)
        bad["CallerReference"] = f"lab-test-{secrets.token_hex(4)}"
        with pytest.raises(cf.exceptions.InvalidArgument):
            cf.create_distribution(DistributionConfig=bad)
        # The driver's ledgered change is refused the same way, and nothing changed.
        with pytest.raises(ClientError) as ei:
            CloudFront(aws, Ledger()).set_origin(dist_id, T.SECONDARY_ORIGIN, address, "http-only")
        assert error_code(ei.value) == "InvalidArgument"
        assert drv.config(dist_id) == (original, etag)
    finally:
        restore_distribution(cf, drv, dist_id, original, timeout=timings.cloudfront_deploy_seconds * 3)


def test_update_needs_the_current_etag_and_deploys_with_delay(
    aws: Aws, boto: Callable[[str], Any], dist_id: str, timings: Timings
) -> None:
    cf, drv = boto("cloudfront"), CloudFront(aws)
    deploy_bound = timings.cloudfront_deploy_seconds * 3
    original, etag0 = drv.config(dist_id)
    assert drv.status(dist_id) == "Deployed"
    try:
        # A wrong IfMatch is refused before anything changes.
        with pytest.raises(ClientError) as ei:
            cf.update_distribution(Id=dist_id, IfMatch="E" + etag0[::-1], DistributionConfig=original)
        assert code_and_status(ei.value) == ("PreconditionFailed", 412)
        assert drv.config(dist_id)[1] == etag0

        changed = copy.deepcopy(original)
        changed["Comment"] = f"lab test {secrets.token_hex(4)}"
        t0 = time.monotonic()
        r = cf.update_distribution(Id=dist_id, IfMatch=etag0, DistributionConfig=changed)
        etag1 = r["ETag"]
        assert etag1 and etag1 != etag0
        assert r["Distribution"]["DistributionConfig"]["Comment"] == changed["Comment"]
        assert drv.status(dist_id) == "InProgress"
        assert drv.config(dist_id) == (changed, etag1)
        # The group target survived the update round trip.
        assert drv.config(dist_id)[0]["DefaultCacheBehavior"]["TargetOriginId"] == T.ORIGIN_GROUP

        # The ETag read before the update is stale now.
        with pytest.raises(ClientError) as ei:
            cf.update_distribution(Id=dist_id, IfMatch=etag0, DistributionConfig=original)
        assert code_and_status(ei.value) == ("PreconditionFailed", 412)
        assert drv.config(dist_id) == (changed, etag1)

        waited = drv.wait_deployed(dist_id, timeout=deploy_bound, poll=0.5)
        took = time.monotonic() - t0
        assert drv.status(dist_id) == "Deployed"
        # Deployed after the modeled delay, not at once.
        assert took >= timings.cloudfront_deploy_seconds * 0.9 and waited > 0
        assert drv.config(dist_id)[1] == etag1  # deploying does not change the ETag
    finally:
        restore_distribution(cf, drv, dist_id, original, timeout=deploy_bound)
    assert drv.config(dist_id)[1] not in (etag0, etag1)  # the restore was an update too


def test_invalidation_is_in_progress_then_completed(
    aws: Aws, boto: Callable[[str], Any], dist_id: str, timings: Timings
) -> None:
    cf, drv = boto("cloudfront"), CloudFront(aws)
    etag = drv.config(dist_id)[1]
    inv_id = drv.invalidate(dist_id, ["/*"])
    assert drv.invalidation_status(dist_id, inv_id) == "InProgress"
    t0 = time.monotonic()
    attempts = int(timings.cloudfront_invalidation_seconds * 3) + 5
    cf.get_waiter("invalidation_completed").wait(
        DistributionId=dist_id, Id=inv_id, WaiterConfig={"Delay": 1, "MaxAttempts": attempts}
    )
    assert time.monotonic() - t0 >= timings.cloudfront_invalidation_seconds * 0.5
    inv = cf.get_invalidation(DistributionId=dist_id, Id=inv_id)["Invalidation"]
    assert inv["Status"] == "Completed"
    assert inv["InvalidationBatch"]["Paths"]["Items"] == ["/*"]
    assert drv.invalidation_status(dist_id, inv_id) == "Completed"
    # An invalidation is not a configuration change.
    assert drv.config(dist_id)[1] == etag and drv.status(dist_id) == "Deployed"


# -- EKS -----------------------------------------------------------------------------------------
def test_node_group_scaling_is_validated(boto: Callable[[str], Any], aws: Aws, target: Target) -> None:
    eks = boto("eks")
    c, web = target.aws.eks.cluster, target.aws.eks.web_nodegroup
    NodeGroups(aws).wait_active(c, web, timeout=60)
    before = eks.describe_nodegroup(clusterName=c, nodegroupName=web)["nodegroup"]["scalingConfig"]
    for bad in (
        {"minSize": 1, "maxSize": 4, "desiredSize": 5},  # desired > max
        {"desiredSize": before["maxSize"] + 1},  # desired > max (max unchanged)
        {"minSize": 3, "maxSize": 4, "desiredSize": 2},  # min > desired
    ):
        with pytest.raises(ClientError) as ei:
            eks.update_nodegroup_config(clusterName=c, nodegroupName=web, scalingConfig=bad)
        assert code_and_status(ei.value) == ("InvalidParameterException", 400), bad
    ng = eks.describe_nodegroup(clusterName=c, nodegroupName=web)["nodegroup"]
    assert (ng["scalingConfig"], ng["status"]) == (before, "ACTIVE")  # rejected: nothing changed


def test_describe_update_follows_a_scaling_update_in_progress_to_successful(
    boto: Callable[[str], Any], aws: Aws, target: Target, timings: Timings
) -> None:
    """DescribeUpdate through boto3 (moto alone 404s): InProgress, the node group UPDATING and refusing
    another update, then Successful with the Auto Scaling group at its new size. On the `was` node
    group, whose instances no lab tier runs: its group converges at once."""
    eks, autoscaling, ngs = boto("eks"), boto("autoscaling"), NodeGroups(aws)
    c, was = target.aws.eks.cluster, T.WAS_NODEGROUP
    original = ngs.scaling(c, was)
    (group,) = ngs.auto_scaling_groups(c, was)
    bigger = {**original.as_api(), "desiredSize": original.desired_size + 1}
    try:
        r = eks.update_nodegroup_config(clusterName=c, nodegroupName=was, scalingConfig=bigger)["update"]
        assert (r["status"], r["type"], r["errors"]) == ("InProgress", "ConfigUpdate", [])
        assert {p["type"]: p["value"] for p in r["params"]} == {k[0].upper() + k[1:]: str(v) for k, v in bigger.items()}
        u = eks.describe_update(name=c, updateId=r["id"], nodegroupName=was)["update"]
        assert (u["id"], u["status"]) == (r["id"], "InProgress")
        assert ngs.status(c, was) == "UPDATING"
        with pytest.raises(ClientError) as ei:  # one update at a time
            eks.update_nodegroup_config(clusterName=c, nodegroupName=was, scalingConfig=original.as_api())
        assert code_and_status(ei.value) == ("ResourceInUseException", 409)
        assert r["id"] in eks.list_updates(name=c, nodegroupName=was)["updateIds"]
        with pytest.raises(ClientError) as ei:
            eks.describe_update(name=c, updateId="00000000-0000-0000-0000-000000000000", nodegroupName=was)
        assert code_and_status(ei.value) == ("ResourceNotFoundException", 404)

        done = ngs.wait_update(c, was, r["id"], timeout=timings.nodegroup_update_seconds * 5 + 5, poll=0.1)
        assert (done.status, done.errors) == ("Successful", [])
        assert ngs.status(c, was) == "ACTIVE"
        g = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) == (original.min_size, original.max_size, bigger["desiredSize"])
        assert ngs.instances(c, was).settled_at(bigger["desiredSize"])
    finally:
        update = ngs.apply_scaling(c, was, original, busy_timeout=30)
        ngs.wait_update(c, was, update, timeout=30, poll=0.1)
    assert ngs.scaling(c, was) == original and ngs.instances(c, was).settled_at(original.desired_size)


def test_a_size_changed_behind_the_drill_is_reported(boto: Callable[[str], Any], aws: Aws, target: Target) -> None:
    """A Cluster Autoscaler sets the Auto Scaling group's desired capacity; EKS shows it as desiredSize.
    It is said once the other size has held for the consistency window (a stale read is not a change)."""
    autoscaling, ngs = boto("autoscaling"), NodeGroups(aws, consistency_seconds=1.0)
    c, was = target.aws.eks.cluster, T.WAS_NODEGROUP
    original = ngs.scaling(c, was)
    (group,) = ngs.auto_scaling_groups(c, was)
    ngs.check_size(c, was, original.desired_size)  # holds
    try:
        autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=original.desired_size + 1)
        assert ngs.scaling(c, was).desired_size == original.desired_size + 1
        with pytest.raises(SizeChanged, match=r"Cluster Autoscaler.*") as ei:
            ngs.check_size(c, was, original.desired_size)
        assert f"desiredSize {original.desired_size + 1}" in str(ei.value)
        t0 = time.monotonic()
        with pytest.raises(SizeChanged):  # said after the consistency window, not after the timeout
            ngs.wait_nodes(c, was, original.desired_size, timeout=30, poll=0.1)
        assert 1.0 <= time.monotonic() - t0 < 5
    finally:
        autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=original.desired_size)
    assert ngs.scaling(c, was) == original


def test_scale_web_down_and_unwind_the_ledger(
    boto: Callable[[str], Any], target: Target, lab: dict[str, Any], timings: Timings, tmp_path: Path
) -> None:
    """One cycle (~15 s): scale to 0 through the ledger; the update completes while the nodes are
    still there; the pods stop serving at the start of the drain while their instances stay registered;
    unwind; the old nodes terminate, the new ones boot and get traffic only once healthy."""
    c, web, tg = target.aws.eks.cluster, target.aws.eks.web_nodegroup, target.aws.alb.target_group_arn
    aws = Aws(target.aws)  # its own clients: the spy below must not leak into other tests
    eks, lb = boto("eks"), LoadBalancing(aws)
    ledger = Ledger(tmp_path / "ledger.json")
    ngs = NodeGroups(aws, ledger)
    ngs.wait_active(c, web, timeout=60)
    original = ngs.scaling(c, web)
    assert original.desired_size > 0 and lb.healthy_count(tg) == original.desired_size
    old_nodes = ngs.instances(c, web)
    assert old_nodes.settled_at(original.desired_size)

    # Spy on the API call: the ledger must already hold the inverse, on disk, when it is made.
    seen_at_call: list[dict[str, Any]] = []
    real_update = ngs.eks.update_nodegroup_config

    def spy(**kw: Any) -> Any:
        seen_at_call.append({"kw": kw, "disk": json.loads(ledger.path.read_text())})
        return real_update(**kw)

    ngs.eks.update_nodegroup_config = spy  # instance attribute: only this driver object
    settle = timings.nodegroup_update_seconds * 3 + timings.node_drain_seconds + timings.node_boot_seconds + 30
    poll = 0.05
    try:
        entry = ngs.set_desired(c, web, 0, busy_timeout=30)
        [call] = seen_at_call
        assert call["kw"]["scalingConfig"] == {"minSize": 0, "maxSize": original.max_size, "desiredSize": 0}
        [on_disk] = call["disk"]["entries"]
        assert on_disk["state"] == "pending"
        assert on_disk["inverse"]["op"] == "aws.eks.set_scaling"
        assert on_disk["inverse"]["params"] == {"cluster": c, "nodegroup": web, "scaling": original.as_api()}
        assert entry.state == "applied" and entry.applied_at is not None
        assert json.loads(ledger.path.read_text())["entries"][0]["state"] == "applied"

        # The update is in progress: the node group is busy and refuses another update.
        update_id = ngs.updates[(c, web)]
        assert ngs.describe_update(c, web, update_id).status == "InProgress"
        assert ngs.status(c, web) == "UPDATING"
        with pytest.raises(ClientError) as ei:
            eks.update_nodegroup_config(
                clusterName=c, nodegroupName=web, scalingConfig={"minSize": 0, "maxSize": original.max_size, "desiredSize": 1}
            )
        assert code_and_status(ei.value) == ("ResourceInUseException", 409)

        # Successful, ACTIVE — and the nodes are all still there: "Successful" is not "gone".
        done = ngs.wait_update(c, web, update_id, timeout=timings.nodegroup_update_seconds * 5 + 5, poll=poll)
        assert done.status == "Successful" and ngs.status(c, web) == "ACTIVE"
        nodes = ngs.instances(c, web)
        assert nodes.desired_capacity == 0 and set(nodes.lifecycle) == set(old_nodes.lifecycle)
        assert set(nodes.lifecycle.values()) <= {"InService", "Terminating:Wait"}

        # The pods are evicted near the start of the drain: the ALB's registered targets refuse
        # connections (502) while the instances are still in the group and still registered.
        t_done = time.monotonic()
        wait_for(lambda: http_status(lab["alb_url"]) == 502, timings.pod_eviction_seconds + 2, "ALB answering 502", 0.02)
        evicted_after = time.monotonic() - t_done
        registered = {t.target_id: t.state for t in lb.target_health(tg)}
        assert set(registered) == set(old_nodes.lifecycle) and "draining" not in registered.values()
        assert set(ngs.instances(c, web).lifecycle.values()) == {"Terminating:Wait"}
        assert evicted_after < timings.node_drain_seconds / 2  # near the start, far from the termination

        # Unwind now, mid-drain, as an interrupted drill would, through the executor a later
        # `drill unwind` uses.
        t0 = time.monotonic()
        failures = ledger.unwind(executor(target, busy_timeout=30))
        assert failures == [] and time.monotonic() - t0 < 5
        assert entry.state == "undone" and ledger.outstanding() == []
        assert ngs.scaling(c, web) == original

        # The old nodes finish draining and terminate (their targets drain); new ones boot, register
        # `initial` and get no traffic until their first health check passes.
        wait_for(lambda: not set(ngs.instances(c, web).lifecycle) & set(old_nodes.lifecycle), settle, "old nodes terminated")
        states = {t.target_id: t for t in lb.target_health(tg)}
        assert {i for i, t in states.items() if t.state == "draining"} == set(old_nodes.lifecycle)
        assert all(states[i].reason == "Target.DeregistrationInProgress" for i in old_nodes.lifecycle)
        initial_answers: list[int] = []

        def only_initial() -> bool:
            live = [t for t in lb.target_health(tg) if t.state != "draining"]
            return bool(live) and all(t.state == "initial" for t in live)

        deadline = time.monotonic() + settle
        while lb.healthy_count(tg) == 0 and time.monotonic() < deadline:
            if only_initial():
                code = http_status(lab["alb_url"])
                if only_initial():
                    initial_answers.append(code)
            time.sleep(poll)
        assert initial_answers and set(initial_answers) == {503}, initial_answers  # `initial`: no traffic
        wait_for(lambda: lb.healthy_count(tg) == original.desired_size, timings.node_boot_seconds + 10, "targets healthy")
        new_nodes = ngs.wait_nodes(c, web, original.desired_size, timeout=settle, poll=poll)
        assert set(new_nodes.lifecycle).isdisjoint(old_nodes.lifecycle)
        assert {t.target_id for t in lb.target_health(tg) if t.state == "healthy"} == set(new_nodes.lifecycle)
        assert http_status(lab["alb_url"]) == 200
    finally:
        # Whatever happened above: the original scaling, every replica healthy, ALB 200.
        if ledger.outstanding():
            ledger.unwind(executor(target, busy_timeout=settle))
        if ngs.scaling(c, web) != original:
            ngs.apply_scaling(c, web, original, busy_timeout=settle)
        ngs.wait_nodes(c, web, original.desired_size, timeout=settle, poll=0.25)
        wait_for(lambda: lb.healthy_count(tg) == original.desired_size, settle, "web tier restored")
        wait_for(lambda: http_status(lab["alb_url"]) == 200, 10, "ALB serving again")


# -- ALB -----------------------------------------------------------------------------------------
class _TestTarget:
    """An HTTP server in this process, registered as an instance target: it logs what it gets."""

    BODY = b"<title>test target</title>"

    def __init__(self) -> None:
        from lab.httpfwd import Request, Response, Server
        from lab.ports import free_port

        self.health_status = 200
        self.checks: list[tuple[float, int]] = []  # (monotonic, status answered)
        self.requests: list[str] = []

        def handle(req: Request) -> Response:
            if req.path == "/actuator/health":
                status = self.health_status
                self.checks.append((time.monotonic(), status))
                return Response(status, [("Content-Type", "text/plain")], b"UP")
            self.requests.append(req.path)
            return Response(200, [("Content-Type", "text/html")], self.BODY)

        self.server = Server(free_port(), handle).start()
        self.port = self.server.port

    def streak_before(self, mono: float) -> tuple[int, int]:
        """(status, how many checks in a row answered it) up to the instant `mono`."""
        answered = [status for t, status in self.checks if t <= mono]
        n = 0
        for status in reversed(answered):
            if status != answered[-1]:
                break
            n += 1
        return answered[-1], n


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def test_alb_health_checks_follow_the_target_groups_settings(
    boto: Callable[[str], Any], lab: dict[str, Any], target: Target
) -> None:
    """Through boto3: a target registered in the lab's target group is `initial` and gets no traffic
    until its first check passes, which makes it healthy whatever HealthyThresholdCount says; it is
    out after exactly UnhealthyThresholdCount failures and back after HealthyThresholdCount passes;
    checks come HealthCheckIntervalSeconds apart; a deregistered target drains for the target
    group's delay — each as modify_target_group(_attributes) last set it."""
    from lab.events import read_events

    elb, ec2 = boto("elbv2"), boto("ec2")
    tg = target.aws.alb.target_group_arn
    scale = float(lab["time_scale"])
    before = elb.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg)["Attributes"]}
    iid = ec2.run_instances(ImageId="ami-0e2b6f1b4c9a7d3e5", MinCount=1, MaxCount=1, InstanceType="t3.medium")["Instances"][0]["InstanceId"]
    t = _TestTarget()

    def state() -> tuple[str | None, str | None]:
        for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]:
            if d["Target"]["Id"] == iid:
                return d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")
        return None, None

    def became(state_name: str, after: float) -> float:
        """When the lab's ALB turned the target `state_name` (its event log's monotonic clock)."""
        evs = [e for e in read_events(Path(lab["events_path"]))
               if e["event"] == f"target {state_name}" and e.get("instance") == iid and e["mono"] > after]
        assert evs, f"no 'target {state_name}' event"
        return float(evs[0]["mono"])

    t_start = time.monotonic()
    try:
        # Interval 60 s (2 s here): a window to send requests while the new target is `initial`.
        elb.modify_target_group(TargetGroupArn=tg, HealthCheckIntervalSeconds=60, HealthCheckTimeoutSeconds=2,
                                HealthyThresholdCount=10, UnhealthyThresholdCount=3)
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid, "Port": t.port}])
        wait_for(lambda: state()[0] == "initial", 2, "registered initial", 0.02)
        answers: list[tuple[int, bytes]] = []
        while state()[0] == "initial":
            answer = fetch(lab["alb_url"])
            if state()[0] == "initial":
                answers.append(answer)
        assert len(answers) >= 5
        assert {code for code, _ in answers} == {200} and not any(_TestTarget.BODY in body for _, body in answers)
        wait_for(lambda: state() == ("healthy", None), 2, "healthy", 0.02)
        assert t.streak_before(became("healthy", t_start)) == (200, 1)  # one check, though the threshold is 10
        for _ in range(12):  # healthy: it gets its share
            fetch(lab["alb_url"])
        assert t.requests

        # Failures: out after exactly UnhealthyThresholdCount (3); back after HealthyThresholdCount (2).
        elb.modify_target_group(TargetGroupArn=tg, HealthCheckIntervalSeconds=5, HealthyThresholdCount=2)
        t.health_status = 503
        t_fail = time.monotonic()
        wait_for(lambda: state()[0] == "unhealthy", 60 / scale + 3, "unhealthy", 0.02)
        assert state()[1] == "Target.ResponseCodeMismatch"
        assert t.streak_before(became("unhealthy", t_fail)) == (503, 3)
        t.health_status = 200
        t_ok = time.monotonic()
        wait_for(lambda: state()[0] == "healthy", 3, "healthy again", 0.02)
        assert t.streak_before(became("healthy", t_ok)) == (200, 2)
        # …and the checks came HealthCheckIntervalSeconds (5 s) apart.
        times = [m for m, _ in t.checks if m > t_fail + 60 / scale]
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        assert gaps and gaps[len(gaps) // 2] == pytest.approx(5 / scale, rel=0.4), gaps

        # Deregistered: draining for the delay set (30 s: 1 s here), no new requests, then gone.
        elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": iid, "Port": t.port}])
        wait_for(lambda: state()[0] == "draining", 1, "draining", 0.02)
        served = len(t.requests)
        for _ in range(6):
            assert fetch(lab["alb_url"])[0] == 200
        assert len(t.requests) == served
        wait_for(lambda: state()[0] is None, 30 / scale + 2, "deregistration complete")
    finally:
        if state()[0] not in (None, "draining"):
            elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": iid, "Port": t.port}])
        elb.modify_target_group(
            TargetGroupArn=tg, HealthCheckIntervalSeconds=before["HealthCheckIntervalSeconds"],
            HealthCheckTimeoutSeconds=before["HealthCheckTimeoutSeconds"],
            HealthyThresholdCount=before["HealthyThresholdCount"], UnhealthyThresholdCount=before["UnhealthyThresholdCount"],
        )
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(attrs["deregistration_delay.timeout_seconds"])}])
        wait_for(lambda: state()[0] is None, 30 / scale + 2, "test target gone")
        ec2.terminate_instances(InstanceIds=[iid])
        t.server.stop()
    after = elb.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]
    assert after == before


# -- Secrets Manager -----------------------------------------------------------------------------
def test_db_secret_holds_username_and_password(boto: Callable[[str], Any], lab: dict[str, Any]) -> None:
    sm = boto("secretsmanager")
    meta = sm.describe_secret(SecretId=T.DB_SECRET_NAME)
    assert meta["Name"] == T.DB_SECRET_NAME
    value = json.loads(sm.get_secret_value(SecretId=T.DB_SECRET_NAME)["SecretString"])
    # The password never reaches an assertion: pytest would print it on failure.
    password = value.pop("password", None)
    password_ok = isinstance(password, str) and len(password) >= 16
    matches_rds = password_ok and secrets.compare_digest(str(password), str(lab["rds_password"]))
    del password
    assert password_ok, "secret has no usable password"
    assert matches_rds, "secret password is not the RDS password"
    assert (value["username"], value["dbname"], value["port"]) == (T.DB_USER, T.DB_NAME, lab["rds_port"])
