"""Preflight checks of the goupang system's plan (drill/preflight_goupang.py) on fake reads: each part
the real clouds would refuse or silently ignore, broken one at a time, is a named finding; the
seeds' configuration as it should be is none. The facts' shapes are the drivers' (route53.py's
failover_records and health_check_config, azure_compute's power state).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from drill import preflight
from drill.config import PLACEHOLDER, Target, load_target, substitute, validate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "targets" / "production-goupang.example.yaml"
HC = "01234567-89ab-cdef-0123-456789abcdef"
GOUPANG_CHECKS = {"preflight.route53.primary_fails_over", "preflight.route53.health_check_endpoint",
                  "preflight.route53.ttl_within_rto", "preflight.dr_vm.startable"}


def _target(mutate: Any = None) -> Target:
    import steps.preflight  # noqa: F401 — registers every check, the goupang system's included

    text = EXAMPLE.read_text()
    raw = yaml.safe_load(text)
    if mutate is not None:
        mutate(raw)
    env = {m.group(2): "placeholder" for m in PLACEHOLDER.finditer(text) if m.group(1) == "env"}
    return validate(substitute(raw, None, env=env), str(EXAMPLE))


def _facts() -> dict[str, Any]:
    """What the seeds' Route 53 and VM look like, read as the drivers read them."""
    return {
        "route53.records": {
            "www-primary": {"Type": "A", "Failover": "PRIMARY", "HealthCheckId": HC,
                            "AliasTarget": {"HostedZoneId": "ZWKZPGTI48KDX", "DNSName": "k8s-petclinicgroup.elb.amazonaws.com.",
                                            "EvaluateTargetHealth": False}},
            "www-secondary": {"Type": "A", "Failover": "SECONDARY",
                              "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": "d111111abcdef8.cloudfront.net.",
                                              "EvaluateTargetHealth": False}},
        },
        "route53.health_check": {"Type": "HTTPS", "FullyQualifiedDomainName": "k8s-petclinicgroup.elb.amazonaws.com",
                                 "Port": 443, "ResourcePath": "/actuator/health", "RequestInterval": 30, "FailureThreshold": 3},
        "dr_vm": {"exists": True, "power_state": "deallocated"},
    }


def _findings(target: Target, facts: dict[str, Any]) -> dict[str, str]:
    return {f.check: f.detail for f in preflight.run(target, facts)}


def test_the_seeds_plan_as_it_should_be_has_no_finding_and_every_goupang_check_applies() -> None:
    target = _target()
    assert set(preflight.applicable(target)) >= GOUPANG_CHECKS
    assert _findings(target, _facts()) == {}
    # Only the target's system's checks: none of the CloudFront system's runs on a goupang target.
    assert not set(preflight.applicable(target)) - GOUPANG_CHECKS
    assert not GOUPANG_CHECKS & set(preflight.applicable(load_target("lab")))


def _broken(change: Any) -> dict[str, Any]:
    facts = copy.deepcopy(_facts())
    change(facts)
    return facts


