"""Preflight checks of the goupang system's plan (Route 53 DNS failover, the VM DR site): what the real
clouds would refuse, or silently ignore, so that the drill would fail or measure nothing.

Pure functions of the target and facts gathered by `steps/preflight.py` (registered there for the
goupang system only): `route53.records` — the site name's record sets by set identifier, as
drivers.route53.Route53.failover_records gives them (Failover, HealthCheckId, AliasTarget, TTL);
`route53.health_check` — the target's health check's HealthCheckConfig (GetHealthCheck);
`dr_vm` — `{"exists": bool, "power_state": str | None}` of the DR site's VM (its instance view).
Core module: no SDK imports.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from drill.config import Target
from drill.preflight import _fact, check

GOUPANG = ("goupang",)
# Route 53 FAQ (DNS failover) and "Choosing between alias and non-alias records": an alias record has no
# TTL of its own; for an ELB load balancer or a CloudFront distribution Route 53 answers with 60 s.
ALIAS_TTL_SECONDS = 60
# Endpoint health checks that request a page (HealthCheckConfig.Type), and the scheme each speaks.
HTTP_TYPES = {"HTTP": "http", "HTTP_STR_MATCH": "http", "HTTPS": "https", "HTTPS_STR_MATCH": "https"}
DEFAULT_PORT = {"http": 80, "https": 443}
# VM power states (instance view `PowerState/*`) a drill can start the DR site from. Anything else is
# running already (someone else's DR, or a standby left on) or in transition.
STARTABLE = ("deallocated", "stopped")


def _route53(target: Target) -> Any:
    r = target.aws.route53
    assert r is not None  # needs=: the goupang system's schema requires aws.route53
    return r


def _primary(target: Target, facts: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    r = _route53(target)
    records = _fact(facts, "route53.records", f"the record sets of {r.record_name}")
    return records.get(r.primary_set_identifier), records.get(r.secondary_set_identifier)


@check("route53.primary_fails_over", "phase1", needs=["aws"], systems=GOUPANG)
def _primary_fails_over(target: Target, facts: Mapping[str, Any]) -> str | None:
    """Route 53 fails the PRIMARY over only when it has a health status: "If a record … doesn't have an
    associated health check, Route 53 always considers the record to be healthy" (Route 53 Developer
    Guide, *How Amazon Route 53 chooses records when health checking is configured*), unless an alias
    record evaluates its target's health (*Values specific for failover alias records*, Evaluate
    target health). The drill watches `aws.route53.health_check_id`: it must be the one Route 53 uses."""
    r = _route53(target)
    primary, secondary = _primary(target, facts)
    if primary is None or str(primary.get("Failover", "")).upper() != "PRIMARY":
        return (f"{r.record_name} has no PRIMARY failover record with set identifier {r.primary_set_identifier!r} "
                f"(aws.route53.primary_set_identifier): there is nothing for Route 53 to fail over")
    if secondary is None or str(secondary.get("Failover", "")).upper() != "SECONDARY":
        return (f"{r.record_name} has no SECONDARY failover record with set identifier {r.secondary_set_identifier!r} "
                f"(aws.route53.secondary_set_identifier): with the primary unhealthy Route 53 would have nothing else to answer")
    hc = primary.get("HealthCheckId")
    evaluates = bool((primary.get("AliasTarget") or {}).get("EvaluateTargetHealth"))
    if hc is None and not evaluates:
        return (f"the PRIMARY record of {r.record_name} has no health check and does not evaluate its alias target's "
                "health (EvaluateTargetHealth false): Route 53 always considers it healthy and never answers with "
                "the secondary — the drill's fault would take the site down with no failover; associate health "
                f"check {r.health_check_id} with it")
    if hc != r.health_check_id:
        uses = f"health check {hc}" if hc else "its alias target's health (EvaluateTargetHealth), no health check"
        return (f"the PRIMARY record of {r.record_name} uses {uses}, not {r.health_check_id} "
                "(aws.route53.health_check_id): the drill would watch a health check Route 53 does not consult")
    return None


@check("route53.health_check_endpoint", "phase1", needs=["aws"], systems=GOUPANG)
def _health_check_endpoint(target: Target, facts: Mapping[str, Any]) -> str | None:
    """The health check must ask what users get: the site's scheme, port and path (the probe's `site.url`).
    A check on another listener or path can pass while users get errors (an HTTP :80 listener that only
    redirects answers 301, and Route 53 counts 2xx and 3xx as healthy: *How Route 53 determines whether
    a health check is healthy*), and a TCP check passes while the ALB accepts connections and answers
    503 with no target. Naming the failover records' own name in FullyQualifiedDomainName makes results
    "unpredictable" (Route 53 API Reference, HealthCheckConfig, FullyQualifiedDomainName): after
    failover the checkers would probe the secondary."""
    r = _route53(target)
    hc = _fact(facts, "route53.health_check", f"health check {r.health_check_id}")
    kind = str(hc.get("Type", ""))
    if kind == "TCP":
        return (f"health check {r.health_check_id} is a TCP check: it passes while the ALB accepts connections, "
                "which it does with no target left (answering 503), so Route 53 would never fail over; make it an "
                "HTTPS check of the application's health path")
    if kind not in HTTP_TYPES:
        return (f"health check {r.health_check_id} is of type {kind or '(none)'}, not an endpoint check: the drill "
                "reads its FailureThreshold and RequestInterval and compares the endpoint with the site")
    site = urlsplit(target.site.url)
    scheme = HTTP_TYPES[kind]
    port = int(hc.get("Port") or DEFAULT_PORT[scheme])
    site_port = site.port or DEFAULT_PORT.get(site.scheme, 0)
    path = str(hc.get("ResourcePath") or "/")
    base = site.path or "/"
    problems = []
    if scheme != site.scheme:
        problems.append(f"it speaks {scheme.upper()} ({kind}) where users get {site.scheme.upper()} (site.url)")
    if port != site_port:
        problems.append(f"it asks port {port} where users reach port {site_port}")
    if not path.startswith(base if base.endswith("/") else base + "/") and path != base:
        problems.append(f"its path {path} is outside the site's path {base} (site.url)")
    fqdn = str(hc.get("FullyQualifiedDomainName") or "").rstrip(".").lower()
    if fqdn and fqdn == r.record_name.rstrip(".").lower():
        problems.append(f"it checks {fqdn}, the failover records' own name: once Route 53 answers with the secondary "
                        "its checkers would probe the secondary (Route 53 calls the results unpredictable)")
    if not problems:
        return None
    return (f"health check {r.health_check_id} does not ask what the probe measures ({target.site.url}): "
            + "; ".join(problems) + ": it can pass while users get errors, or fail while they do not")


@check("route53.ttl_within_rto", "phase1", needs=["aws"], systems=GOUPANG)
def _ttl_within_rto(target: Target, facts: Mapping[str, Any]) -> str | None:
    """Users keep the primary's answer for its TTL after Route 53 changes it, and Route 53 changes it no
    sooner than FailureThreshold × RequestInterval after the fault: their sum is the fastest a user can
    reach the maintenance page, and must fit the maintenance RTO."""
    r = _route53(target)
    primary, _ = _primary(target, facts)
    if primary is None:
        return None  # route53.primary_fails_over names it
    hc = _fact(facts, "route53.health_check", f"health check {r.health_check_id}")
    ttl = int(primary["TTL"]) if primary.get("TTL") is not None else ALIAS_TTL_SECONDS
    detection = int(hc.get("FailureThreshold") or 3) * int(hc.get("RequestInterval") or 30)
    objective = target.objectives.maintenance_rto_seconds
    if detection + ttl <= objective:
        return None
    where = "its TTL" if primary.get("TTL") is not None else f"an alias record's {ALIAS_TTL_SECONDS} s"
    return (f"the PRIMARY record of {r.record_name} is cached for {ttl} s ({where}) and Route 53 changes its answer no "
            f"sooner than FailureThreshold × RequestInterval = {detection} s after the fault: users reach the "
            f"maintenance page {detection + ttl} s after it at best, beyond objectives.maintenance_rto_seconds "
            f"({objective:g} s); lower the TTL (or the health check's interval or threshold) or restate the objective")


@check("dr_vm.startable", "phase2", needs=["azure"], systems=GOUPANG)
def _dr_vm_startable(target: Target, facts: Mapping[str, Any]) -> str | None:
    """Phase 2 starts the standby VM and, as its inverse, deallocates it: the VM must exist and be on
    standby (deallocated, or stopped). A running one is someone's DR site (or a standby left on): the
    drill would measure no start, and its unwind would deallocate a VM it did not start."""
    az = target.azure
    assert az is not None  # needs=["azure"]
    if az.vm is None:
        return "azure.vm is not set: Phase 2 has no DR VM to start"
    name = f"{az.vm.resource_group or az.resource_group}/{az.vm.name}"
    vm = _fact(facts, "dr_vm", f"Azure VM {name}")
    if not vm.get("exists"):
        return (f"Azure VM {name} (azure.vm) does not exist: Azure would refuse the start (404 ResourceNotFound) "
                "and the DR site could not come up")
    state = vm.get("power_state")
    if state not in STARTABLE:
        return (f"Azure VM {name} is {state}, not on standby ({' or '.join(STARTABLE)}): the drill would measure no "
                "start, and its unwind would deallocate a VM it did not start; run the drill once it is deallocated")
    return None
