"""The guard's decisions that need no cloud: is this run the lab, and real time outside it.

"Is this the lab?" is decided by the endpoints (every one a lab's this process started or attached),
never by the file having a `lab:` section; outside the lab time_scale must be 1. The refusals come
before any call to a cloud (these tests have none to make); tests/lab/test_safety.py drives the
rest of the guard (STS, the Azure subscription) against a running lab.
"""
from __future__ import annotations

import pytest
from test_config import LAB_ENDPOINTS

from drill.config import load_target
from drivers.safety import Refused, check_production_guard, lab_mismatches, refuse_unless_lab, stand_in_endpoints

LAB = load_target("lab", LAB_ENDPOINTS)


def test_a_lab_target_on_its_labs_endpoints_is_the_lab() -> None:
    assert lab_mismatches(LAB, LAB_ENDPOINTS) == []
    assert check_production_guard(LAB, environ={}, lab_endpoints=LAB_ENDPOINTS) == [
        "lab: every endpoint is the lab's this run started or attached: no production guard"]
    # Before a lab runs, a `lab:` target's own ${lab:...} placeholders match the stand-ins.
    assert lab_mismatches(load_target("lab"), stand_in_endpoints()) == []


def test_a_lab_at_another_time_scale_than_the_targets_is_refused() -> None:
    """`drill lab up --time-scale 60` attached under a target of 30: every objective compared at half
    the lab's pace (a pass the clouds would not give) — refused before anything starts, opt-in or not."""
    assert LAB.time_scale == 30 and LAB_ENDPOINTS.get("time_scale", 30) == 30
    faster = {**LAB_ENDPOINTS, "time_scale": 60.0}
    for env in ({}, {"DRILL_ALLOW_PRODUCTION": "1"}):
        with pytest.raises(Refused, match=r"the lab runs at time scale 60 but target 'lab' has time_scale 30"):
            check_production_guard(LAB, environ=env, lab_endpoints=faster)
    with pytest.raises(Refused, match=r"drill lab up --time-scale 30"):
        refuse_unless_lab(LAB, faster)
    refuse_unless_lab(LAB, {**LAB_ENDPOINTS, "time_scale": 30})  # the same pace: the lab


@pytest.mark.parametrize(("endpoint", "value", "named"), [
    ("aws_endpoint", "http://127.0.0.1:6666", "aws.endpoint_url is http://127.0.0.1:5555"),
    ("arm_endpoint", "https://127.0.0.1:6667", "azure.arm_endpoint is https://127.0.0.1:5556"),
    ("terraform_binary", "/usr/bin/terraform", "failover_stack.terraform_binary is /tmp/terraform"),
    ("azure_subscription_id", "another-subscription", "azure.subscription_id is"),
])
def test_a_lab_section_does_not_make_a_target_the_lab(endpoint: str, value: str, named: str) -> None:
    """The lab this run attached is another one (or the file points elsewhere): not the lab."""
    other = {**LAB_ENDPOINTS, endpoint: value}
    with pytest.raises(Refused) as e:
        check_production_guard(LAB, environ={}, lab_endpoints=other)
    assert "has a `lab:` section, but it is not the lab" in str(e.value) and named in str(e.value)
    # With the opt-in it is judged as production, where a lab's time scale is refused.
    with pytest.raises(Refused, match="time_scale must be 1, not 30"):
        check_production_guard(LAB, environ={"DRILL_ALLOW_PRODUCTION": "1"}, lab_endpoints=other)


def test_unset_endpoints_are_the_real_services() -> None:
    real_aws = LAB.model_copy(update={"aws": LAB.aws.model_copy(update={"endpoint_url": None})})
    assert lab_mismatches(real_aws, LAB_ENDPOINTS) == ["aws.endpoint_url is (unset: the real service)"]
    with pytest.raises(Refused, match=r"aws.endpoint_url is \(unset: the real service\)"):
        check_production_guard(real_aws, environ={}, lab_endpoints=LAB_ENDPOINTS)


def test_a_lab_target_without_a_lab_is_refused() -> None:
    with pytest.raises(Refused, match="has a `lab:` section, but it is not the lab"):
        check_production_guard(LAB, environ={})


def test_outside_the_lab_time_scale_must_be_one_before_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "placeholder-client-secret")
    monkeypatch.setenv("AZURE_MYSQL_ADMIN_PASSWORD", "placeholder-admin-password")
    monkeypatch.setenv("DRILL_SIGNING_KEY", "placeholder-signing-key")
    prod = load_target("targets/production.example.yaml")
    scaled = prod.model_copy(update={"time_scale": 0.1})  # past validation, as a hand-built target could be
    with pytest.raises(Refused, match=r"time_scale must be 1, not 0.1 \(it would divide every objective by 0.1\)"):
        check_production_guard(scaled, environ={"DRILL_ALLOW_PRODUCTION": "1"})
    with pytest.raises(Refused, match="set DRILL_ALLOW_PRODUCTION=1"):
        check_production_guard(prod, environ={})
