"""The App Gateway / MySQL / CloudFront preflight checks (drill/preflight.py), as pure functions of the
target and the facts: each finding comes from breaking one part, healthy facts give none.
(tests/lab/test_lab_preflight_appgw.py gathers the same facts from a running lab and breaks the real parts.)
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from drill import preflight
from drill.config import Target, load_target

MINE = {"preflight.cloudfront_origin_dns_name", "preflight.primary_database_tls", "preflight.azure_mysql_tls",
        "preflight.mysql_client_address", "preflight.azure_class_header"}
CA = {"path": "/ca.pem", "certificates": 2, "authorities": 2, "expired": 0, "subjects": ["CN=root"]}
HEALTHY: dict[str, Any] = {
    "failover_stack.origin_output": {"names": [], "value": None},  # not applied yet
    "tls.primary": {**CA, "handshake": None},
    "tls.azure_mysql": dict(CA),
    "mysql.client_address": {"configured": True, "address": "203.0.113.7"},
}


def mine(target: Target, facts: dict[str, Any]) -> dict[str, str]:
    return {f.check: f.detail for f in preflight.run(target, facts) if f.check in MINE}


def with_(target: Target, section: str, sub: str | None = None, **values: Any) -> Target:
    """A copy of `target` with `values` set in `section` (or in `section.sub`)."""
    sec = getattr(target, section)
    if sub is None:
        return target.model_copy(update={section: sec.model_copy(update=values)})
    inner = getattr(sec, sub).model_copy(update=values)
    return target.model_copy(update={section: sec.model_copy(update={sub: inner})})


@pytest.fixture(scope="module")
def lab() -> Target:
    t = load_target("lab")
    t = with_(t, "database", ssl_ca="/ca.pem")
    t = with_(t, "azure", "mysql", ssl_ca="/ca.pem", client_address_url="http://127.0.0.1:9/")
    return t


def test_all_registered_for_their_phases_and_a_healthy_plan_has_no_finding(lab: Target) -> None:
    assert set(preflight.applicable(lab)) >= MINE
    assert {"preflight.primary_database_tls"} == MINE & set(preflight.names(["phase1"]))
    assert mine(lab, HEALTHY) == {}
    applied = {**HEALTHY, "failover_stack.origin_output": {
        "names": ["appgw_fqdn", "appgw_name", "appgw_public_ip"], "value": "appgw-blue-dr.koreacentral.cloudapp.azure.com"}}
    assert mine(lab, applied) == {}


@pytest.mark.parametrize("output", ["appgw_public_ip", "public_ip", "gateway_ip", "appgw_ip_address"])
def test_an_ip_address_output_as_the_origin(lab: Target, output: str) -> None:
    found = mine(with_(lab, "failover_stack", origin_output=output), HEALTHY)
    assert list(found) == ["preflight.cloudfront_origin_dns_name"]
    assert "an IP address output: CloudFront refuses an IP address" in found["preflight.cloudfront_origin_dns_name"]


def test_an_applied_stack_whose_origin_output_is_an_ip_or_missing(lab: Target) -> None:
    ip = {**HEALTHY, "failover_stack.origin_output": {"names": ["appgw_fqdn", "appgw_name"], "value": "20.41.0.12"}}
    assert "is an IP address" in mine(lab, ip)["preflight.cloudfront_origin_dns_name"]
    missing = {**HEALTHY, "failover_stack.origin_output": {"names": ["appgw_name", "appgw_public_ip"], "value": None}}
    assert "has no output 'appgw_fqdn'" in mine(lab, missing)["preflight.cloudfront_origin_dns_name"]
    unread = {k: v for k, v in HEALTHY.items() if k != "failover_stack.origin_output"}
    assert "could not be checked" in mine(lab, unread)["preflight.cloudfront_origin_dns_name"]


@pytest.mark.parametrize("fact, expected", [
    ({"path": "/nope.pem", "error": "cannot read /nope.pem: No such file or directory"}, "cannot read"),
    ({"path": "/x", "error": "/x holds no PEM certificate"}, "no PEM certificate"),
    ({**CA, "authorities": 0, "certificates": 1}, "no certificate authority"),
    ({**CA, "expired": 2}, "has expired"),
    ({**CA, "handshake": "OperationalError: (2003, \"... CERTIFICATE_VERIFY_FAILED ...\")"}, "verified TLS connection"),
])
def test_a_primary_ca_bundle_that_cannot_verify(lab: Target, fact: dict[str, Any], expected: str) -> None:
    found = mine(lab, {**HEALTHY, "tls.primary": fact})
    assert list(found) == ["preflight.primary_database_tls"] and expected in found["preflight.primary_database_tls"]


def test_no_ca_for_either_database(lab: Target) -> None:
    found = mine(with_(lab, "database", ssl_ca=None), {**HEALTHY, "tls.primary": {"path": None}})
    assert "database.ssl_ca is not set" in found["preflight.primary_database_tls"]
    found = mine(with_(lab, "azure", "mysql", ssl_ca=None), {**HEALTHY, "tls.azure_mysql": {"path": None}})
    assert list(found) == ["preflight.azure_mysql_tls"] and "ERROR 3159" in found["preflight.azure_mysql_tls"]
    found = mine(lab, {**HEALTHY, "tls.azure_mysql": {**CA, "authorities": 0}})
    assert "no certificate authority" in found["preflight.azure_mysql_tls"]


def test_the_drills_address_for_the_firewall(lab: Target) -> None:
    found = mine(lab, {**HEALTHY, "mysql.client_address": {"configured": False}})
    assert list(found) == ["preflight.mysql_client_address"]
    assert "cannot create the firewall rule" in found["preflight.mysql_client_address"]
    found = mine(lab, {**HEALTHY, "mysql.client_address": {
        "configured": True, "error": "the drill's egress address 2001:db8::1 is an IPv6 address"}})
    assert "IPv6" in found["preflight.mysql_client_address"]


def test_the_probe_must_look_for_the_header_the_drill_adds(lab: Target) -> None:
    rules = copy.deepcopy(lab.probe.rules)
    without_azure = [r for r in rules if r.name != "azure"]
    found = mine(lab.model_copy(update={"probe": lab.probe.model_copy(update={"rules": without_azure})}), HEALTHY)
    assert list(found) == ["preflight.azure_class_header"] and "no `azure` rule" in found["preflight.azure_class_header"]
    other = with_(lab, "azure", "app_gateway", served_by_value="dr-site")
    assert "does not accept the header" in mine(other, HEALTHY)["preflight.azure_class_header"]
