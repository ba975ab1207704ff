"""ALB target health in the lab: what describe_target_health reports follows the lab's health checks.

moto reports every registered target `healthy`, forever. Here the lab's ALB (lab.alb) health-checks
whatever is registered in the target group and sets each target's state (initial, healthy,
unhealthy, draining) and reason code, which moto then reports exactly as the ELBv2 API shapes it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from moto.elbv2 import models as elb_models

# Default reason code and description per state (ELB User Guide, "Health check reason codes").
REASONS: dict[str, tuple[str | None, str | None]] = {
    "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
    "unhealthy": ("Target.FailedHealthChecks", "Health checks failed"),
    "draining": ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
    "healthy": (None, None),
}


@dataclass
class TargetState:
    target_id: str
    port: int
    state: str
    reason: str | None = None
    description: str | None = None


class TargetHealthRegistry:
    """Target states per target group ARN, written by the lab's health checker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, TargetState]] = {}

    def set(
        self, tg_arn: str, target_id: str, port: int, state: str,
        reason: str | None = None, description: str | None = None,
    ) -> None:
        """Set a target's state; reason and description default to the state's usual ones."""
        if state not in REASONS:
            raise ValueError(f"unknown target state {state!r}")
        if reason is None:
            reason, description = REASONS[state]
        with self._lock:
            self._groups.setdefault(tg_arn, {})[target_id] = TargetState(target_id, port, state, reason, description)

    def forget(self, tg_arn: str, target_id: str) -> None:
        with self._lock:
            self._groups.get(tg_arn, {}).pop(target_id, None)

    def get(self, tg_arn: str, target_id: str) -> TargetState | None:
        with self._lock:
            return self._groups.get(tg_arn, {}).get(target_id)

    def states(self, tg_arn: str) -> list[TargetState]:
        with self._lock:
            return list(self._groups.get(tg_arn, {}).values())


_registry: TargetHealthRegistry | None = None


def install(registry: TargetHealthRegistry) -> None:
    """Route moto's target health through `registry`. Idempotent per process."""
    global _registry
    first = _registry is None
    _registry = registry
    if not first:
        return

    orig_health_for = elb_models.FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        registry: TargetHealthRegistry | None = _registry  # (None until install(); read at call time)
        st = registry.get(self.arn, target["Id"]) if registry is not None else None
        if st is None:
            return orig_health_for(self, target, ec2_backend)
        return elb_models.FakeHealthStatus(
            st.target_id, str(st.port), self.health_check_port, st.state, st.reason, st.description
        )

    elb_models.FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]  # patches moto

    orig_describe = elb_models.ELBv2Backend.describe_target_health

    def describe_target_health(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        if not targets and _registry is not None:
            # AWS lists draining targets too until deregistration completes.
            tg = self.target_groups.get(target_group_arn)
            if tg is not None:
                registered = list(tg.targets.values())
                known = {t["Id"] for t in registered}
                draining = [
                    {"Id": s.target_id, "Port": s.port}
                    for s in _registry.states(target_group_arn)
                    if s.state == "draining" and s.target_id not in known
                ]
                targets = registered + draining
        return orig_describe(self, target_group_arn, targets)

    elb_models.ELBv2Backend.describe_target_health = describe_target_health  # type: ignore[method-assign]  # patches moto
