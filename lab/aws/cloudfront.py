"""CloudFront in the lab: moto's control plane, made to behave like AWS where drivers notice.

moto departs from CloudFront in ways a real driver (or a real configuration) would trip over (see
lab-facts): an origin group as the default target is rejected, while an ordered cache behavior may
target anything at all; a cache behavior that targets an origin group may allow POST/PUT/PATCH/DELETE,
which the real API refuses; origin timeouts and attempts out of the documented ranges are accepted;
a wrong IfMatch is accepted, the ETag never changes, and neither distributions nor invalidations are
ever in progress. The overrides below fix that in the lab's moto process. They also keep, per
distribution, the history of configurations with the instant each one takes effect at each edge
location: the lab's edge locations serve from that history, so a change reaches each location at its
own time within the modeled deployment delay, and the distribution is `Deployed` only once the last
location has it ("When the status is Deployed, the distribution's information is fully propagated to
all CloudFront edge locations": CloudFront API Reference, Distribution, Status).
"""
from __future__ import annotations

import copy
import ipaddress
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.cloudfront import models as cf_models
from moto.cloudfront.exceptions import CloudFrontException, OriginDoesNotExist

from lab.events import EventLog

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What the real API answers (HTTP 400 InvalidArgument) for a write method on an origin-group behavior:
# origin failover is for GET/HEAD/OPTIONS only (CloudFront Developer Guide, "Optimize high availability
# with CloudFront origin failover"); the message as the API returns it, e.g. to Terraform and
# CloudFormation (aws/aws-cdk issue #32450).
ORIGIN_GROUP_WRITE_METHODS = (
    "The parameter AllowedMethods cannot include POST, PUT, PATCH, or DELETE for a cached behavior "
    "associated with an origin group."
)


class InvalidArgument(CloudFrontException):
    """400 InvalidArgument: boto3 raises `client.exceptions.InvalidArgument`, as against AWS."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidArgument", message)


class InvalidOriginReadTimeout(CloudFrontException):
    """400 InvalidOriginReadTimeout (an UpdateDistribution/CreateDistribution error in the API model)."""

    def __init__(self) -> None:
        super().__init__("InvalidOriginReadTimeout", "The read timeout specified for the origin is not valid.")


class PreconditionFailed(CloudFrontException):
    """AWS answers 412 PreconditionFailed when IfMatch is not the current ETag."""

    def __init__(self) -> None:
        super().__init__(
            "PreconditionFailed",
            "The If-Match version is missing or not valid for the resource.",
        )


class OriginIsAnIpAddress(CloudFrontException):
    """AWS answers 400 InvalidArgument to an origin whose DomainName is an IP address: "Your origin
    domain must have a publicly resolvable DNS name" (CloudFront Developer Guide, Origin settings)."""

    def __init__(self) -> None:
        super().__init__("InvalidArgument", "The parameter origin name cannot be an IP address.")


def refuse_ip_origins(config: dict[str, Any]) -> None:
    """Create/UpdateDistribution: refuse a distribution config with an IP address as an origin domain."""
    for origin in _items(config.get("Origins")):
        try:
            ipaddress.ip_address(str(origin.get("DomainName") or "").strip("[]"))
        except ValueError:
            continue
        raise OriginIsAnIpAddress()


@dataclass(frozen=True)
class OriginSpec:
    id: str
    domain_name: str
    connection_attempts: int
    connection_timeout: float
    read_timeout: float
    http_port: int = 80
    protocol_policy: str = "http-only"
    # ResponseCompletionTimeout: the whole wait for a complete response, across packets and retries
    # (None: CloudFront enforces no maximum).
    response_completion_timeout: float | None = None


@dataclass(frozen=True)
class BehaviorSpec:
    """One cache behavior as an edge applies it."""

    path_pattern: str  # "*" for the default cache behavior
    target: str  # an origin id or an origin group id
    allowed_methods: frozenset[str]


@dataclass(frozen=True)
class EdgeConfig:
    """What an edge location needs of a distribution config to route a request."""

    etag: str
    origins: dict[str, OriginSpec]
    # group id -> (member origin ids in order, failover status codes)
    origin_groups: dict[str, tuple[tuple[str, ...], frozenset[int]]]
    # The ordered cache behaviors in the distribution's order, then the default one (always last).
    behaviors: tuple[BehaviorSpec, ...]
    enabled: bool

    @property
    def default(self) -> BehaviorSpec:
        return self.behaviors[-1]


def _items(container: Any) -> list[Any]:
    if not container:
        return []
    items = container.get("Items") or []
    if isinstance(items, dict):  # a single XML child parses as a dict of one member
        items = list(items.values())
        items = items[0] if len(items) == 1 and isinstance(items[0], list) else items
    return list(items)


