"""Modeled delays: the documented real-world figures (shared/notes/real-mechanisms.md), scaled.

The lab plays every delay divided by the target file's time scale, so a drill that takes an hour by
hand takes a couple of minutes here while keeping the same order of events.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Timings:
    # EKS managed node group: nodes gone 2-3 min after scale to 0; back up in 3-5 min (runbook).
    node_drain_seconds: float = 150.0
    node_boot_seconds: float = 240.0
    # ALB target group defaults: interval 30 s, timeout 5 s, healthy 5, unhealthy 2; dereg delay 300 s.
    alb_health_interval_seconds: float = 30.0
    alb_health_timeout_seconds: float = 5.0
    alb_healthy_threshold: int = 5
    alb_unhealthy_threshold: int = 2
    alb_deregistration_delay_seconds: float = 300.0
    alb_idle_timeout_seconds: float = 60.0
    # CloudFront: a config change is InProgress 5-10 min; invalidations take minutes.
    cloudfront_deploy_seconds: float = 450.0
    cloudfront_invalidation_seconds: float = 120.0

    def scaled(self, time_scale: float) -> "Timings":
        """Every duration divided by `time_scale`; counts (thresholds) unchanged."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        return replace(
            self,
            **{f.name: getattr(self, f.name) / time_scale for f in fields(self) if f.name.endswith("_seconds")},
        )
