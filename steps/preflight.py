"""Preflight through the drivers: gather the facts the checks in `drill.preflight` judge, run them.

Facts are read without changing anything (the target file, files it names, manifests the drill would
apply, reads of the always-on side). The checks themselves are pure (drill/preflight.py) and are
registered where the knowledge lives: importing this module imports every module that registers some.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from drill import (
    preflight,
    preflight_goupang,  # noqa: F401 — registers the goupang system's checks
)
from drill.config import Target
from drivers.retries import api_settings

# Fact gatherers: name -> (the systems whose checks read it, function of the target). A gatherer that
# fails leaves its fact out and records why under "<name>.error", so the checks that need it say
# "could not be checked". Only the target's system's facts are read (another system's would only be errors).
_GATHERERS: dict[str, tuple[tuple[str, ...], Callable[[Target], Any]]] = {}


def fact(name: str, systems: Iterable[str] = ("cloudfront",)) -> Callable[[Callable[[Target], Any]], Callable[[Target], Any]]:
    def register(fn: Callable[[Target], Any]) -> Callable[[Target], Any]:
        _GATHERERS[name] = (tuple(systems), fn)
        return fn

    return register


def gather(target: Target) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name, (systems, fn) in _GATHERERS.items():
        if target.system not in systems:
            continue
        try:
            facts[name] = fn(target)
        except Exception as e:  # noqa: BLE001 — reported by the checks that need this fact, never silently passed
            facts[f"{name}.error"] = f"{type(e).__name__}: {e}"
    return facts


def run(target: Target, phases: Iterable[str] = preflight.PHASES) -> list[preflight.Finding]:
    """The target's system's checks for these phases, on facts read now."""
    return preflight.run(target, gather(target), phases)


# -- facts: AKS --

@fact("aks.permissions")
def _aks_permissions(target: Target) -> list[dict[str, Any]]:
    """What the drill's Azure identity may do in the resource group of the failover stack."""
    from drivers.actions import azure_auth
    from drivers.aks import caller_permissions, make_client

    if target.azure is None or target.kubernetes is None:
        raise LookupError("no azure/kubernetes section")
    auth = azure_auth(target)
    return caller_permissions(make_client(auth), auth.subscription_id, target.azure.resource_group)


@fact("aks.subnets")
def _aks_subnets(target: Target) -> list[str]:
    """The subnets of the VNet the cluster (and its internal load balancer) lives in."""
    from drivers.actions import azure_auth
    from drivers.azure_network import make_client

    if target.azure is None or target.kubernetes is None:
        raise LookupError("no azure/kubernetes section")
    net = make_client(azure_auth(target))
    return [str(s.name) for s in net.subnets.list(target.azure.resource_group, target.kubernetes.virtual_network)]


@fact("aks.kubelogin")
def _aks_kubelogin(target: Target) -> str | None:
    """Why kubelogin could not get a token on this machine (no binary, variables unset), or None."""
    from drivers.aks import Kubelogin, kubelogin_problem

    k = target.kubernetes
    if k is None or k.kubelogin is None:
        return None
    return kubelogin_problem(Kubelogin(k.kubelogin.mode, k.kubelogin.binary))


# -- facts: App Gateway, MySQL, CloudFront ----------------------------------------------------------------
@fact("failover_stack.origin_output")
def _stack_origin_output(target: Target) -> dict[str, Any]:
    """The failover stack's output names now, and the value of the one CloudFront's origin is set to
    (`terraform output -json`: a read of the state; nothing before an apply). Other values are dropped:
    some outputs are sensitive."""
    from drivers.terraform_stack import stack_terraform

    fs = target.failover_stack
    if fs is None:
        return {}
    tf = stack_terraform(target)  # the target's identity and variables, as the drill's own Terraform
    tf.init()  # a remote backend answers nothing before init
    outputs = tf.output()
    return {"names": sorted(outputs), "value": outputs.get(fs.origin_output)}


@fact("tls.primary")
def _primary_tls(target: Target) -> dict[str, Any]:
    """The primary's CA bundle, and whether a verified TLS connection with it works (a read: SELECT 1)."""
    if target.database is None or target.database.ssl_ca is None:
        return {"path": None}
    from drivers.aws import Aws, Secrets
    from drivers.database import Database
    from drivers.tls_ca import inspect_ca_bundle

    out = inspect_ca_bundle(target.database.ssl_ca)
    if "error" in out:
        return out
    s = Secrets(Aws(target.aws, api_settings(target))).json(target.database.secret_id)
    db = Database(str(s["host"]), int(s["port"]), str(s["username"]), str(s["password"]), str(s["dbname"]),
                  ssl_ca=target.database.ssl_ca)
    try:
        with db.connect(read_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        out["handshake"] = None
    except Exception as e:  # noqa: BLE001 — the password never appears in pymysql's messages
        out["handshake"] = f"{type(e).__name__}: {e}"
    return out


@fact("tls.azure_mysql")
def _azure_mysql_tls(target: Target) -> dict[str, Any]:
    """Azure MySQL's CA bundle (the server itself exists only after the apply)."""
    if target.azure is None or target.azure.mysql.ssl_ca is None:
        return {"path": None}
    from drivers.tls_ca import inspect_ca_bundle

    return inspect_ca_bundle(target.azure.mysql.ssl_ca)


@fact("mysql.client_address")
def _client_address(target: Target) -> dict[str, Any]:
    """The address the drill would allow through Azure MySQL's firewall (asks the echo URL: a read)."""
    if target.azure is None:
        return {}
    m = target.azure.mysql
    if m.client_address is None and m.client_address_url is None:
        return {"configured": False}
    from drivers.mysql_firewall import EgressError, egress_address

    try:
        return {"configured": True, "address": egress_address(m.client_address, m.client_address_url,
                                                              timeout=target.probe.timeout_seconds * 5)}
    except EgressError as e:
        return {"configured": True, "error": str(e)}


# -- facts: Route 53 and the DR VM (the goupang system) ------------------------------------------------------
GOUPANG = ("goupang",)


def _r53(target: Target) -> Any:
    from drivers.aws import Aws
    from drivers.route53 import Route53

    if target.aws.route53 is None:
        raise LookupError("no aws.route53 section")
    return Route53(Aws(target.aws, api_settings(target))), target.aws.route53


@fact("route53.records", GOUPANG)
def _route53_records(target: Target) -> dict[str, dict[str, Any]]:
    """The site name's record sets by set identifier (ListResourceRecordSets: a read)."""
    r53, cfg = _r53(target)
    return dict(r53.failover_records(cfg.hosted_zone_id, cfg.record_name))


@fact("route53.health_check", GOUPANG)
def _route53_health_check(target: Target) -> dict[str, Any]:
    """The health check's settings (GetHealthCheck: a read)."""
    r53, cfg = _r53(target)
    return dict(r53.health_check_config(cfg.health_check_id))


@fact("dr_vm", GOUPANG)
def _dr_vm(target: Target) -> dict[str, Any]:
    """Whether the DR VM exists and its power state (the instance view: a read)."""
    from azure.core.exceptions import ResourceNotFoundError

    from drivers.actions import azure_auth
    from drivers.azure_compute import make_client, power_state

    az = target.azure
    if az is None or az.vm is None:
        raise LookupError("no azure.vm section")
    try:
        state = power_state(make_client(azure_auth(target)), az.vm.resource_group or az.resource_group, az.vm.name)
    except ResourceNotFoundError:
        return {"exists": False, "power_state": None}
    return {"exists": True, "power_state": state}
