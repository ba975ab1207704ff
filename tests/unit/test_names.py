"""DNS names versus IP addresses where the real service takes only one (drill/names.py)."""
from __future__ import annotations

import pytest

from drill.names import ipv4_problem, origin_domain_problem


@pytest.mark.parametrize("value", ["appgw-blue-dr.koreacentral.cloudapp.azure.com", "bloberry01.z12.web.core.windows.net",
                                   "origin.example.com.", "a_b.example.org"])
def test_dns_names_are_origin_domains(value: str) -> None:
    assert origin_domain_problem(value) is None


@pytest.mark.parametrize("value, expected", [
    ("20.41.0.12", "is an IP address"), ("127.0.0.1", "is an IP address"), ("2001:db8::7", "is an IP address"),
    ("[2001:db8::7]", "is an IP address"), ("localhost", "single label"), ("", "not a domain name"),
    (None, "not a domain name"), ("http://x.example.com/", "not a valid DNS name"), ("a" * 120 + ".example.com", "at most 128"),
])
def test_what_cloudfront_refuses_as_an_origin_domain(value: object, expected: str) -> None:
    problem = origin_domain_problem(value)
    assert problem is not None and expected in problem


def test_firewall_addresses_are_ipv4_only() -> None:
    assert ipv4_problem("203.0.113.7") is None and ipv4_problem(" 127.0.0.1 ") is None
    assert "IPv6" in (ipv4_problem("2001:db8::1") or "")
    assert "not an IP address" in (ipv4_problem("ifconfig.me") or "")


def test_phase2_checks_the_origin_output_before_cloudfront_is_called() -> None:
    from steps.cloudfront.test_phase2 import _mysql_server_name, _origin_domain

    fqdn = "appgw-blue-dr.koreacentral.cloudapp.azure.com"
    assert _origin_domain({"appgw_fqdn": fqdn + "."}, "appgw_fqdn") == fqdn
    with pytest.raises(AssertionError, match=r"output 'appgw_public_ip' cannot be CloudFront's origin: 20\.41\.0\.12 is an IP"):
        _origin_domain({"appgw_public_ip": "20.41.0.12"}, "appgw_public_ip")
    with pytest.raises(AssertionError, match="has no output 'appgw_fqdn'"):
        _origin_domain({"appgw_public_ip": "20.41.0.12"}, "appgw_fqdn")
    # The firewall's server: the stack's `mysql_server_name` output, required after the data tier's apply
    # (tests/unit/test_terraform_stack.py: a missing one is refused there, naming it).
    assert _mysql_server_name({"mysql_server_name": "mysql-dr-blue", "mysql_fqdn": "127.0.0.1"}) == "mysql-dr-blue"
