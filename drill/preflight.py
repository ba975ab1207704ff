"""Preflight: would the drill's plan work against the real clouds? Named findings, before any change.

Some mistakes only show on the real clouds, half-way through a drill (an IP address as a CloudFront
origin, an App Gateway backend that its subnet cannot reach, a database client without a TLS CA, no
way to get credentials for a cluster created mid-drill). A preflight check finds such a problem
from the target and from facts read without changing anything, and names it:
`preflight.<name>: <what is wrong and what the real service does with it>`.

Checks are pure functions of the target and a mapping of facts (gathered by `steps/preflight.py`
through the drivers), registered with `@check`. They run in a dry run (each finding printed and in
summary.json's `preflight`), in readiness (`pytest -m readiness`: one verdict per check), and before a
real drill's first change (a finding refuses the drill, like the production guard).
Core module: no SDK imports.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from drill.config import Target

PHASES = ("phase1", "phase2", "phase3")


@dataclass(frozen=True)
class Finding:
    check: str  # "preflight.<name>"
    phase: str  # the first phase that would fail on it
    detail: str  # one sentence starting with the check's name
    runbook_step: str | None = None  # the runbook step that makes the same mistake, if any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# A check returns None when all is well, else the problem in words (without its name).
CheckFn = Callable[[Target, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class _Check:
    name: str
    phase: str
    fn: CheckFn
    runbook_step: str | None
    needs: tuple[str, ...]  # target sections without which the check does not apply
    systems: tuple[str, ...]  # the systems whose plan it judges (Target.system)

    def applies(self, target: Target, wanted: set[str]) -> bool:
        return (self.phase in wanted and target.system in self.systems
                and all(getattr(target, s, None) is not None for s in self.needs))


_CHECKS: dict[str, _Check] = {}


def check(name: str, phase: str, *, runbook_step: str | None = None, needs: Iterable[str] = (),
          systems: Iterable[str] = ("cloudfront",)) -> Callable[[CheckFn], CheckFn]:
    """Register a preflight check `preflight.<name>` for `phase` (and the phases after it) of the
    `systems` whose plan it judges (each system's drill makes its own changes)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")

    def register(fn: CheckFn) -> CheckFn:
        if name in _CHECKS:
            raise ValueError(f"preflight check {name!r} registered twice")
        _CHECKS[name] = _Check(name, phase, fn, runbook_step, tuple(needs), tuple(systems))
        return fn

    return register


def names(phases: Iterable[str] = PHASES, system: str | None = None) -> list[str]:
    wanted = set(phases)
    return [f"preflight.{c.name}" for c in _CHECKS.values() if c.phase in wanted and (system is None or system in c.systems)]


def applicable(target: Target, phases: Iterable[str] = PHASES) -> list[str]:
    """The checks that apply to this target and these phases (its system's, their sections present)."""
    wanted = set(phases)
    return [f"preflight.{c.name}" for c in _CHECKS.values() if c.applies(target, wanted)]


def run(target: Target, facts: Mapping[str, Any], phases: Iterable[str] = PHASES) -> list[Finding]:
    """Every finding for the selected phases, in registration order. A check that raises is a finding too."""
    wanted = set(phases)
    out: list[Finding] = []
    for c in _CHECKS.values():
        if not c.applies(target, wanted):
            continue
        name = f"preflight.{c.name}"
        try:
            problem = c.fn(target, facts)
        except Exception as e:  # noqa: BLE001 — a check that cannot decide must not read as a pass
            problem = f"could not be checked: {type(e).__name__}: {e}"
        if problem:
            out.append(Finding(name, c.phase, f"{name}: {problem}", c.runbook_step))
    return out


# -- checks: AKS --
# Facts (steps/preflight.py): `aks.permissions` — what the drill's Azure identity may do in the
# resource group (ARM Microsoft.Authorization/permissions); `aks.subnets` — the subnets of
# kubernetes.virtual_network; `aks.kubelogin` — why kubelogin could not get a token here, or None.

AKS_LIST_USER_CREDENTIAL = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"


def arm_permits(permissions: Iterable[Mapping[str, Any]], action: str) -> bool:
    """ARM's rule for a caller's permissions: some entry's `actions` match `action` and none of that
    entry's `notActions` do (`*` is a wildcard, case-insensitive)."""
    import fnmatch

    def match(patterns: Any) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns or [])

    return any(match(p.get("actions")) and not match(p.get("notActions")) for p in permissions)