def _primary(f: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = f["route53.records"]["www-primary"]
    return rec


@pytest.mark.parametrize(("change", "says"), [
    (lambda f: _primary(f).pop("HealthCheckId"), "always considers it healthy and never answers with the secondary"),
    (lambda f: _primary(f).update(HealthCheckId="another-check"), "uses health check another-check, not " + HC),
    (lambda f: (_primary(f).pop("HealthCheckId"), _primary(f)["AliasTarget"].update(EvaluateTargetHealth=True)),
     "uses its alias target's health (EvaluateTargetHealth), no health check, not " + HC),
    (lambda f: f["route53.records"].pop("www-primary"), "has no PRIMARY failover record with set identifier 'www-primary'"),
    (lambda f: f["route53.records"].pop("www-secondary"), "has no SECONDARY failover record"),
])
def test_a_primary_route_53_would_never_fail_over_or_the_drill_would_not_watch_is_a_finding(change: Any, says: str) -> None:
    found = _findings(_target(), _broken(change))
    assert says in found["preflight.route53.primary_fails_over"]


def test_a_primary_that_evaluates_its_alias_target_and_has_the_health_check_is_no_finding() -> None:
    found = _findings(_target(), _broken(lambda f: _primary(f)["AliasTarget"].update(EvaluateTargetHealth=True)))
    assert "preflight.route53.primary_fails_over" not in found


@pytest.mark.parametrize(("change", "mutate", "says"), [
    (lambda f: f["route53.health_check"].update(Type="HTTP", Port=80), None, "it speaks HTTP (HTTP) where users get HTTPS"),
    (lambda f: f["route53.health_check"].update(Port=8443), None, "it asks port 8443 where users reach port 443"),
    (None, lambda r: r["site"].update(url="https://www.goupang.shop/petclinic/"),
     "its path /actuator/health is outside the site's path /petclinic/"),
    (lambda f: f["route53.health_check"].update(FullyQualifiedDomainName="www.goupang.shop"), None,
     "the failover records' own name"),
    (lambda f: f["route53.health_check"].update(Type="TCP"), None, "it passes while the ALB accepts connections"),
    (lambda f: f["route53.health_check"].update(Type="CALCULATED"), None, "not an endpoint check"),
])
def test_a_health_check_that_does_not_ask_what_the_probe_measures_is_a_finding(change: Any, mutate: Any, says: str) -> None:
    facts = _broken(change) if change else _facts()
    found = _findings(_target(mutate), facts)
    assert says in found["preflight.route53.health_check_endpoint"]


def test_a_health_check_under_the_sites_path_is_no_finding() -> None:
    target = _target(lambda r: r["site"].update(url="https://www.goupang.shop/petclinic/"))
    facts = _broken(lambda f: f["route53.health_check"].update(ResourcePath="/petclinic/actuator/health"))
    assert "preflight.route53.health_check_endpoint" not in _findings(target, facts)


@pytest.mark.parametrize(("change", "objective", "says"), [
    # An alias record: 60 s; 3 × 30 s detection: 150 s fits 180 s, not 120 s.
    (None, 120, "cached for 60 s (an alias record's 60 s)"),
    # A plain record with a 300 s TTL (the console's default): 390 s.
    (lambda f: (_primary(f).pop("AliasTarget"), _primary(f).update(TTL=300)), 180, "cached for 300 s (its TTL)"),
    (lambda f: f["route53.health_check"].update(FailureThreshold=10), 180, "= 300 s after the fault"),
])
def test_a_ttl_the_maintenance_rto_cannot_absorb_is_a_finding(change: Any, objective: int, says: str) -> None:
    target = _target(lambda r: r["objectives"].update(maintenance_rto_seconds=objective))
    found = _findings(target, _broken(change) if change else _facts())
    assert says in found["preflight.route53.ttl_within_rto"]
    assert "beyond objectives.maintenance_rto_seconds" in found["preflight.route53.ttl_within_rto"]


@pytest.mark.parametrize(("vm", "says"), [
    ({"exists": False, "power_state": None}, "does not exist"),
    ({"exists": True, "power_state": "running"}, "is running, not on standby"),
    ({"exists": True, "power_state": "starting"}, "is starting, not on standby"),
])
def test_a_dr_vm_that_is_missing_or_not_on_standby_is_a_finding(vm: dict[str, Any], says: str) -> None:
    found = _findings(_target(), _broken(lambda f: f.update(dr_vm=vm)))
    assert "rg-goupang-dr/vm-goupang-dr" in found["preflight.dr_vm.startable"]
    assert says in found["preflight.dr_vm.startable"]
    assert found["preflight.dr_vm.startable"].startswith("preflight.dr_vm.startable: ")


def test_a_stopped_vm_can_be_started_from() -> None:
    assert "preflight.dr_vm.startable" not in _findings(_target(), _broken(lambda f: f.update(dr_vm={"exists": True,
                                                                                                      "power_state": "stopped"})))


def test_a_fact_that_could_not_be_read_is_a_finding_not_a_pass() -> None:
    facts = _facts()
    del facts["route53.health_check"]
    facts["route53.health_check.error"] = "ClientError: AccessDenied"
    found = _findings(_target(), facts)
    assert "could not be checked" in found["preflight.route53.health_check_endpoint"]
    assert "AccessDenied" in found["preflight.route53.health_check_endpoint"]


def test_the_phases_select_the_checks() -> None:
    broken = _broken(lambda f: f.update(dr_vm={"exists": False, "power_state": None}))
    assert "preflight.dr_vm.startable" not in {f.check for f in preflight.run(_target(), broken, ["phase1"])}
    assert set(preflight.names(["phase2"], system="goupang")) == {"preflight.dr_vm.startable"}
