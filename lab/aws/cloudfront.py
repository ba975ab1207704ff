"""CloudFront in the lab: moto's control plane, made to behave like AWS where drivers notice.

moto departs from CloudFront in four ways a real driver would trip over (see lab-facts):
an origin group as the default target is rejected, a wrong IfMatch is accepted, the ETag never
changes, and neither distributions nor invalidations are ever in progress. The overrides below fix
that in the lab's moto process. They also keep, per distribution, the history of configurations with
the instant each one is deployed at the edges: the lab's edge serves from that history, so a change
takes effect only after the modeled deployment delay, as it does on real CloudFront.
"""
from __future__ import annotations

import copy
import ipaddress
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from moto.cloudfront import models as cf_models
from moto.cloudfront.exceptions import CloudFrontException, OriginDoesNotExist

from lab.events import EventLog


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


@dataclass(frozen=True)
class EdgeConfig:
    """What an edge location needs of a distribution config to route a request."""

    etag: str
    origins: dict[str, OriginSpec]
    # group id -> (member origin ids in order, failover status codes)
    origin_groups: dict[str, tuple[tuple[str, ...], frozenset[int]]]
    default_target: str
    allowed_methods: frozenset[str]
    enabled: bool


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
        )
    groups = {}
    for g in _items(raw.get("OriginGroups")):
        members = tuple(m["OriginId"] for m in _items(g.get("Members")))
        codes = frozenset(int(c) for c in _items((g.get("FailoverCriteria") or {}).get("StatusCodes")))
        groups[g["Id"]] = (members, codes)
    dcb = raw.get("DefaultCacheBehavior") or {}
    methods = frozenset(str(m).upper() for m in _items(dcb.get("AllowedMethods")) or ["GET", "HEAD"])
    enabled = raw.get("Enabled", True)
    if isinstance(enabled, str):
        enabled = enabled.lower() == "true"
    return EdgeConfig(etag, origins, groups, dcb.get("TargetOriginId", ""), methods, bool(enabled))


@dataclass
class _Deployment:
    effective_at: float  # monotonic instant the edges serve this config
    config: EdgeConfig


@dataclass
class CloudFrontModel:
    """Deployment timing of the lab's distributions: the edge reads `active()`."""

    deploy_seconds: float
    invalidation_seconds: float
    events: EventLog | None = None
    _history: dict[str, list[_Deployment]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.monotonic

    def record(self, dist_id: str, raw: dict[str, Any], etag: str, immediate: bool = False) -> float:
        at = self.clock() + (0.0 if immediate else self.deploy_seconds)
        with self._lock:
            self._history.setdefault(dist_id, []).append(_Deployment(at, edge_config_from_raw(raw, etag)))
        return at

    def deployed_at(self, dist_id: str) -> float:
        with self._lock:
            hist = self._history.get(dist_id)
            return hist[-1].effective_at if hist else 0.0

    def active(self, dist_id: str) -> EdgeConfig | None:
        """The configuration the edges serve now: the newest one whose deployment finished."""
        now = self.clock()
        with self._lock:
            live = [d for d in self._history.get(dist_id, []) if d.effective_at <= now]
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

    cf_models.DistributionConfig.__init__ = config_init  # type: ignore[method-assign]

    def status(self: Any) -> str:
        m = _installed
        if m is None:
            return "Deployed"
        return "InProgress" if m.clock() < m.deployed_at(self.distribution_id) else "Deployed"

    cf_models.Distribution.status = property(status, lambda self, v: None)  # type: ignore[assignment]

    def create_with_tags(self: Any, distribution_config: dict[str, Any], tags: list[dict[str, str]]) -> Any:
        refuse_ip_origins(distribution_config)
        raw = copy.deepcopy(distribution_config)
        dist, location, etag = orig_create(self, distribution_config, tags)
        dist.last_modified_time = _iso_now()
        if _installed:
            _installed.record(dist.distribution_id, raw, etag)
        return dist, location, etag

    orig_create = cf_models.CloudFrontBackend.create_distribution_with_tags
    cf_models.CloudFrontBackend.create_distribution_with_tags = create_with_tags  # type: ignore[method-assign]

    def update_distribution(self: Any, dist_config: dict[str, Any], _id: str, if_match: Any) -> Any:
        dist = self.distributions.get(_id)
        if dist is not None and if_match and if_match != dist.etag:
            raise PreconditionFailed()
        refuse_ip_origins(dist_config)
        raw = copy.deepcopy(dist_config)
        dist, location, _ = orig_update(self, dist_config, _id, if_match)
        dist.etag = cf_models.random_id()
        dist.last_modified_time = _iso_now()
        if _installed:
            _installed.record(_id, raw, dist.etag)
            if _installed.events:
                _installed.events.record("cloudfront", "distribution updated", distribution=_id, etag=dist.etag)
        return dist, location, dist.etag

    orig_update = cf_models.CloudFrontBackend.update_distribution
    cf_models.CloudFrontBackend.update_distribution = update_distribution  # type: ignore[method-assign]

    def delete_distribution(self: Any, distribution_id: str, if_match: Any) -> None:
        dist = self.distributions.get(distribution_id)
        if dist is not None and if_match and if_match != dist.etag:
            raise PreconditionFailed()
        orig_delete(self, distribution_id, if_match)

    orig_delete = cf_models.CloudFrontBackend.delete_distribution
    cf_models.CloudFrontBackend.delete_distribution = delete_distribution  # type: ignore[method-assign]

    orig_inv_init = cf_models.Invalidation.__init__

    def inv_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_inv_init(self, *args, **kwargs)
        m = _installed
        self._lab_done_at = (m.clock() + m.invalidation_seconds) if m else 0.0

    def inv_status(self: Any) -> str:
        m = _installed
        done = m is None or m.clock() >= getattr(self, "_lab_done_at", 0.0)
        return "Completed" if done else "InProgress"

    cf_models.Invalidation.__init__ = inv_init  # type: ignore[method-assign]
    cf_models.Invalidation.status = property(inv_status, lambda self, v: None)  # type: ignore[assignment]


def _iso_now() -> Any:
    from moto.core.utils import utcnow

    return utcnow()


__all__ = [
    "CloudFrontModel", "EdgeConfig", "OriginIsAnIpAddress", "OriginSpec", "PreconditionFailed", "install", "OriginDoesNotExist",
    "refuse_ip_origins",
]
