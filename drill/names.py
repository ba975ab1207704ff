"""DNS names versus IP addresses, where a real service accepts only one of them.

CloudFront: "The origin domain is the DNS domain name of the resource ... Your origin domain must
have a publicly resolvable DNS name" (CloudFront Developer Guide, Origin settings); the API answers
an IP address with 400 InvalidArgument ("The parameter origin name cannot be an IP address").
A custom origin's DomainName may hold a-z, A-Z, 0-9, dots, hyphens and underscores, at most 128
characters (CloudFront API Reference, Origin). Azure MySQL firewall rules take IPv4 addresses only
("Firewall rule isn't available for IPv6 format", Public Network Access for Flexible Server).
Core module: stdlib only.
"""
from __future__ import annotations

import ipaddress
import re

_ORIGIN_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")


def origin_domain_problem(value: object) -> str | None:
    """Why `value` cannot be a CloudFront custom origin's DomainName, or None if it can."""
    if not isinstance(value, str) or not value.strip():
        return f"{value!r} is not a domain name"
    name = value.strip().rstrip(".")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        return (f"{name} is an IP address: CloudFront refuses an IP address as an origin domain "
                f"(InvalidArgument, 'The parameter origin name cannot be an IP address')")
    if len(name) > 128 or not _ORIGIN_CHARS.match(name):
        return f"{name!r} is not a valid DNS name for an origin (a-z, 0-9, '.', '-', '_', at most 128 characters)"
    if "." not in name:
        return f"{name!r} is a single label, not a publicly resolvable DNS name"
    return None


def ipv4_problem(value: object) -> str | None:
    """Why `value` cannot be an Azure MySQL firewall rule's address (IPv4 only), or None."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return f"{value!r} is not an IP address"
    if address.version != 4:
        return f"{address} is an IPv6 address: Azure MySQL firewall rules take IPv4 addresses only"
    return None
