"""Steps shared by every phase: what users see, and the AWS primary's state."""
from __future__ import annotations

import json
import time
from typing import Any

import allure
from pytest_bdd import given, parsers, then

# Shared step definitions (pytest-bdd registers each as a fixture of the module it is defined in;
# importing them here makes them fixtures of this conftest, so every system's step modules see them).
from steps.aws_web_tier import *  # noqa: F403
from steps.config_needs import missing
from steps.runtime import DrillRun, refuse_lacking, wait_until

_MASK: list[Any] = []  # the run's Masker, once a drill run exists


def attach_json(name: str, obj: object) -> None:
    """Attach `obj` to the Allure step as JSON, masked as data before it is serialised."""
    if _MASK:
        obj = _MASK[0].data(obj)
    text = json.dumps(obj, indent=2, default=str)
    if _MASK:
        text = _MASK[0](text)
    allure.attach(text, name=name, attachment_type=allure.attachment_type.JSON)


def dry_run_skips(drill_run: DrillRun, check: str) -> bool:
    """True in a dry run, where a check of a change's effect cannot be made: nothing was changed.

    The check is named in Allure and in summary.json's `not_evaluated`, never passed silently.
    """
    if not drill_run.dry_run:
        return False
    drill_run.not_evaluated.append(check)
    allure.dynamic.tag("dry-run")
    attach_json("not evaluated (dry run)", {"check": check, "why": "a dry run makes no change, so there is no effect to check"})
    return True


def observe_site_write(drill_run: DrillRun, phase: str) -> dict[str, Any] | None:
    """What a user's write through the site gets now, attached to the step (a dry run only plans it)."""
    seen = drill_run.site_write(phase)
    if seen is not None:
        attach_json(f"a user's write through the site ({phase})", seen)
    return seen


@given("PetClinic is served from AWS")
def petclinic_served_from_aws(drill_run: DrillRun) -> None:
    t0 = time.monotonic()
    drill_run.begin_phase("phase1")
    # Phase 1 is every drill's first phase: nothing to continue, but what it needs must be set.
    refuse_lacking(drill_run.target.name, "phase1", missing(drill_run.target, "phase1"))
    drill_run.ensure_probe()
    drill_run.ensure_baseline()
    drill_run.ensure_canary()
    bound = max(15.0, drill_run.target.scaled(drill_run.target.grace_seconds))
    seen = wait_until(lambda: drill_run.current_class() == "aws", bound, poll=0.2)
    assert seen, f"users do not see PetClinic from AWS (they see {drill_run.current_class()!r}) after {bound:.0f}s"
    attach_json("steady state", {"class": "aws", "waited_seconds": round(time.monotonic() - t0, 2)})


@given("the ALB reports healthy targets")
def alb_healthy(drill_run: DrillRun) -> None:
    health = drill_run.elb.target_health(drill_run.target.aws.alb.target_group_arn)
    attach_json("target health", [t.__dict__ for t in health])
    assert any(t.state == "healthy" for t in health), f"no healthy ALB target: {health}"


@then("the ALB reports healthy targets")
def alb_becomes_healthy(drill_run: DrillRun) -> None:
    # After a restore: EKS updates the Auto Scaling group, nodes boot (3-5 min), then each new target
    # must pass one health check (HealthCheckIntervalSeconds after registration) to be healthy.
    tg = drill_run.target.aws.alb.target_group_arn
    failback = drill_run.target.objectives.failback_rto_seconds
    assert failback is not None, "the target sets no objectives.failback_rto_seconds"
    bound = drill_run.target.scaled(failback + drill_run.target.grace_seconds)
    healthy = wait_until(lambda: drill_run.elb.healthy_count(tg) > 0, bound, poll=0.5)
    health = drill_run.elb.target_health(tg)
    attach_json("target health", [t.__dict__ for t in health])
    assert healthy, f"no healthy ALB target after {bound:.0f}s: {health}"


@then("the ALB reports no healthy targets")
def alb_no_healthy(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the ALB reports no healthy targets"):
        return
    tg = drill_run.target.aws.alb.target_group_arn
    bound = drill_run.target.scaled(drill_run.target.grace_seconds)
    none_healthy = wait_until(lambda: drill_run.elb.healthy_count(tg) == 0, bound, poll=0.5)
    health = drill_run.elb.target_health(tg)
    attach_json("target health", [t.__dict__ for t in health])
    assert none_healthy, f"the ALB still has healthy targets after {bound:.0f}s: {health}"


@given(parsers.parse('CloudFront\'s origin group fails over from "{primary}" to "{secondary}" on {codes}'))
def origin_group_fails_over(drill_run: DrillRun, primary: str, secondary: str, codes: str) -> None:
    want = sorted(int(c) for c in codes.replace(" and ", ",").split(",") if c.strip())
    cf = drill_run.target.aws.cloudfront
    assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
    group = drill_run.cloudfront.origin_group(cf.distribution_id)
    attach_json("origin group", group)
    assert group is not None, "the default cache behaviour does not target an origin group"
    members = [m["OriginId"] for m in group["Members"]["Items"]]
    got = sorted(int(c) for c in group["FailoverCriteria"]["StatusCodes"]["Items"])
    assert members == [primary, secondary], f"origin group members are {members}"
    assert got == want, f"failover status codes are {got}, expected {want}"