def edge_config_from_raw(raw: dict[str, Any], etag: str) -> EdgeConfig:
    origins = {}
    for o in _items(raw.get("Origins")):
        custom = o.get("CustomOriginConfig") or {}
        origins[o["Id"]] = OriginSpec(
            id=o["Id"],
            domain_name=o["DomainName"],
            connection_attempts=int(o.get("ConnectionAttempts") or 3),
            connection_timeout=float(o.get("ConnectionTimeout") or 10),
            read_timeout=float(custom.get("OriginReadTimeout") or 30),
            http_port=int(custom.get("HTTPPort") or 80),
            protocol_policy=str(custom.get("OriginProtocolPolicy") or "http-only"),
            response_completion_timeout=None if o.get("ResponseCompletionTimeout") in (None, "")
            else float(o["ResponseCompletionTimeout"]),
        )
    groups = {}
    for g in _items(raw.get("OriginGroups")):
        members = tuple(m["OriginId"] for m in _items(g.get("Members")))
        codes = frozenset(int(c) for c in _items((g.get("FailoverCriteria") or {}).get("StatusCodes")))
        groups[g["Id"]] = (members, codes)
    ordered = [_behavior(cb, str(cb.get("PathPattern") or "")) for cb in _items(raw.get("CacheBehaviors"))]
    default = _behavior(raw.get("DefaultCacheBehavior") or {}, "*")
    enabled = raw.get("Enabled", True)
    if isinstance(enabled, str):
        enabled = enabled.lower() == "true"
    return EdgeConfig(etag, origins, groups, tuple(ordered) + (default,), bool(enabled))


def _behavior(raw: dict[str, Any], path_pattern: str) -> BehaviorSpec:
    # Without AllowedMethods, CloudFront allows GET and HEAD.
    methods = frozenset(str(m).upper() for m in _items(raw.get("AllowedMethods")) or ["GET", "HEAD"])
    return BehaviorSpec(path_pattern, str(raw.get("TargetOriginId") or ""), methods)


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(float(value))


def validate_config(config: dict[str, Any]) -> None:
    """Refuse, as CreateDistribution/UpdateDistribution do, what moto would store.

    - every cache behavior (default or ordered) targets an existing origin or origin group
      (404 NoSuchOrigin, moto checks the default behavior's target against origins only);
    - a behavior whose target is an origin group allows no write method (400 InvalidArgument);
    - origin connection attempts 1-3, connection timeout 1-10 s, response (read) timeout 1-120 s, a
      response completion timeout no shorter than the response timeout (the CloudFront API Reference,
      `Origin.ConnectionAttempts`, `Origin.ConnectionTimeout`, `CustomOriginConfig.OriginReadTimeout`,
      `Origin.ResponseCompletionTimeout`), which the lab's edge relies on.
    """
    origins = _items(config.get("Origins"))
    origin_ids = {o.get("Id") for o in origins}
    group_ids = {g.get("Id") for g in _items(config.get("OriginGroups"))}
    behaviors = [config.get("DefaultCacheBehavior") or {}] + list(_items(config.get("CacheBehaviors")))
    for b in behaviors:
        target = b.get("TargetOriginId")
        if target not in origin_ids and target not in group_ids:
            raise OriginDoesNotExist()
        methods = {str(m).upper() for m in _items(b.get("AllowedMethods"))}
        if target in group_ids and methods & WRITE_METHODS:
            raise InvalidArgument(ORIGIN_GROUP_WRITE_METHODS)
    for o in origins:
        attempts, timeout = _int(o.get("ConnectionAttempts")), _int(o.get("ConnectionTimeout"))
        if attempts is not None and not 1 <= attempts <= 3:
            raise InvalidArgument(f"The parameter ConnectionAttempts of origin {o.get('Id')} must be between 1 and 3.")
        if timeout is not None and not 1 <= timeout <= 10:
            raise InvalidArgument(f"The parameter ConnectionTimeout of origin {o.get('Id')} must be between 1 and 10.")
        read = _int((o.get("CustomOriginConfig") or {}).get("OriginReadTimeout"))
        if read is not None and not 1 <= read <= 120:
            raise InvalidOriginReadTimeout()
        completion = _int(o.get("ResponseCompletionTimeout"))
        if completion is not None and completion < (read or 30):
            raise InvalidArgument(f"The parameter ResponseCompletionTimeout of origin {o.get('Id')} must be equal to "
                                  "or greater than the OriginReadTimeout.")


