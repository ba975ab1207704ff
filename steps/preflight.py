"""Preflight through the drivers: gather the facts the checks in `drill.preflight` judge, run them.

Facts are read without changing anything (the target file, files it names, manifests the drill would
apply, reads of the always-on side). The checks themselves are pure (drill/preflight.py) and are
registered where the knowledge lives: importing this module imports every module that registers some.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from drill import preflight
from drill.config import Target

# Fact gatherers: name -> function of the target. A gatherer that fails leaves its fact out and
# records why under "<name>.error", so the checks that need it say "could not be checked".
_GATHERERS: dict[str, Callable[[Target], Any]] = {}


def fact(name: str) -> Callable[[Callable[[Target], Any]], Callable[[Target], Any]]:
    def register(fn: Callable[[Target], Any]) -> Callable[[Target], Any]:
        _GATHERERS[name] = fn
        return fn

    return register


def gather(target: Target) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name, fn in _GATHERERS.items():
        try:
            facts[name] = fn(target)
        except Exception as e:  # reported by the checks that need this fact, never silently passed
            facts[f"{name}.error"] = f"{type(e).__name__}: {e}"
    return facts


def run(target: Target, phases: Iterable[str] = preflight.PHASES) -> list[preflight.Finding]:
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