def _fact(facts: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in facts:
        raise LookupError(f"{what} could not be read ({facts.get(f'{name}.error', 'not gathered')})")
    return facts[name]


@check("aks.backend_reachable", "phase2", runbook_step="2.4", needs=["kubernetes", "azure"])
def _aks_backend_reachable(target: Target, facts: Mapping[str, Any]) -> str | None:
    k = target.kubernetes
    assert k is not None
    if k.service_type == "ClusterIP":
        return ("the PetClinic Service the drill would deploy exposes only a ClusterIP (runbook 2.3 step 5, used by 2.4): "
                "a virtual address that kube-proxy translates on the cluster's own nodes, which the App Gateway in its "
                "subnet cannot reach — backend Unhealthy, users get 502; set kubernetes.service_type: LoadBalancer "
                "(an internal load balancer, with a private IP in the VNet)")
    if k.internal_lb_subnet is None:
        return None
    subnets = _fact(facts, "aks.subnets", f"the subnets of {k.virtual_network}")
    if k.internal_lb_subnet.lower() not in {str(s).lower() for s in subnets}:
        return (f"the internal load balancer's subnet {k.internal_lb_subnet!r} is not a subnet of {k.virtual_network} "
                f"(it has: {', '.join(sorted(subnets)) or 'none'}): Azure could not make the load balancer, the Service "
                "would stay <pending> and the App Gateway would have no address to reach PetClinic at")
    return None


@check("aks.credentials_route", "phase2", runbook_step="2.3", needs=["kubernetes", "azure"])
def _aks_credentials_route(target: Target, facts: Mapping[str, Any]) -> str | None:
    k, az = target.kubernetes, target.azure
    assert k is not None and az is not None
    if k.kubeconfig:
        return (f"kubernetes.kubeconfig names a fixed file ({k.kubeconfig}), but the AKS cluster is created by the "
                "failover stack during the drill: a kubeconfig from before it existed points at nothing, or at an "
                "earlier cluster whose CA and credentials went with it; remove the key (the drill fetches the new "
                "cluster's credentials from ARM after the apply)")
    permissions = _fact(facts, "aks.permissions", f"what the drill's Azure identity may do in {az.resource_group}")
    if not arm_permits(permissions, AKS_LIST_USER_CREDENTIAL):
        return (f"the drill's Azure identity may not call {AKS_LIST_USER_CREDENTIAL} in resource group "
                f"{az.resource_group}: after the apply ARM would refuse the new cluster's credentials (403 "
                "AuthorizationFailed) and PetClinic could not be deployed; grant it the Azure Kubernetes Service "
                f"Cluster User Role (or Contributor) on {az.resource_group}")
    if k.kubelogin is not None:
        problem = _fact(facts, "aks.kubelogin", "whether kubelogin can get a token here")
        if problem:
            return f"{problem}: the Entra-integrated cluster's kubeconfig would be unusable"
    return None


# -- checks: App Gateway, MySQL, CloudFront ------------------------------------------------------------
# Outputs whose name says they hold an IP address (the runbook's `appgw_public_ip`).
_IP_OUTPUT = re.compile(r"(^|_)(public_)?ip(_address|_addr)?$|public_ip", re.I)
# Outputs that exist once the App Gateway part of the stack is applied.
_GATEWAY_OUTPUTS = ("appgw_name", "appgw_public_ip")


@check("cloudfront_origin_dns_name", "phase2", runbook_step="2.6", needs=["azure", "failover_stack"])
def _origin_is_a_dns_name(target: Target, facts: Mapping[str, Any]) -> str | None:
    """CloudFront refuses an IP address as an origin domain: the stack output used must be a DNS name."""
    from drill.names import origin_domain_problem

    assert target.failover_stack is not None  # needs=: run() calls a check only when its sections are there
    output = target.failover_stack.origin_output
    if _IP_OUTPUT.search(output):
        return (f"failover_stack.origin_output is {output!r}, an IP address output: CloudFront refuses an IP "
                f"address as an origin domain (InvalidArgument); give the App Gateway's public IP a DNS name "
                f"(domain_name_label), output its fqdn and name that output here")
    stack = facts["failover_stack.origin_output"]
    names = set(stack.get("names") or [])
    if output not in names:
        if names & set(_GATEWAY_OUTPUTS):  # the gateway is applied, yet no such output
            return f"the failover stack has no output {output!r} (failover_stack.origin_output); its outputs: {sorted(names)}"
        return None  # not applied yet: the drill checks the value after its apply
    problem = origin_domain_problem(stack.get("value"))
    return f"the failover stack's output {output!r} cannot be CloudFront's origin: {problem}" if problem else None


def _ca_problem(key: str, fact: Mapping[str, Any]) -> str | None:
    if fact.get("error"):
        return f"{key}: {fact['error']}"
    if not fact.get("authorities"):
        return (f"{key} ({fact.get('path')}) holds {fact.get('certificates', 0)} certificate(s) but no certificate "
                f"authority: a server's certificate cannot be verified with it")
    if fact.get("expired") == fact.get("authorities"):
        return f"{key} ({fact.get('path')}): every certificate authority in it has expired"
    return None


@check("primary_database_tls", "phase1", needs=["database"])
def _primary_tls(target: Target, facts: Mapping[str, Any]) -> str | None:
    """The drill talks to the primary (canaries, the marker owner, the unwind) over verified TLS."""
    fact = facts["tls.primary"]
    assert target.database is not None  # needs=["database"]
    if target.database.ssl_ca is None:
        return ("database.ssl_ca is not set: the drill would connect to the primary database without TLS, its "
                "credentials in the clear (RDS offers TLS: give its CA bundle, global-bundle.pem)")
    problem = _ca_problem("database.ssl_ca", fact)
    if problem:
        return problem
    if fact.get("handshake"):
        return f"a verified TLS connection to the primary database with database.ssl_ca failed: {fact['handshake']}"
    return None


@check("azure_mysql_tls", "phase2", runbook_step="2.2", needs=["azure"])
def _azure_mysql_tls(target: Target, facts: Mapping[str, Any]) -> str | None:
    """Azure MySQL Flexible Server refuses insecure transport by default (require_secure_transport=ON)."""
    assert target.azure is not None  # needs=["azure"]
    if target.azure.mysql.ssl_ca is None:
        return ("azure.mysql.ssl_ca is not set: Azure MySQL Flexible Server refuses insecure transport by default "
                "(require_secure_transport=ON: ERROR 3159), and an unverified one proves nothing; give Azure's "
                "root CA bundle (DigiCert Global Root CA/G2, Microsoft RSA Root CA 2017)")
    return _ca_problem("azure.mysql.ssl_ca", facts["tls.azure_mysql"])


@check("mysql_client_address", "phase2", runbook_step="2.2", needs=["azure"])
def _client_address(target: Target, facts: Mapping[str, Any]) -> str | None:
    """The drill must allow its own address through Azure MySQL's firewall (public access)."""
    fact = facts["mysql.client_address"]
    if not fact.get("configured"):
        return ("neither azure.mysql.client_address nor client_address_url is set: the drill cannot create the "
                "firewall rule that lets it restore into Azure MySQL (public access lets in only the addresses "
                "a rule allows)")
    if fact.get("error"):
        return f"the drill's address for Azure MySQL's firewall rule cannot be learned: {fact['error']}"
    return None


@check("azure_class_header", "phase2", needs=["azure"])
def _azure_class_header(target: Target, facts: Mapping[str, Any]) -> str | None:
    """Users' Azure PetClinic is told apart by the header the drill adds on the App Gateway: the probe's
    `azure` rule must look for that header and accept its value."""
    assert target.azure is not None  # needs=["azure"]
    gw = target.azure.app_gateway
    rules = [r for r in (target.probe.rules or []) if r.name == "azure"]
    wanted = f"{gw.served_by_header}: {gw.served_by_value}"
    if not rules:
        return (f"the probe has no `azure` rule: users' PetClinic from Azure would count as AWS's; add one "
                f"matching the header the drill adds ({wanted}) before the `aws` rule")
    for rule in rules:
        header = {k.lower(): v for k, v in (rule.header or {}).items()}
        pattern = header.get(gw.served_by_header.lower())
        if pattern is not None and re.search(pattern, gw.served_by_value):
            return None
    return (f"the probe's `azure` rule does not accept the header the drill adds on the App Gateway ({wanted}): "
            f"users' PetClinic from Azure would not be classified `azure`")
