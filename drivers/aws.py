"""AWS through boto3: EKS node group scaling, ALB target health, CloudFront distribution.

Every change goes through the rollback ledger first (see drill.ledger): the inverse is recorded
before the call, so an interrupted drill still knows how to put things back.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from drill.config import AwsConfig
from drill.ledger import Action, Entry, Ledger
from drivers.retries import AWS_MAX_ATTEMPTS, ApiSettings, instrument_boto_client


@dataclass(frozen=True)
class Scaling:
    min_size: int
    max_size: int
    desired_size: int

    def as_api(self) -> dict[str, int]:
        return {"minSize": self.min_size, "maxSize": self.max_size, "desiredSize": self.desired_size}

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Scaling:
        return cls(int(d["minSize"]), int(d["maxSize"]), int(d["desiredSize"]))


@dataclass(frozen=True)
class NodegroupUpdate:
    """An EKS update as DescribeUpdate gives it: status InProgress | Successful | Failed | Cancelled."""

    id: str
    status: str
    type: str
    params: dict[str, str]
    errors: list[dict[str, Any]]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> NodegroupUpdate:
        return cls(str(d["id"]), str(d["status"]), str(d.get("type", "")),
                   {p["type"]: p.get("value", "") for p in d.get("params") or []}, list(d.get("errors") or []))


@dataclass(frozen=True)
class NodegroupInstances:
    """A node group's nodes as EC2 Auto Scaling has them: its groups' desired capacity and instances."""

    desired_capacity: int
    lifecycle: dict[str, str]  # instance id -> LifecycleState (Pending, InService, Terminating:Wait, …)

    @property
    def in_service(self) -> int:
        return sum(1 for s in self.lifecycle.values() if s == "InService")

    def settled_at(self, count: int) -> bool:
        """Exactly `count` instances, all InService: none still launching, draining or terminating."""
        return len(self.lifecycle) == count == self.in_service


class SizeChanged(AssertionError):
    """The node group's size is no longer what the drill set: something else scales it."""


@dataclass(frozen=True)
class TargetHealth:
    target_id: str
    port: int | None
    state: str
    reason: str | None


@dataclass(frozen=True)
class CacheBehavior:
    """A cache behavior of a distribution, as the drill reports it."""

    path_pattern: str  # "*" for the default cache behavior
    target: str  # TargetOriginId: an origin id or an origin group id
    target_is_origin_group: bool
    allowed_methods: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"path_pattern": self.path_pattern, "target": self.target,
                "target_kind": "origin group" if self.target_is_origin_group else "origin",
                "allowed_methods": list(self.allowed_methods)}


def path_pattern_matches(pattern: str, path: str) -> bool:
    """CloudFront's path-pattern rules (Developer Guide, *Path pattern*): `*` matches 0 or more
    characters, `/` included, `?` exactly one; case-sensitive; the leading `/` is optional; the
    whole path (never the query string) is compared."""
    pattern, path = ("/" + pattern.lstrip("/")), ("/" + path.split("?", 1)[0].lstrip("/"))
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, path, re.DOTALL) is not None


def error_code(e: BaseException) -> str | None:
    return e.response.get("Error", {}).get("Code") if isinstance(e, ClientError) else None


class Aws:
    """boto3 clients for one target; credentials from the target file or the default chain.

    Every client retries in botocore's `standard` mode (drivers.retries) and records the calls it had
    to retry or that failed; `api` sets how long a call may take before it counts as hung."""

    def __init__(self, cfg: AwsConfig, api: ApiSettings | None = None) -> None:
        self.cfg = cfg
        self.api = api or ApiSettings()
        kw: dict[str, Any] = {"region_name": cfg.region}
        if cfg.profile:
            kw["profile_name"] = cfg.profile
        if cfg.access_key_id and cfg.secret_access_key:
            kw["aws_access_key_id"] = cfg.access_key_id.get_secret_value()
            kw["aws_secret_access_key"] = cfg.secret_access_key.get_secret_value()
        self._session = boto3.session.Session(**kw)
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:  # fixtures' reprs reach Allure step parameters: no secrets
        return f"Aws(region={self.cfg.region!r}, endpoint={self.cfg.endpoint_url!r})"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = instrument_boto_client(self._session.client(
                service,
                endpoint_url=self.cfg.endpoint_url,
                config=Config(retries={"max_attempts": AWS_MAX_ATTEMPTS, "mode": "standard"},
                              connect_timeout=self.api.connect_timeout, read_timeout=self.api.read_timeout),
            ))
        return self._clients[service]


