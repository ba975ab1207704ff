"""Phase 3: failback. The drill carries out its own recorded inverses, then proves nothing is left.

Decision on data written on Azure during the outage (the seeds are silent): it is NOT replicated
back. The drill counts it and reports it as data that would be lost on failback, in the step's
attachment and in summary.json (`failback_data_loss`), so operators see the size of the gap.
"""
from __future__ import annotations

import threading

from pytest_bdd import given, scenarios, then, when

from drill.ledger import Entry
from steps.config_needs import missing
from steps.conftest import attach_json, dry_run_skips, observe_site_write
from steps.runtime import DrillRun

scenarios("cloudfront/phase3_failback_to_aws.feature")


def _entries(drill_run: DrillRun, op: str) -> list[Entry]:
    return [e for e in drill_run.ledger.in_effect() if e.change.op == op]


@given("PetClinic is served from Azure after Phase 2")
def azure_after_phase2(drill_run: DrillRun) -> None:
    # Not in a dry run: nothing changed, and reading Azure-only rows would write a real owner.
    if not drill_run.continue_phase("phase3", after="phase2.origin_switched", sees="azure", left_by="Phase 2",
                                   lacking=missing(drill_run.target, "phase3")):
        return
    drill_run.state["azure_only_rows"] = drill_run.azure_only_rows()


@then("the site serves PetClinic from AWS again within the failback RTO")
def aws_again(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the site serves PetClinic from AWS again within the failback RTO"):
        observe_site_write(drill_run, "phase3")  # planned only
        return
    objective = drill_run.target.objectives.failback_rto_seconds
    assert objective is not None, "the target sets no objectives.failback_rto_seconds"
    result = drill_run.measure_rto(
        "phase3", "AWS restored → PetClinic served from AWS", drill_run.instants["phase3.restore"], "aws", objective,
    )
    attach_json("measured vs target", result.__dict__)
    write = observe_site_write(drill_run, "phase3")
    assert result.rto_seconds is not None, "users never got PetClinic from AWS again"
    assert result.passed, f"failback RTO {result.rto_seconds:.2f}s exceeds the target {result.rto_target_seconds:.2f}s"
    # Served again means users can write again: the form is saved, into the primary.
    assert write is not None and write["accepted"] and write["rows_in_primary"] == 1, (
        f"users still cannot add an owner through the site after failback: {write}"
    )


@when("CloudFront's secondary origin is reverted to the Blob maintenance site and the Azure failover stack destroyed")
def revert_and_destroy(drill_run: DrillRun) -> None:
    # Both at once: users are on the primary again, so the secondary is idle while it changes.
    cf = drill_run.target.aws.cloudfront
    assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
    (origin,) = [e for e in _entries(drill_run, "aws.cloudfront.set_origin") if e.change.params["origin_id"] == cf.secondary_origin_id]
    stack = drill_run.stack_entry()
    if origin.planned:
        attach_json("planned: carry out inverses (dry run)", [origin.inverse.__dict__, stack.inverse.__dict__])
        return
    errors: list[BaseException] = []

    def destroy() -> None:
        try:
            drill_run.terraform().destroy()
        except BaseException as e:  # noqa: BLE001 — reported below: even an interrupt inside the destroy thread must reach the step
            errors.append(e)
            return
        # Settled here, not in the step: an interrupt after the destroy must not undo it again
        # (and what was inside the stack needs no inverse of its own: the ledger knows).
        drill_run.ledger.settled(stack)

    destroying = threading.Thread(target=destroy, name="terraform-destroy", daemon=True)
    drill_run.state["stack_destroy"] = destroying  # the end-of-run unwind waits for it
    destroying.start()
    drill_run.cloudfront.apply_origin(cf.distribution_id, cf.secondary_origin_id, origin.inverse.params["settings"])
    drill_run.ledger.settled(origin)
    deployed = drill_run.cloudfront.wait_deployed(cf.distribution_id, timeout=drill_run.target.scaled(1200) + 30)
    destroying.join(timeout=drill_run.target.scaled(3600) + 60)
    assert not destroying.is_alive(), "terraform destroy did not finish"
    if errors:
        raise AssertionError(f"terraform destroy failed: {errors[0]}")
    # The stack's resources are gone, and with them everything created inside them.
    for e in drill_run.ledger.outstanding():
        if e.within == stack.id:
            drill_run.ledger.settled(e)
    attach_json("failback", {"cloudfront_deployed_after_seconds": round(deployed, 2), "stack": "destroyed"})


@then("CloudFront's secondary origin is the Blob maintenance site again")
def origin_is_blob(drill_run: DrillRun) -> None:
    cf = drill_run.target.aws.cloudfront
    assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
    assert drill_run.baseline is not None, "no baseline of the system was captured before the drill: nothing to compare with"
    before = drill_run.baseline["cloudfront"]["origins"][cf.secondary_origin_id]
    now = drill_run.cloudfront.origin(cf.distribution_id, cf.secondary_origin_id)
    attach_json("secondary origin", {"before_drill": before, "now": now})
    assert now == before, "the secondary origin differs from before the drill"


@then("no Azure failover resource remains")
def nothing_remains(drill_run: DrillRun) -> None:
    left = drill_run.azure_failover_resources()
    attach_json("Azure failover resources", left)
    assert not any(left.values()), f"Azure failover resources remain: {left}"


@then("data written on Azure during the outage is reported as lost on failback")
def azure_data_reported(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "data written on Azure during the outage is reported as lost on failback"):
        return
    rows = drill_run.state.get("azure_only_rows", {})
    drill_run.failback_data_loss = {
        "policy": "not replicated back: rows written on Azure during the outage are lost on failback",
        "rows": rows,
        "total": sum(rows.values()),
    }
    attach_json("data lost on failback", drill_run.failback_data_loss)
    assert set(rows) >= {"owners", "pets", "visits"}, f"Azure-only rows were not counted: {rows}"


@then("the team's alarms are back to OK within the clear objective after failback")
def alarms_cleared(drill_run: DrillRun) -> None:
    """Node group restored → every alarm that fired back to OK, against objectives.alarm_clear_seconds.
    An alarm that cleared before the restore (while users still had no primary) is reported as such."""
    if dry_run_skips(drill_run, "the team's alarms are back to OK within the clear objective after failback"):
        return
    if not drill_run.detections:
        attach_json("alarms", {"note": "no alarm was expected to fire (alarms.expected): nothing to clear"})
        return
    cleared = drill_run.wait_for_clear(drill_run.instants["phase3.restore"])
    attach_json("alarms: failback → OK", [c.as_dict() for c in cleared])
    late = [f"{c.alarm} is {c.state_now}" + ("" if c.clear_seconds is None else f", OK {c.clear_seconds:.2f}s after the restore")
            for c in cleared if not c.passed]
    assert not late, f"alarms not back to OK within {cleared[0].objective_seconds:.1f}s of the restore: " + "; ".join(late)
