"""Phase 1 of the Route 53 system: the AWS web tier goes down; Route 53's health check fails the primary
over to the maintenance page, and users get it once their resolvers' cached answers expire.

The fault and the node group's settling are the shared steps (steps/aws_web_tier.py). The RTO is
measured as for the CloudFront system (fault → first request sustaining the maintenance class), and
broken into its parts: detection (fault → Route 53's authoritative answer changes, as seen on the
zone's name server: FailureThreshold × RequestInterval of the health checkers, and Route 53's own
reaction) and DNS TTL (answer changed → users' resolvers let go of the old one and they get the page).
"""
from __future__ import annotations

import allure
from pytest_bdd import given, scenarios, then

from steps.conftest import attach_json, dry_run_skips
from steps.runtime import DrillRun, wait_until

scenarios("goupang/phase1_route53_failover_to_maintenance.feature")


def _route53(drill_run: DrillRun):  # type: ignore[no-untyped-def]
    r = drill_run.target.aws.route53
    assert r is not None, f"target {drill_run.target.name!r} has no aws.route53 section"
    return r


@given("Route 53's health check of the primary is healthy and the site's name answers with the primary")
def primary_healthy(drill_run: DrillRun) -> None:
    r = _route53(drill_run)
    status = drill_run.route53().health_check(r.health_check_id)
    records = drill_run.route53().failover_records(r.hosted_zone_id, r.record_name)
    watch = drill_run.ensure_dns_watch()
    answer = watch.current()
    drill_run.state["primary_address"] = answer
    attach_json("Route 53", {"health_check": status.as_dict(), "records": records, "answer": answer})
    roles = {v.get("Failover") for v in records.values()}
    assert {"PRIMARY", "SECONDARY"} <= roles, f"{r.record_name} is not a pair of failover records: {records}"
    assert status.healthy, (f"the primary's health check is not healthy: {status.reporting_success}/{status.checkers} "
                            "checkers report success")
    served = {s.address for s in drill_run.samples()[-20:] if s.address}
    assert answer is not None and (not served or answer in served), (
        f"the zone answers {answer!r} but users were served from {sorted(served)}")


@then("Route 53's health check of the primary goes unhealthy")
def health_check_unhealthy(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "Route 53's health check of the primary goes unhealthy"):
        return
    r = _route53(drill_run)
    hc = drill_run.route53().health_check_config(r.health_check_id)
    # FailureThreshold consecutive failures at RequestInterval, per checker, plus the objective's slack.
    bound = drill_run.target.scaled(hc.get("FailureThreshold", 3) * hc.get("RequestInterval", 30) + drill_run.target.grace_seconds)
    unhealthy = wait_until(lambda: not drill_run.route53().health_check(r.health_check_id).healthy, bound, poll=0.2)
    status = drill_run.route53().health_check(r.health_check_id)
    attach_json("health check", {"config": hc, "status": status.as_dict()})
    assert unhealthy, f"the health check still reports the primary healthy after {bound:.1f}s"


@then("Route 53 answers the site's name with the secondary, the maintenance page's distribution")
def answers_secondary(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "Route 53 answers the site's name with the secondary"):
        return
    watch = drill_run.ensure_dns_watch()
    primary = drill_run.state["primary_address"]
    fault = drill_run.instants["phase1.fault"]
    bound = drill_run.target.scaled(drill_run.target.objectives.maintenance_rto_seconds + drill_run.target.grace_seconds)
    change = wait_until(lambda: watch.first_change_after(fault.mono, away_from=primary), bound, poll=0.1)
    attach_json("authoritative answers", watch.as_list())
    assert change is not None and change.address is not None, f"Route 53 still answers {primary} after {bound:.1f}s"
    drill_run.state["secondary_address"] = change.address
    drill_run.state["phase1.dns_changed"] = change


@then("users get the maintenance page within the maintenance RTO, detection and DNS TTL broken out")
def maintenance_within_rto(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "users get the maintenance page within the maintenance RTO"):
        return
    fault = drill_run.instants["phase1.fault"]
    result = drill_run.measure_rto("phase1", "AWS web tier down → Route 53 failover → maintenance page", fault,
                                   "maintenance", drill_run.target.objectives.maintenance_rto_seconds)
    change = drill_run.state["phase1.dns_changed"]
    if result.rto_seconds is not None:
        detection = change.mono - fault.mono
        first = drill_run.reaching_sample("maintenance", fault.mono)
        served = sorted({s.address for s in drill_run.samples() if s.mono >= fault.mono and s.cls == "maintenance" and s.address})
        result.detail.update({
            "detection_seconds": round(detection, 3),
            "dns_ttl_seconds": round(result.rto_seconds - detection, 3),
            "detection": "fault → Route 53's answer changed (health checkers: FailureThreshold × RequestInterval)",
            "dns_ttl": "answer changed → users' resolvers dropped the cached primary (≤ the record's TTL)",
            "secondary_address": change.address, "maintenance_served_from": served,
            "first_maintenance_address": first.address if first else None,
        })
    attach_json("measured vs target", result.__dict__)
    allure.dynamic.parameter("rto_seconds", result.rto_seconds, excluded=True)
    assert result.rto_seconds is not None, (
        f"users never saw the maintenance page sustained within {result.rto_target_seconds:.1f}s + grace")
    assert result.passed, f"maintenance-page RTO {result.rto_seconds:.2f}s exceeds the target {result.rto_target_seconds:.2f}s"
