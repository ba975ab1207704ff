"""Phase 3 of the Route 53 system: failback. Nothing is switched back by hand: once the web tier is
back, Route 53's health checkers see the primary healthy and its answers return to the ALB; users
follow as their resolvers' cached answers expire. The DR VM is then deallocated (its recorded inverse).
"""
from __future__ import annotations

from typing import Any

from pytest_bdd import given, scenarios, then, when

from steps.config_needs import missing
from steps.conftest import attach_json, dry_run_skips
from steps.runtime import DrillRun, wait_until

scenarios("goupang/phase3_route53_failback.feature")


@given("users get the maintenance page and the DR site serves PetClinic after Phase 2")
def after_phase2(drill_run: DrillRun) -> None:
    if not drill_run.continue_phase("phase3", after="phase2.start", sees="maintenance", left_by="Phase 2",
                                   lacking=missing(drill_run.target, "phase3")):
        return
    dr = drill_run.dr_samples()[-5:]
    assert dr and all(s.cls == "azure" for s in dr), f"the DR site does not serve PetClinic: {[s.cls for s in dr]}"


@then("Route 53's health check of the primary is healthy again and the site's name answers with the primary")
def primary_healthy_again(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "Route 53's health check of the primary is healthy again"):
        return
    r = drill_run.target.aws.route53
    assert r is not None
    watch = drill_run.ensure_dns_watch()
    primary = drill_run.state["primary_address"]
    restore = drill_run.instants["phase3.restore"]
    objective = drill_run.target.objectives.failback_rto_seconds
    assert objective is not None, "the target sets no objectives.failback_rto_seconds"
    bound = drill_run.target.scaled(objective + drill_run.target.grace_seconds)
    change = wait_until(lambda: watch.first_change_after(restore.mono, to=primary), bound, poll=0.2)
    status = drill_run.route53().health_check(r.health_check_id)
    attach_json("Route 53", {"health_check": status.as_dict(), "answers": watch.as_list()})
    assert change is not None, f"Route 53 does not answer with the primary {primary} {bound:.1f}s after the restore"
    drill_run.state["phase3.dns_changed"] = change


@then("users get PetClinic from AWS again within the failback RTO")
def aws_again(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "users get PetClinic from AWS again within the failback RTO"):
        return
    objective = drill_run.target.objectives.failback_rto_seconds
    assert objective is not None, "the target sets no objectives.failback_rto_seconds"
    restore = drill_run.instants["phase3.restore"]
    result = drill_run.measure_rto("phase3", "AWS restored → Route 53 fails back → PetClinic from AWS", restore, "aws", objective)
    change = drill_run.state["phase3.dns_changed"]
    if result.rto_seconds is not None:
        result.detail.update({"answer_back_on_primary_seconds": round(change.mono - restore.mono, 3),
                              "dns_ttl_seconds": round(result.rto_seconds - (change.mono - restore.mono), 3)})
    attach_json("measured vs target", result.__dict__)
    assert result.rto_seconds is not None, "users never got PetClinic from AWS again"
    assert result.passed, f"failback RTO {result.rto_seconds:.2f}s exceeds the target {result.rto_target_seconds:.2f}s"


@when("the DR VM is deallocated")
def deallocate_vm(drill_run: DrillRun) -> None:
    (entry,) = [e for e in drill_run.ledger.in_effect() if e.change.op == "azure.vm.start"]
    if entry.planned:
        attach_json(f"planned: carry out the inverse of #{entry.id} (dry run)", entry.inverse.__dict__)
        return
    drill_run.dr_vm().deallocate(timeout=drill_run.target.scaled(900) + 60)
    drill_run.ledger.settled(entry)
    attach_json("change", entry.inverse.__dict__)


@then("the DR VM's power state is deallocated")
def vm_deallocated(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the DR VM's power state is deallocated"):
        return
    reached, seen = drill_run.dr_vm().wait_power("deallocated", drill_run.target.scaled(600), poll=0.2)
    attach_json("power state", {"states": [s for _, s in seen]})
    assert reached, f"the VM is {seen[-1][1]}, not deallocated"


@then("the evidence says whether a signed-in user's session survived each phase")
def sessions_per_phase(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the evidence says whether a signed-in user's session survived each phase"):
        return
    samples = drill_run.session_samples()
    assert samples, "the probe ran no signed-in user (probe.session_user)"
    fault = drill_run.instants["phase1.fault"].mono
    restore = drill_run.instants["phase3.restore"].mono
    before = [s for s in samples if s["mono"] < fault]
    outage = [s for s in samples if fault <= s["mono"] < restore]
    after = [s for s in samples if s["mono"] >= restore and s["class"] == "aws"]
    first_after = after[0] if after else None
    timeout = drill_run.target.scaled(1800)

    def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in rows:
            out[r["session"]] = out.get(r["session"], 0) + 1
        return out

    sessions = drill_run.state.setdefault("sessions", {})
    sessions.update({
        "session_timeout_seconds": round(timeout, 3), "session_timeout_real_seconds": 1800,
        "before_fault": counts(before),
        "phase1_phase2_on_www": {**counts(outage), "what_users_experience":
                                 "the maintenance page: no PetClinic to be signed in to (the session waits in AWS's Redis)"},
        "after_failback": {**counts(after), "first": None if first_after is None else first_after["session"],
                           "what_users_experience": (
                               "still signed in: the session outlived the outage in Redis"
                               if first_after and first_after["session"] == "kept"
                               else "signed out: the outage outlasted the 30-minute session (Redis expired it); users sign in again")},
    })
    attach_json("sessions", sessions)
    assert before and all(s["session"] == "kept" for s in before[-3:]), (
        f"the signed-in user was not signed in before the fault: {counts(before)}")
    assert first_after is not None, "the signed-in user never got PetClinic from AWS again"