class Secrets:
    def __init__(self, aws: Aws) -> None:
        self.sm = aws.client("secretsmanager")

    def json(self, secret_id: str) -> dict[str, Any]:
        """A JSON secret (e.g. the RDS credentials the backup job uses). Never log the result."""
        import json

        return dict(json.loads(self.sm.get_secret_value(SecretId=secret_id)["SecretString"]))


class NodeGroups:
    """EKS managed node groups: scaling through UpdateNodegroupConfig, followed through DescribeUpdate
    and the node group's Auto Scaling groups.

    What "the node group has N nodes" can rest on: EKS documents an update's status (DescribeUpdate:
    "When the status of the update is Successful, the update is complete"), not that its nodes have
    come or gone by then — a scaling update is EKS setting the node group's Auto Scaling group's
    sizes; the group then launches instances, or drains and terminates them (EKS drains each node
    first). And the node group's own status is ACTIVE again with the update. So the nodes are counted
    where they are: the instances of the Auto Scaling groups the node group names in its `resources`
    (DescribeNodegroup), through EC2 Auto Scaling's DescribeAutoScalingGroups, in which an instance
    stays listed (Terminating, Terminating:Wait, …) until it has terminated.
    """

    def __init__(self, aws: Aws, ledger: Ledger | None = None, consistency_seconds: float = 60.0) -> None:
        self.aws = aws
        self.eks = aws.client("eks")
        self.ledger = ledger
        # AWS's Describe calls are eventually consistent ("Eventual consistency in the Amazon EC2 API":
        # a read just after a change may show the state before it): a size that differs from the one
        # the drill set counts as changed only if it still differs this long after it was first seen.
        self.consistency_seconds = consistency_seconds
        # The last update this driver made, per (cluster, node group): what a settle wait follows.
        self.updates: dict[tuple[str, str], str] = {}

    def describe(self, cluster: str, nodegroup: str) -> dict[str, Any]:
        return self.eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup)["nodegroup"]

    def scaling(self, cluster: str, nodegroup: str) -> Scaling:
        return Scaling.from_api(self.describe(cluster, nodegroup)["scalingConfig"])

    def status(self, cluster: str, nodegroup: str) -> str:
        return str(self.describe(cluster, nodegroup)["status"])

    def wait_active(self, cluster: str, nodegroup: str, timeout: float, poll: float = 0.5) -> float:
        """Wait until the node group is ACTIVE again (its nodes converged); return seconds waited."""
        t0 = time.monotonic()
        while True:
            status = self.status(cluster, nodegroup)
            if status == "ACTIVE":
                return time.monotonic() - t0
            if status in ("DEGRADED", "CREATE_FAILED", "DELETE_FAILED"):
                raise RuntimeError(f"node group {nodegroup} is {status}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"node group {nodegroup} still {status} after {timeout:.0f}s")
            time.sleep(poll)

    def apply_scaling(self, cluster: str, nodegroup: str, scaling: Scaling, busy_timeout: float = 600.0) -> str:
        """update_nodegroup_config, waiting out an update already in progress (ResourceInUse).

        Returns the update's id (DescribeUpdate follows it)."""
        for attempt in Retrying(
            retry=retry_if_exception(lambda e: error_code(e) == "ResourceInUseException"),
            wait=wait_fixed(1.0),
            stop=stop_after_delay(busy_timeout),
            reraise=True,
        ):
            with attempt:
                r = self.eks.update_nodegroup_config(
                    clusterName=cluster, nodegroupName=nodegroup, scalingConfig=scaling.as_api()
                )
        update_id = str(r["update"]["id"])
        self.updates[(cluster, nodegroup)] = update_id
        return update_id

    def describe_update(self, cluster: str, nodegroup: str, update_id: str) -> NodegroupUpdate:
        r = self.eks.describe_update(name=cluster, updateId=update_id, nodegroupName=nodegroup)
        return NodegroupUpdate.from_api(r["update"])

    def wait_update(self, cluster: str, nodegroup: str, update_id: str, timeout: float, poll: float) -> NodegroupUpdate:
        """Until the update is no longer InProgress; Failed or Cancelled raise, with EKS's error details.

        boto3 has no EKS waiter for updates (its EKS waiters cover clusters, node groups, add-ons and
        Fargate profiles, polling every 30 s or so): this polls DescribeUpdate every `poll` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            update = self.describe_update(cluster, nodegroup, update_id)
            if update.status == "Successful":
                return update
            if update.status in ("Failed", "Cancelled"):
                raise RuntimeError(f"node group {nodegroup} update {update_id} {update.status}: {update.errors}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node group {nodegroup} update {update_id} still {update.status} after {timeout:.0f}s")
            time.sleep(poll)

    def auto_scaling_groups(self, cluster: str, nodegroup: str) -> list[str]:
        resources = self.describe(cluster, nodegroup).get("resources") or {}
        return [str(g["name"]) for g in resources.get("autoScalingGroups") or []]

    def instances(self, cluster: str, nodegroup: str) -> NodegroupInstances:
        """The node group's instances and desired capacity, summed over its Auto Scaling groups."""
        names = self.auto_scaling_groups(cluster, nodegroup)
        if not names:
            raise RuntimeError(f"node group {nodegroup} names no Auto Scaling group in its resources")
        desired, lifecycle = 0, {}
        pages = self.aws.client("autoscaling").get_paginator("describe_auto_scaling_groups")
        found = set()
        for page in pages.paginate(AutoScalingGroupNames=names):
            for g in page["AutoScalingGroups"]:
                found.add(g["AutoScalingGroupName"])
                desired += int(g["DesiredCapacity"])
                lifecycle.update({i["InstanceId"]: str(i["LifecycleState"]) for i in g.get("Instances") or []})
        missing = set(names) - found
        if missing:
            raise RuntimeError(f"node group {nodegroup}'s Auto Scaling group(s) {sorted(missing)} not found")
        return NodegroupInstances(desired, lifecycle)

    def check_size(self, cluster: str, nodegroup: str, desired: int) -> tuple[Scaling, NodegroupInstances]:
        """The node group still asks for `desired` nodes, in EKS and in its Auto Scaling groups.

        A Cluster Autoscaler changes the Auto Scaling group's desired capacity, and EKS reports it as
        the node group's desiredSize ("When the Cluster Autoscaler is used, the desiredSize parameter
        is altered by the Cluster Autoscaler", EKS API Reference, NodegroupScalingConfig): a size the
        drill set that no longer holds means something else is scaling the node group."""
        deadline = time.monotonic() + self.consistency_seconds
        while True:
            scaling, nodes = self.scaling(cluster, nodegroup), self.instances(cluster, nodegroup)
            if (scaling.desired_size == desired and nodes.desired_capacity == desired) or time.monotonic() >= deadline:
                break
            time.sleep(max(0.05, self.consistency_seconds / 20))  # a stale read, or something really changed it
        if scaling.desired_size != desired or nodes.desired_capacity != desired:
            raise SizeChanged(
                f"node group {nodegroup} no longer has the size the drill set ({desired}) after "
                f"{self.consistency_seconds:g}s of reads: EKS desiredSize "
                f"{scaling.desired_size}, Auto Scaling desired capacity {nodes.desired_capacity}. Something else "
                "scales it (a Cluster Autoscaler or Karpenter?): suspend it for the drill, or the drill proves nothing"
            )
        return scaling, nodes

    def wait_nodes(self, cluster: str, nodegroup: str, count: int, timeout: float, poll: float) -> NodegroupInstances:
        """Until the node group has exactly `count` instances, all InService (the others terminated).

        Checks on every poll that the size still is `count` (SizeChanged otherwise): a node group
        scaled back by something else would never settle, and a timeout would not say why."""
        deadline = time.monotonic() + timeout
        while True:
            _, nodes = self.check_size(cluster, nodegroup, count)
            if nodes.settled_at(count):
                return nodes
            if time.monotonic() > deadline:
                raise TimeoutError(f"node group {nodegroup} has {len(nodes.lifecycle)} instance(s) "
                                   f"{sorted(nodes.lifecycle.values())}, not {count} InService, after {timeout:.0f}s")
            time.sleep(poll)

    def set_desired(self, cluster: str, nodegroup: str, desired: int, busy_timeout: float = 600.0) -> Entry:
        """Scale to `desired` nodes (lowering minSize if needed), recording the way back first."""
        if self.ledger is None:
            raise RuntimeError("a change needs a rollback ledger")
        if desired < 0:
            raise ValueError("desired size must be >= 0")
        before = self.scaling(cluster, nodegroup)
        if desired > before.max_size:
            raise ValueError(f"desired {desired} exceeds the node group's maxSize {before.max_size}")
        after = Scaling(min(before.min_size, desired), before.max_size, desired)
        where = {"cluster": cluster, "nodegroup": nodegroup}
        entry = self.ledger.record(
            Action("aws.eks.set_scaling", {**where, "scaling": after.as_api()},
                   f"scale node group {nodegroup} to {after.as_api()}"),
            Action("aws.eks.set_scaling", {**where, "scaling": before.as_api()},
                   f"restore node group {nodegroup} to {before.as_api()}"),
        )
        if not entry.planned:  # a dry run records the change and its inverse, and stops there
            self.apply_scaling(cluster, nodegroup, after, busy_timeout)
            self.ledger.applied(entry)
        return entry


class LoadBalancing:
    def __init__(self, aws: Aws) -> None:
        self.elb = aws.client("elbv2")

    def target_health(self, target_group_arn: str) -> list[TargetHealth]:
        out = self.elb.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        return [
            TargetHealth(d["Target"]["Id"], d["Target"].get("Port"), d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"))
            for d in out
        ]

    def healthy_count(self, target_group_arn: str) -> int:
        return sum(1 for t in self.target_health(target_group_arn) if t.state == "healthy")


# boto3's own DistributionDeployed waiter polls every 60 s (botocore/data/cloudfront/2020-05-31/
# waiters-2.json): the rate the API is meant to be asked at during a 5-10 min deployment. A
# time-scaled target (the lab) plays the deployment faster, so the poll scales with it. No RTO
# waits on this poll: users' switch is measured by the probe, when the edges serve the change.
DEPLOYED_POLL_SECONDS = 60.0


class CloudFront:
    def __init__(self, aws: Aws, ledger: Ledger | None = None, time_scale: float = 1.0) -> None:
        self.cf = aws.client("cloudfront")
        self.ledger = ledger
        self.time_scale = time_scale
        # The ETag each distribution got from this driver's last update: its deployment is what
        # wait_deployed waits for (a stale GetDistribution still shows the previous config, Deployed).
        self.etags: dict[str, str] = {}

    def config(self, distribution_id: str) -> tuple[dict[str, Any], str]:
        r = self.cf.get_distribution_config(Id=distribution_id)
        return r["DistributionConfig"], r["ETag"]

    def status(self, distribution_id: str) -> str:
        return str(self.cf.get_distribution(Id=distribution_id)["Distribution"]["Status"])

    def origin(self, distribution_id: str, origin_id: str) -> dict[str, Any]:
        cfg, _ = self.config(distribution_id)
        for o in cfg["Origins"]["Items"]:
            if o["Id"] == origin_id:
                return o
        raise KeyError(f"distribution {distribution_id} has no origin {origin_id!r}")

    def origin_group(self, distribution_id: str) -> dict[str, Any] | None:
        """The origin group the default behaviour targets, if it targets one."""
        cfg, _ = self.config(distribution_id)
        target = cfg["DefaultCacheBehavior"]["TargetOriginId"]
        for g in (cfg.get("OriginGroups") or {}).get("Items") or []:
            if g["Id"] == target:
                return g
        return None

    def behaviors(self, distribution_id: str) -> list[CacheBehavior]:
        """The cache behaviors in the order CloudFront applies them: ordered ones first, the default last."""
        cfg, _ = self.config(distribution_id)
        groups = {g["Id"] for g in (cfg.get("OriginGroups") or {}).get("Items") or []}

        def one(b: dict[str, Any], pattern: str) -> CacheBehavior:
            methods = tuple((b.get("AllowedMethods") or {}).get("Items") or ("GET", "HEAD"))
            return CacheBehavior(pattern, b["TargetOriginId"], b["TargetOriginId"] in groups, methods)

        ordered = [one(b, b["PathPattern"]) for b in (cfg.get("CacheBehaviors") or {}).get("Items") or []]
        return ordered + [one(cfg["DefaultCacheBehavior"], "*")]

    def behavior_for(self, distribution_id: str, path: str) -> CacheBehavior:
        """The cache behavior a request for `path` takes: the first ordered match, else the default."""
        behaviors = self.behaviors(distribution_id)
        return next((b for b in behaviors[:-1] if path_pattern_matches(b.path_pattern, path)), behaviors[-1])

    def apply_origin(self, distribution_id: str, origin_id: str, settings: dict[str, Any]) -> str:
        """get config + ETag → modify one origin → update with IfMatch (runbook 2.6). Returns the new ETag.

        A 412 PreconditionFailed means someone changed the distribution meanwhile: read it again
        and retry, so a replayed inverse never overwrites a newer change blindly.
        """
        for attempt in Retrying(
            retry=retry_if_exception(lambda e: error_code(e) == "PreconditionFailed"),
            wait=wait_fixed(1.0), stop=stop_after_delay(60), reraise=True,
        ):
            with attempt:
                cfg, etag = self.config(distribution_id)
                origin = next((o for o in cfg["Origins"]["Items"] if o["Id"] == origin_id), None)
                if origin is None:
                    raise KeyError(f"distribution {distribution_id} has no origin {origin_id!r}")
                origin["DomainName"] = settings["DomainName"]
                custom = origin.setdefault("CustomOriginConfig", {})
                for key in ("OriginProtocolPolicy", "HTTPPort", "HTTPSPort"):
                    if key in settings:
                        custom[key] = settings[key]
                r = self.cf.update_distribution(Id=distribution_id, DistributionConfig=cfg, IfMatch=etag)
        self.etags[distribution_id] = str(r["ETag"])
        return str(r["ETag"])

    def set_origin(
        self, distribution_id: str, origin_id: str, domain_name: str, protocol_policy: str,
        http_port: int = 80, https_port: int = 443,
    ) -> Entry:
        """Point one origin elsewhere, recording the way back (its current settings) first."""
        if self.ledger is None:
            raise RuntimeError("a change needs a rollback ledger")
        if protocol_policy not in ("http-only", "https-only", "match-viewer"):
            raise ValueError(f"unknown OriginProtocolPolicy {protocol_policy!r}")
        current = self.origin(distribution_id, origin_id)
        custom = current.get("CustomOriginConfig") or {}
        before = {
            "DomainName": current["DomainName"], "OriginProtocolPolicy": custom.get("OriginProtocolPolicy", "https-only"),
            "HTTPPort": custom.get("HTTPPort", 80), "HTTPSPort": custom.get("HTTPSPort", 443),
        }
        after = {"DomainName": domain_name, "OriginProtocolPolicy": protocol_policy, "HTTPPort": http_port, "HTTPSPort": https_port}
        where = {"distribution_id": distribution_id, "origin_id": origin_id}
        entry = self.ledger.record(
            Action("aws.cloudfront.set_origin", {**where, "settings": after}, f"point origin {origin_id} at {domain_name}"),
            Action("aws.cloudfront.set_origin", {**where, "settings": before}, f"point origin {origin_id} back at {before['DomainName']}"),
        )
        if not entry.planned:
            self.apply_origin(distribution_id, origin_id, after)
            self.ledger.applied(entry)
        return entry

    def wait_deployed(self, distribution_id: str, timeout: float, poll: float | None = None, etag: str | None = None) -> float:
        """Until the distribution is Deployed *with* the config of this driver's last update (`etag`,
        default: the ETag that update returned; a read still showing the previous config is stale);
        seconds waited. Polls at boto3's waiter rate (scaled)."""
        poll = DEPLOYED_POLL_SECONDS / self.time_scale if poll is None else poll
        etag = etag or self.etags.get(distribution_id)
        t0 = time.monotonic()
        while True:
            r = self.cf.get_distribution(Id=distribution_id)
            status, seen = str(r["Distribution"]["Status"]), str(r.get("ETag") or "")
            if status == "Deployed" and (etag is None or seen == etag):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                stale = f"; its ETag is {seen}, not {etag} (the update's): a stale read or another change" \
                    if etag is not None and seen != etag else ""
                raise TimeoutError(f"distribution {distribution_id} not Deployed after {timeout:.0f}s (status {status}{stale})")
            time.sleep(poll)

    def invalidate(self, distribution_id: str, paths: list[str]) -> str:
        r = self.cf.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": f"drill-{time.time_ns()}"},
        )
        return str(r["Invalidation"]["Id"])

    def invalidation_status(self, distribution_id: str, invalidation_id: str) -> str:
        return str(self.cf.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)["Invalidation"]["Status"])
