"""Phase 1: the AWS web tier goes down; users must get the maintenance page within the RTO."""
from __future__ import annotations

import time

import allure
from pytest_bdd import parsers, scenarios, then, when

from steps.conftest import attach_json, dry_run_skips, observe_site_write
from steps.runtime import DrillRun, Instant

scenarios("phase1_web_tier_down.feature")


@when(parsers.parse("the AWS web node group is scaled to {desired:d} nodes"))
def scale_web_nodegroup(drill_run: DrillRun, desired: int) -> None:
    eks = drill_run.target.aws.eks
    drill_run.before_fault()  # which backups exist before the fault (Phase 2 restores only those)
    fault = Instant.now()
    entry = drill_run.nodegroups.set_desired(eks.cluster, eks.web_nodegroup, desired)
    drill_run.mark_fault("phase1.fault", fault)
    attach_json("planned change (with inverse)" if entry.planned else "change (with inverse)",
                {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__})


@then(parsers.parse("the web node group settles at {desired:d} nodes"))
def nodegroup_settles(drill_run: DrillRun, desired: int) -> None:
    """The update done (DescribeUpdate), the nodes really gone (the Auto Scaling group's instances),
    and the size the drill set still holding at the end of the wait (no Cluster Autoscaler undid it)."""
    if dry_run_skips(drill_run, f"the web node group settles at {desired} nodes"):
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
    attach_json("node group", {
        "update": update.__dict__, "update_successful_after_seconds": round(update_s, 2),
        "scaling": scaling.__dict__, "auto_scaling_desired_capacity": nodes.desired_capacity,
        "instances": nodes.lifecycle, "settled_after_seconds": round(waited, 2),
    })


@then("the site serves the maintenance page within the maintenance RTO")
def maintenance_within_rto(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the site serves the maintenance page within the maintenance RTO"):
        observe_site_write(drill_run, "phase1")  # planned only
        return
    fault = drill_run.instants["phase1.fault"]
    result = drill_run.measure_rto(
        "phase1", "AWS web tier down → maintenance page", fault, "maintenance",
        drill_run.target.objectives.maintenance_rto_seconds,
    )
    attach_json("measured vs target", result.__dict__)
    # Observed, not judged: pages fail over, but a write takes its own cache behavior (see README).
    observe_site_write(drill_run, "phase1")
    # excluded: a measured value in the history key would make every run a new test in Allure.
    allure.dynamic.parameter("rto_seconds", result.rto_seconds, excluded=True)
    assert result.rto_seconds is not None, (
        f"users never saw the maintenance page sustained within {result.rto_target_seconds:.1f}s + grace"
    )
    assert result.passed, f"maintenance-page RTO {result.rto_seconds:.2f}s exceeds the target {result.rto_target_seconds:.2f}s"


@then("the team's alarms are watched from the fault on: each alarm the web tier's failure must set off exists and notifies the team")
def team_alarms_watched(drill_run: DrillRun) -> None:
    """Each alarm of `alarms.expected.phase1` exists with an ALARM action (actions enabled); from here a
    background watcher measures fault → ALARM (its history) → notification delivered (the receipts queue).
    It is judged in Phase 2 (or, in a Phase-1-only run, at the end of the run): waiting for it here
    would put detection on the outage's critical path, which Phase 2's RTOs are measured along."""
    if dry_run_skips(drill_run, "the team's alarms are watched from the fault on"):
        return
    expected = (drill_run.target.alarms.expected if drill_run.target.alarms else {}).get("phase1", [])
    if not expected:
        drill_run.notes.append("alarms: the target expects no alarm of Phase 1 (alarms.expected.phase1): detection not measured")
        attach_json("alarms", {"expected": [], "note": "detection not measured: alarms.expected.phase1 is not set"})
        return
    states = drill_run.cloudwatch_alarms().describe(list(expected))
    attach_json("alarms watched", {n: None if n not in states else {"state": states[n].state, "actions": states[n].alarm_actions}
                                   for n in expected})
    silent = [f"{n} does not exist" if n not in states else f"{n} notifies no one (no ALARM action, or actions disabled)"
              for n in expected if n not in states or not (states[n].actions_enabled and states[n].alarm_actions)]
    drill_run.start_detection("phase1")  # measured either way: a missing alarm is reported as never fired
    assert not silent, "the team cannot be alerted: " + "; ".join(silent)


@then("the web node group's original size is held in the rollback ledger")
def original_size_in_ledger(drill_run: DrillRun) -> None:
    eks = drill_run.target.aws.eks
    pending = [
        e for e in drill_run.ledger.in_effect()  # in a dry run: the planned change
        if e.inverse.op == "aws.eks.set_scaling" and e.inverse.params["nodegroup"] == eks.web_nodegroup
    ]
    attach_json("rollback ledger", [e.inverse.__dict__ for e in pending])
    assert pending, "no inverse recorded for the node group change"
    assert pending[0].inverse.params["scaling"]["desiredSize"] > 0