DEFAULT_LOCATION = "ICN54-P1"
# When a change reaches each edge location within the deploy window. AWS documents only the end (the
# status turns Deployed once every location has it), not how arrivals spread before it: the lab's
# choice is one location at the window's end and the others evenly spread from FIRST_ARRIVAL of the
# window on, in an order drawn per change (seeded by the distribution and the new ETag, so a run can
# be replayed from its evidence). A single location gets every change at the window's end.
FIRST_ARRIVAL = 1.0 / 3.0


def arrival_fractions(locations: tuple[str, ...], seed: str) -> dict[str, float]:
    """Each location's arrival as a fraction of the deploy window: one at 1.0, the rest spread from FIRST_ARRIVAL."""
    order = list(locations)
    random.Random(seed).shuffle(order)
    n = len(order)
    if n == 1:
        return {order[0]: 1.0}
    return {loc: FIRST_ARRIVAL + (1.0 - FIRST_ARRIVAL) * k / (n - 1) for k, loc in enumerate(order)}


@dataclass
class _Deployment:
    effective_at: dict[str, float]  # edge location -> monotonic instant it serves this config
    config: EdgeConfig

    @property
    def deployed_at(self) -> float:
        return max(self.effective_at.values())


@dataclass
class CloudFrontModel:
    """Deployment timing of the lab's distributions: each edge location reads `active(dist, location)`."""

    deploy_seconds: float
    invalidation_seconds: float
    events: EventLog | None = None
    locations: tuple[str, ...] = (DEFAULT_LOCATION,)
    _history: dict[str, list[_Deployment]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if not self.locations or len(set(self.locations)) != len(self.locations):
            raise ValueError(f"edge locations must be distinct and at least one: {self.locations}")

    def record(self, dist_id: str, raw: dict[str, Any], etag: str, immediate: bool = False) -> float:
        """Keep a new configuration; returns when the last edge location has it (the end of `InProgress`)."""
        now = self.clock()
        if immediate:
            effective = {loc: now for loc in self.locations}
        else:
            fractions = arrival_fractions(self.locations, f"{dist_id}:{etag}")
            effective = {loc: now + self.deploy_seconds * fractions[loc] for loc in self.locations}
        deployment = _Deployment(effective, edge_config_from_raw(raw, etag))
        with self._lock:
            self._history.setdefault(dist_id, []).append(deployment)
        if self.events is not None and not immediate:
            # Ground truth for measurements: when each location serves the change, on both clocks.
            wall = time.time() - now
            self.events.record("cloudfront", "edge locations scheduled", distribution=dist_id, etag=etag,
                               locations={loc: {"mono": at, "t": at + wall} for loc, at in effective.items()},
                               deployed_mono=deployment.deployed_at, deployed_t=deployment.deployed_at + wall)
        return deployment.deployed_at

    def deployed_at(self, dist_id: str) -> float:
        """When the newest configuration is at every edge location (0.0: nothing recorded)."""
        with self._lock:
            hist = self._history.get(dist_id)
            return hist[-1].deployed_at if hist else 0.0

    def effective_at(self, dist_id: str, location: str) -> float:
        """When `location` serves the newest configuration (from then on: a newer one is never undone
        by an older one arriving later)."""
        with self._lock:
            hist = self._history.get(dist_id)
            return hist[-1].effective_at[location] if hist else 0.0

    def active(self, dist_id: str, location: str | None = None) -> EdgeConfig | None:
        """The configuration `location` (default: the first) serves now: its newest one that has arrived there."""
        loc = location or self.locations[0]
        if loc not in self.locations:
            raise KeyError(f"no edge location {loc!r} (the lab's: {', '.join(self.locations)})")
        now = self.clock()
        with self._lock:
            live = [d for d in self._history.get(dist_id, []) if d.effective_at[loc] <= now]
            return live[-1].config if live else None

    def distribution_ids(self) -> list[str]:
        with self._lock:
            return list(self._history)


_installed: CloudFrontModel | None = None


def install(model: CloudFrontModel) -> None:
    """Patch moto's CloudFront models in this process to follow `model`. Idempotent per process."""
    global _installed
    first = _installed is None
    _installed = model
    if not first:
        return

    orig_config_init = cf_models.DistributionConfig.__init__

    def config_init(self: Any, config: dict[str, Any]) -> None:
        # Create and update both build a DistributionConfig: refuse here what AWS refuses.
        validate_config(config)
        # AWS accepts an origin group id as the default target; moto checks origins only.
        dcb = config.get("DefaultCacheBehavior") or {}
        target = dcb.get("TargetOriginId")
        group_ids = {g.get("Id") for g in _items(config.get("OriginGroups"))}
        origin_ids = [o.get("Id") for o in _items(config.get("Origins"))]
        if target in group_ids and origin_ids:
            dcb["TargetOriginId"] = origin_ids[0]
            orig_config_init(self, config)
            self.DefaultCacheBehavior.target_origin_id = target
            dcb["TargetOriginId"] = target
        else:
            orig_config_init(self, config)

    cf_models.DistributionConfig.__init__ = config_init  # type: ignore[method-assign]  # patches moto

    orig_origin_init = cf_models.Origin.__init__

    def origin_init(self: Any, origin: dict[str, Any]) -> None:
        # moto drops ResponseCompletionTimeout: keep it, so get/update round-trips it as AWS does.
        orig_origin_init(self, origin)
        if origin.get("ResponseCompletionTimeout") is not None:
            self.response_completion_timeout = origin["ResponseCompletionTimeout"]

    cf_models.Origin.__init__ = origin_init  # type: ignore[method-assign]  # patches moto

    def status(self: Any) -> str:
        m = _installed
        if m is None:
            return "Deployed"
        return "InProgress" if m.clock() < m.deployed_at(self.distribution_id) else "Deployed"

    cf_models.Distribution.status = property(status, lambda self, v: None)  # type: ignore[assignment]  # patches moto

    def create_with_tags(self: Any, distribution_config: dict[str, Any], tags: list[dict[str, str]]) -> Any:
        refuse_ip_origins(distribution_config)
        raw = copy.deepcopy(distribution_config)
        dist, location, etag = orig_create(self, distribution_config, tags)
        dist.last_modified_time = _iso_now()
        model: CloudFrontModel | None = _installed  # (None until install(); read at call time)
        if model is not None:
            model.record(dist.distribution_id, raw, etag)
        return dist, location, etag

    orig_create = cf_models.CloudFrontBackend.create_distribution_with_tags
    cf_models.CloudFrontBackend.create_distribution_with_tags = create_with_tags  # type: ignore[method-assign]  # patches moto

    def update_distribution(self: Any, dist_config: dict[str, Any], _id: str, if_match: Any) -> Any:
        dist = self.distributions.get(_id)
        if dist is not None and if_match and if_match != dist.etag:
            raise PreconditionFailed()
        refuse_ip_origins(dist_config)
        raw = copy.deepcopy(dist_config)
        dist, location, _ = orig_update(self, dist_config, _id, if_match)
        dist.etag = cf_models.random_id()
        dist.last_modified_time = _iso_now()
        model: CloudFrontModel | None = _installed
        if model is not None:
            model.record(_id, raw, dist.etag)
            if model.events:
                model.events.record("cloudfront", "distribution updated", distribution=_id, etag=dist.etag)
        return dist, location, dist.etag

    orig_update = cf_models.CloudFrontBackend.update_distribution
    cf_models.CloudFrontBackend.update_distribution = update_distribution  # type: ignore[method-assign]  # patches moto

    def delete_distribution(self: Any, distribution_id: str, if_match: Any) -> None:
        dist = self.distributions.get(distribution_id)
        if dist is not None and if_match and if_match != dist.etag:
            raise PreconditionFailed()
        orig_delete(self, distribution_id, if_match)

    orig_delete = cf_models.CloudFrontBackend.delete_distribution
    cf_models.CloudFrontBackend.delete_distribution = delete_distribution  # type: ignore[method-assign]  # patches moto

    orig_inv_init = cf_models.Invalidation.__init__

    def inv_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_inv_init(self, *args, **kwargs)
        m: CloudFrontModel | None = _installed
        self._lab_done_at = (m.clock() + m.invalidation_seconds) if m is not None else 0.0

    def inv_status(self: Any) -> str:
        m: CloudFrontModel | None = _installed
        done = m is None or m.clock() >= getattr(self, "_lab_done_at", 0.0)
        return "Completed" if done else "InProgress"

    cf_models.Invalidation.__init__ = inv_init  # type: ignore[method-assign]  # patches moto
    cf_models.Invalidation.status = property(inv_status, lambda self, v: None)  # type: ignore[assignment]  # patches moto


def _iso_now() -> Any:
    from moto.core.utils import utcnow

    return utcnow()


__all__ = [
    "DEFAULT_LOCATION", "FIRST_ARRIVAL", "BehaviorSpec", "CloudFrontModel", "EdgeConfig", "InvalidArgument",
    "InvalidOriginReadTimeout", "OriginDoesNotExist", "OriginIsAnIpAddress", "OriginSpec", "PreconditionFailed",
    "arrival_fractions", "install", "refuse_ip_origins", "validate_config",
]
