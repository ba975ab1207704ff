"""Modeled delays: the documented real-world figures (shared/notes/real-mechanisms.md), scaled.

The lab plays every delay divided by the target file's time scale, so a drill that takes an hour by
hand takes a couple of minutes here while keeping the same order of events.

The ALB's health-check interval, timeout, thresholds and deregistration delay are not here: the lab
reads them from the target group itself (lab.alb.HealthCheckSettings), as the load balancer does.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Timings:
    # EKS UpdateNodegroupConfig: the update is InProgress while EKS applies the new scaling to the node
    # group's Auto Scaling group; it is Successful once the ASG has it, before any node has gone or come.
    # AWS documents the statuses, not a duration: 30 s stands for EKS's own processing.
    nodegroup_update_seconds: float = 30.0
    # Scale-in: each surplus node is cordoned and drained (its pods evicted) before its instance
    # terminates; nodes gone 2-3 min after scale to 0 (runbook); back up in 3-5 min (runbook).
    node_drain_seconds: float = 150.0
    node_boot_seconds: float = 240.0
    # Drain start -> the pod evicted: removed from the Service's endpoints (its node's NodePort then
    # refuses connections) and sent SIGTERM; the kubelet kills it after terminationGracePeriodSeconds
    # (Kubernetes' default 30 s) if it is still running.
    pod_eviction_seconds: float = 5.0
    pod_termination_grace_seconds: float = 30.0
    # ALB: the load balancer's idle timeout (a load balancer attribute, default 60 s).
    alb_idle_timeout_seconds: float = 60.0
    # CloudFront: a config change is InProgress 5-10 min; invalidations take minutes.
    cloudfront_deploy_seconds: float = 450.0
    cloudfront_invalidation_seconds: float = 120.0

    def scaled(self, time_scale: float) -> Timings:
        """Every duration divided by `time_scale`; counts (if any) unchanged."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        return replace(
            self,
            **{f.name: getattr(self, f.name) / time_scale for f in fields(self) if f.name.endswith("_seconds")},
        )
