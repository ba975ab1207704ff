"""The AWS drivers against the lab's moto, and the lab's corrections of moto pinned with plain boto3.

moto alone departs from AWS where a driver notices (lab-facts): it rejects an origin group as the
default target, ignores IfMatch, never changes the ETag, is never InProgress, reports invalidations
as COMPLETED, accepts any node group scaling and is never UPDATING, and reports every target
`healthy`. The lab corrects these; the tests below pin the corrected behaviour so drivers written
for real AWS behave the same here.

The lab is shared with the rest of the session: every test that changes the distribution or a node
group puts it back and waits until it has settled again (try/finally), whatever happened.
"""
from __future__ import annotations

import copy
import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError

from drill.config import Target
from drill.ledger import Ledger
from drivers.actions import executor
from drivers.aws import Aws, CloudFront, LoadBalancing, NodeGroups, Scaling, error_code
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


def test_scaling_a_node_group_no_lab_tier_runs_settles(boto: Callable[[str], Any], aws: Aws, target: Target) -> None:
    """The `was` node group has no emulated nodes: an update must not leave it UPDATING for ever."""
    eks, ngs = boto("eks"), NodeGroups(aws)
    c, was = target.aws.eks.cluster, T.WAS_NODEGROUP
    original = ngs.scaling(c, was)
    try:
        eks.update_nodegroup_config(
            clusterName=c, nodegroupName=was, scalingConfig={**original.as_api(), "desiredSize": original.desired_size + 1}
        )
        ngs.wait_active(c, was, timeout=30)
        assert ngs.scaling(c, was).desired_size == original.desired_size + 1
    finally:
        ngs.apply_scaling(c, was, original, busy_timeout=30)
        ngs.wait_active(c, was, timeout=30)
    assert ngs.scaling(c, was) == original


def test_scale_web_down_and_unwind_the_ledger(
    boto: Callable[[str], Any], target: Target, lab: dict[str, Any], timings: Timings, tmp_path: Path
) -> None:
    """One cycle (~20 s): scale to 0 through the ledger, see the replicas go, unwind, see them back."""
    c, web, tg = target.aws.eks.cluster, target.aws.eks.web_nodegroup, target.aws.alb.target_group_arn
    aws = Aws(target.aws)  # its own clients: the spy below must not leak into other tests
    eks, lb = boto("eks"), LoadBalancing(aws)
    ledger = Ledger(tmp_path / "ledger.json")
    ngs = NodeGroups(aws, ledger)
    ngs.wait_active(c, web, timeout=60)
    original = ngs.scaling(c, web)
    assert original.desired_size > 0 and lb.healthy_count(tg) == original.desired_size

    # Spy on the API call: the ledger must already hold the inverse, on disk, when it is made.
    seen_at_call: list[dict[str, Any]] = []
    real_update = ngs.eks.update_nodegroup_config

    def spy(**kw: Any) -> Any:
        seen_at_call.append({"kw": kw, "disk": json.loads(ledger.path.read_text())})  # type: ignore[union-attr]
        return real_update(**kw)

    ngs.eks.update_nodegroup_config = spy  # instance attribute: only this driver object
    settle = timings.node_drain_seconds + timings.node_boot_seconds + 10 * timings.alb_health_interval_seconds + 20
    try:
        entry = ngs.set_desired(c, web, 0, busy_timeout=30)
        [call] = seen_at_call
        assert call["kw"]["scalingConfig"] == {"minSize": 0, "maxSize": original.max_size, "desiredSize": 0}
        [on_disk] = call["disk"]["entries"]
        assert on_disk["state"] == "pending"
        assert on_disk["inverse"]["op"] == "aws.eks.set_scaling"
        assert on_disk["inverse"]["params"] == {"cluster": c, "nodegroup": web, "scaling": original.as_api()}
        assert entry.state == "applied" and entry.applied_at is not None
        assert json.loads(ledger.path.read_text())["entries"][0]["state"] == "applied"  # type: ignore[union-attr]

        # Nodes are draining: the node group is busy and refuses another update.
        assert ngs.status(c, web) == "UPDATING"
        with pytest.raises(ClientError) as ei:
            eks.update_nodegroup_config(
                clusterName=c, nodegroupName=web, scalingConfig={"minSize": 0, "maxSize": original.max_size, "desiredSize": 1}
            )
        assert code_and_status(ei.value) == ("ResourceInUseException", 409)
        assert ngs.scaling(c, web).desired_size == 0

        # Unwind now, mid-drain, as an interrupted drill would, through the executor a later
        # `drill unwind` uses: the node group is still UPDATING (it just refused an update), so
        # the inverse only goes through by retrying past ResourceInUse until the drain is over.
        assert ngs.status(c, web) == "UPDATING"
        t0 = time.monotonic()
        failures = ledger.unwind(executor(target, busy_timeout=30))
        unwind_seconds = time.monotonic() - t0
        assert failures == []
        assert entry.state == "undone" and ledger.outstanding() == []
        assert ngs.scaling(c, web) == original
        assert unwind_seconds < timings.node_drain_seconds + 5

        # The old replicas really stopped: their targets drain, none is healthy, and while the new
        # nodes boot the ALB has nothing to route to.
        states = wait_for(
            lambda: (lambda s: s if s and all(x.state == "draining" for x in s) else None)(lb.target_health(tg)),
            3, "all targets draining",
        )
        old_ids = {t.target_id for t in states}
        assert len(old_ids) == original.desired_size
        assert all(t.reason == "Target.DeregistrationInProgress" for t in states)
        assert lb.healthy_count(tg) == 0
        assert wait_for(lambda: http_status(lab["alb_url"]) == 503, 3, "ALB answering 503")
        assert ngs.status(c, web) == "UPDATING"  # booting the restored nodes

        # New nodes boot, register `initial`, then pass the healthy threshold; the ALB serves again.
        initial = wait_for(
            lambda: [t for t in lb.target_health(tg) if t.target_id not in old_ids and t.state == "initial"],
            timings.node_boot_seconds + 10, "new targets registered `initial`",
        )
        assert initial[0].reason == "Elb.RegistrationInProgress"
        healthy = wait_for(
            lambda: lb.healthy_count(tg) == original.desired_size,
            (timings.alb_healthy_threshold + 5) * timings.alb_health_interval_seconds + 10, "targets healthy",
        )
        assert healthy
        ngs.wait_active(c, web, timeout=5)
        assert {t.target_id for t in lb.target_health(tg) if t.state == "healthy"}.isdisjoint(old_ids)
        assert http_status(lab["alb_url"]) == 200
    finally:
        # Whatever happened above: the original scaling, ACTIVE, every replica healthy, ALB 200.
        if ledger.outstanding():
            ledger.unwind(executor(target, busy_timeout=settle))
        if ngs.scaling(c, web) != original:
            ngs.apply_scaling(c, web, original, busy_timeout=settle)
        ngs.wait_active(c, web, timeout=settle)
        wait_for(lambda: lb.healthy_count(tg) == original.desired_size, settle, "web tier restored")
        wait_for(lambda: http_status(lab["alb_url"]) == 200, 10, "ALB serving again")


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
