"""The control-plane state a drill may touch, captured before and after, and the difference.

A drill passes only if, once it has put everything back, nothing in this snapshot differs from
before it started. Volatile values (ETags, timestamps) are left out; what users and operators
would call "the configuration" is kept.
"""
from __future__ import annotations

from typing import Any

VOLATILE = {"ETag", "LastModifiedTime", "CallerReference"}


def capture(run: Any) -> dict[str, Any]:
    """Snapshot through the drivers (reads only)."""
    t = run.target
    snap: dict[str, Any] = {}
    eks = t.aws.eks
    ng = run.nodegroups.describe(eks.cluster, eks.web_nodegroup)
    nodes = run.nodegroups.instances(eks.cluster, eks.web_nodegroup)
    # The nodes themselves, not only the size asked for: back means back InService.
    snap["eks"] = {"web_nodegroup": {"scaling": ng["scalingConfig"], "status": ng["status"],
                                     "instances_in_service": nodes.in_service, "instances": len(nodes.lifecycle)}}
    if t.aws.cloudfront is not None:
        cfg, _ = run.cloudfront.config(t.aws.cloudfront.distribution_id)
        snap["cloudfront"] = {
            "origins": {o["Id"]: o for o in cfg["Origins"]["Items"]},
            "origin_groups": (cfg.get("OriginGroups") or {}).get("Items") or [],
            # Which paths go where, with which methods: the default behavior and the ordered ones, in order.
            "default_behavior": cfg["DefaultCacheBehavior"],
            "cache_behaviors": (cfg.get("CacheBehaviors") or {}).get("Items") or [],
            "enabled": cfg.get("Enabled"),
        }
    if t.aws.route53 is not None:
        r = t.aws.route53
        snap["route53"] = {"records": run.route53().failover_records(r.hosted_zone_id, r.record_name),
                           "health_check": run.route53().health_check_config(r.health_check_id),
                           # The answer itself: back on the primary means the health check is healthy again.
                           "answer": run.authoritative_answer()}
    if t.azure is not None and t.azure.vm is not None:
        snap["dr_vm"] = {"power_state": run.dr_vm().power_state()}
    snap["alb"] = {"healthy_targets": run.elb.healthy_count(t.aws.alb.target_group_arn) > 0}
    if t.azure is not None and t.failover_stack is not None:
        snap["azure_failover_stack"] = run.azure_failover_resources()
    if t.database is not None:
        snap["primary_database"] = run.drill_artifacts_in_primary()
    from steps.runtime import dr_relevant_alarms

    if dr_relevant_alarms(t):
        # The team's alarms: a drill that leaves one firing pages people after it is "over".
        snap["alarms"] = run.alarm_states()
    return _strip(snap)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Every difference as `path: before → after`, in a stable order."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for k in sorted(set(before) | set(after), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in after:
                out.append(f"{p}: {before[k]!r} → (missing)")
            elif k not in before:
                out.append(f"{p}: (missing) → {after[k]!r}")
            else:
                out.extend(diff(before[k], after[k], p))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (a, b) in enumerate(zip(before, after, strict=True)) for d in diff(a, b, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} → {after!r}"]


def drill_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the drill left different. An alarm that was not OK before the drill (a previous drill's,
    still clearing, or a real incident) is not the drill's to clear: only alarms OK before must be OK
    after (`alarm_states_before` names the others)."""
    alarms_before, alarms_after = before.get("alarms"), after.get("alarms")
    if isinstance(alarms_before, dict) and isinstance(alarms_after, dict):
        after = {**after, "alarms": {k: (alarms_before[k] if alarms_before.get(k) != "OK" and k in alarms_before else v)
                                     for k, v in alarms_after.items()}}
    return diff(before, after)


def alarms_not_ok(snapshot: dict[str, Any]) -> dict[str, str]:
    """The baseline's alarms that were not OK when it was taken."""
    alarms = snapshot.get("alarms")
    return {k: v for k, v in alarms.items() if v != "OK"} if isinstance(alarms, dict) else {}
