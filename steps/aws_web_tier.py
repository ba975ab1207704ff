"""Shared steps: the AWS web tier behind the ALB, as every system with an EKS primary has it.

The fault both systems' Phase 1 inject (the web node group scaled to 0: EKS drains the nodes, the ALB
loses its targets) and its undoing in Phase 3 mean the same thing whatever sits in front of the ALB
(CloudFront's origin group, Route 53 failover records): one definition each, here. Loaded into every
step module by steps/conftest.py.
"""
from __future__ import annotations

import time
from typing import Any

from pytest_bdd import parsers, then, when

from steps.runtime import DrillRun, Instant


def _attach(name: str, obj: object) -> None:
    from steps.conftest import attach_json

    attach_json(name, obj)


def _dry_run_skips(drill_run: DrillRun, check: str) -> bool:
    from steps.conftest import dry_run_skips

    return dry_run_skips(drill_run, check)


def _entries(drill_run: DrillRun, op: str) -> list[Any]:
    return [e for e in drill_run.ledger.in_effect() if e.change.op == op]


@when(parsers.parse("the AWS web node group is scaled to {desired:d} nodes"))
def scale_web_nodegroup(drill_run: DrillRun, desired: int) -> None:
    eks = drill_run.target.aws.eks
    drill_run.before_fault()  # which backups exist before the fault (Phase 2 restores only those)
    fault = Instant.now()
    entry = drill_run.nodegroups.set_desired(eks.cluster, eks.web_nodegroup, desired)
    drill_run.mark_fault("phase1.fault", fault)
    _attach("planned change (with inverse)" if entry.planned else "change (with inverse)",
                {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__})


@then(parsers.parse("the web node group settles at {desired:d} nodes"))
def nodegroup_settles(drill_run: DrillRun, desired: int) -> None:
    """The update done (DescribeUpdate), the nodes really gone (the Auto Scaling group's instances),
    and the size the drill set still holding at the end of the wait (no Cluster Autoscaler undid it)."""
    if _dry_run_skips(drill_run, f"the web node group settles at {desired} nodes"):
        return
    eks, target = drill_run.target.aws.eks, drill_run.target
    ngs = drill_run.nodegroups
    update_id = ngs.updates.get((eks.cluster, eks.web_nodegroup))
    assert update_id, "this run made no update of the web node group to follow"
    # EKS's own waiters poll every 30 s; 10 s (real-world) is well within its API limits.
    poll = max(0.05, target.scaled(10))
    t0 = time.monotonic()
    update = ngs.wait_update(eks.cluster, eks.web_nodegroup, update_id, timeout=target.scaled(600), poll=poll)
    update_s = time.monotonic() - t0
    # A drained node terminates within minutes (EKS forces termination after 5 min of draining).
    ngs.wait_nodes(eks.cluster, eks.web_nodegroup, desired, timeout=target.scaled(600 + target.grace_seconds), poll=poll)
    waited = time.monotonic() - t0
    # At the end of the settle wait the size the drill set must still hold (SizeChanged says who to suspect).
    scaling, nodes = ngs.check_size(eks.cluster, eks.web_nodegroup, desired)
    _attach("node group", {
        "update": update.__dict__, "update_successful_after_seconds": round(update_s, 2),
        "scaling": scaling.__dict__, "auto_scaling_desired_capacity": nodes.desired_capacity,
        "instances": nodes.lifecycle, "settled_after_seconds": round(waited, 2),
    })


@then("the web node group's original size is held in the rollback ledger")
def original_size_in_ledger(drill_run: DrillRun) -> None:
    eks = drill_run.target.aws.eks
    pending = [
        e for e in drill_run.ledger.in_effect()  # in a dry run: the planned change
        if e.inverse.op == "aws.eks.set_scaling" and e.inverse.params["nodegroup"] == eks.web_nodegroup
    ]
    _attach("rollback ledger", [e.inverse.__dict__ for e in pending])
    assert pending, "no inverse recorded for the node group change"
    assert pending[0].inverse.params["scaling"]["desiredSize"] > 0


@when("the AWS web node group is restored to its original size")
def restore_nodegroup(drill_run: DrillRun) -> None:
    eks = drill_run.target.aws.eks
    (entry,) = [e for e in _entries(drill_run, "aws.eks.set_scaling") if e.change.params["nodegroup"] == eks.web_nodegroup]
    at = Instant.now()
    drill_run.instants["phase3.restore"] = at
    if entry.planned:
        _attach(f"planned: carry out the inverse of #{entry.id} (dry run)", entry.inverse.__dict__)
        return
    drill_run.nodegroups.apply_scaling(eks.cluster, eks.web_nodegroup, _scaling(entry.inverse.params["scaling"]))
    drill_run.ledger.settled(entry)
    _attach("change", entry.inverse.__dict__)


def _scaling(d: dict[str, int]) -> Any:
    from drivers.aws import Scaling

    return Scaling.from_api(d)


