"""The modeled critical path of each drill phase, from the lab's event log.

A phase's RTO runs from its start (the fault, or the restore for Phase 3) to the instant users got
the expected page. Part of it the clouds impose: the delays the lab *models* (documented real-world
durations divided by the time scale: node drain and boot, ALB health checks, Terraform resource
creation, the App Gateway update, readiness probes, CloudFront's deployment). The rest is not
modeled and not scaled: the harness's own work and waiting (polling, sequencing, the restore, the
verification) and real process start-up. This module finds, in lab-events.jsonl, the chain of
modeled operations each phase had to wait for, in order:

  phase1       EKS drain until the primary stops serving (no replica left, or no routable target)
  phase2-data  the drain (the runbook finishes Phase 1 first) → MySQL Flexible Server created →
               its dependents in the data tier's apply (database, parameter, firewall rule) → the
               drill's own firewall rule created (ARM) → that rule in effect
  phase2       the drain → MySQL → its dependents → the rest of the stack (AKS, App Gateway) created
               → PetClinic on AKS (rollout with readiness delays, and its internal load balancer's
               IP) → each App Gateway update (backend, rewrite rule) → CloudFront deployed
  phase3       EKS updates the node group → a web node boots → the ALB's health check finds its
               target healthy

and those of the goupang system (Route 53 failover, the VM DR site: goupang_chain).

Each segment is [the event that starts the modeled operation, the event that ends it], searched
after the previous segment, clipped to the phase's window. `modeled_seconds` is their total; the
gaps between them (named) are the time the phase spent on anything else. The lab's real-world
figure scales the modeled part only: modeled × time_scale + the rest.

The event names are the lab's (lab/web_tier.py, lab/failover_stack.py, lab/kube, lab/azure,
lab/aws/cloudfront.py); a segment that cannot be found makes the phase's split unknown (None, and
the reason), never a guess.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lab.failover_stack import MYSQL
from lab.timing import Timings

Event = dict[str, Any]
Match = Callable[[Event], bool]

# A web node's replica stops serving (evicted as its drain starts, or stopped with the node); the
# node itself is gone at "node terminated" (a lab that logs no such event stops the replica then).
STOPS_SERVING = {"pod evicted", "replica evicted", "replica stopped"}
# The ALB has nothing left to send a request to (the lab's wording before and after its ALB model).
NOTHING_TO_ROUTE = {"no routable targets", "no serving targets"}


@dataclass(frozen=True)
class Segment:
    what: str
    start: float  # monotonic, as the lab and the drill both stamp
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


class Missing(LookupError):
    """A modeled operation the phase waited for is not in the event log."""


def _is(source: str, *names: str) -> Match:
    return lambda e: e.get("source") == source and e.get("event") in names


def _first(events: Sequence[Event], match: Match, after: float, what: str) -> Event:
    for e in events:
        if e["mono"] >= after and match(e):
            return e
    raise Missing(f"{what}: not in the lab's event log after {after:.3f}")


def _drain(events: Sequence[Event], fault: float, until_all_gone: bool) -> Segment:
    """fault → the primary stops serving (the earlier of: the ALB has nothing to route to, every
    drained node's replica has stopped serving), or, with until_all_gone, → every drained node is
    gone (what the drill waits for before Phase 2: the runbook completes Phase 1 first)."""
    after = [e for e in events if e["mono"] >= fault]
    drained = {e.get("instance") for e in after if e.get("source") == "web-tier" and e.get("event") == "node draining"}
    if not drained:
        raise Missing("EKS node drain: no 'node draining' after the fault")

    def each(names: set[str]) -> float | None:
        """When every drained node had met its first event named in `names` (None if one never did)."""
        first: dict[str, float] = {}
        for e in after:
            if e.get("source") == "web-tier" and e.get("event") in names and e.get("instance") in drained:
                first.setdefault(e["instance"], e["mono"])
        return max(first.values()) if set(first) >= drained else None

    if until_all_gone:
        gone = each({"node terminated"} if any(e.get("event") == "node terminated" for e in after) else {"replica stopped"})
        if gone is None:
            raise Missing("EKS node drain: not every drained node is gone in the event log")
        return Segment("EKS drains the web nodes (the runbook completes Phase 1 first)", fault, gone)
    nothing = next((e["mono"] for e in after if e.get("source") == "alb" and e.get("event") in NOTHING_TO_ROUTE), None)
    ends = [x for x in (each(STOPS_SERVING), nothing) if x is not None]
    if not ends:
        raise Missing("EKS node drain: the primary never stopped serving in the event log")
    return Segment("EKS drain until the primary stops serving", fault, min(ends))


def _between(events: Sequence[Event], what: str, start: Match, end: Match, after: float) -> Segment:
    a = _first(events, start, after, what)
    b = _first(events, end, a["mono"], what)
    return Segment(what, a["mono"], b["mono"])


def _cloudfront_deploy(events: Sequence[Event], after: float, deploy_seconds: float) -> Segment:
    update = _first(events, _is("cloudfront", "distribution updated"), after, "CloudFront deployment")
    try:  # the lab's own word when it says so; else its modeled deploy time
        end = _first(events, _is("cloudfront", "distribution deployed"), update["mono"], "CloudFront deployment")["mono"]
    except Missing:
        end = update["mono"] + deploy_seconds
    return Segment("CloudFront deploys the change to the edges", update["mono"], end)


def _data_tier(events: Sequence[Event], after: float) -> Segment:
    """MySQL present → the data tier's targeted apply done (what depends on the server: its
    database, parameters and firewall rule, created after it as Terraform orders them)."""
    end = _first(events, lambda e: e.get("source") == "stack" and e.get("event") == "apply succeeded" and bool(e.get("targets")),
                 after, "the data tier's apply")
    return Segment("Terraform creates what depends on the server (database, parameters, firewall rule)", after, end["mono"])


def _aks_service(events: Sequence[Event], after: float) -> Segment:
    """PetClinic on AKS: its rollout (readiness delays) and, in parallel, the internal load balancer
    Azure gives its Service (the App Gateway's backend); the later of the two ends it."""
    pod = _first(events, _is("kube", "pod started"), after, "PetClinic rollout on AKS")
    available = _first(events, _is("kube", "deployment available"), pod["mono"], "PetClinic rollout on AKS")
    start, end = pod["mono"], available["mono"]
    try:
        lb = _first(events, _is("kube", "load balancer assigned"), after, "the internal load balancer")
        start, end = min(start, lb["mono"] - float(lb.get("seconds") or 0.0)), max(end, lb["mono"])
    except Missing:
        pass  # a ClusterIP/NodePort Service: no load balancer to wait for
    return Segment("PetClinic on AKS: rollout (readiness probe delays) and its internal load balancer IP", max(start, after), end)


def _gateway_updates(events: Sequence[Event], after: float, until: float) -> list[Segment]:
    """The App Gateway updates the phase still waited for between `after` (PetClinic's Service has
    its address) and `until` (CloudFront's change): the backend update, and the part of any earlier
    one (the rewrite rule, run while the load balancer was being made) that outlasted `after`."""
    out: list[Segment] = []
    at = after
    for e in events:
        if not (e.get("source") == "azure-arm" and e.get("event") == "gateway update started") or e["mono"] >= until:
            continue
        end = _first(events, _is("azure-arm", "gateway provisioned"), e["mono"], "an App Gateway update")["mono"]
        if end > at:
            out.append(Segment(f"an App Gateway update ({len(out) + 1})", max(e["mono"], at), end))
            at = end
    if not out:
        raise Missing("the App Gateway's backend update: not in the lab's event log")
    return out


# The TTL Route 53 gives alias answers (lab.aws.route53.ALIAS_TTL; not imported: that module loads moto).
ALIAS_TTL = 60


def _dns_ttl(after: float, time_scale: float) -> Segment:
    """Users' resolvers keep the old answer for its TTL (60 s, played scaled by the probe's resolver)."""
    return Segment(f"users' resolvers keep the cached answer (TTL {ALIAS_TTL} s)", after, after + ALIAS_TTL / time_scale)


def goupang_chain(phase: str, ev: Sequence[Event], start: float, time_scale: float) -> list[Segment]:
    """The goupang system's phases (features/goupang/):

      phase1  EKS drain until the primary stops serving → Route 53's checkers fail the health check
              (FailureThreshold × RequestInterval, staggered) → users' cached answers expire (TTL)
      phase2  the VM starts (PowerState/running) → its guest boots and serves
      phase3  the CloudFront system's phase3 (EKS update, a node boots, the ALB finds it healthy) →
              Route 53's checkers pass the health check → users' cached answers expire (TTL)
    """
    if phase == "phase1":
        drain = _drain(ev, start, until_all_gone=False)
        what = "Route 53's health checkers fail the primary (threshold × interval)"
        unhealthy = _first(ev, _is("route53", "health check unhealthy"), drain.end, what)["mono"]
        return [drain, Segment(what, drain.end, unhealthy), _dns_ttl(unhealthy, time_scale)]
    if phase == "phase2":
        boot = _between(ev, "the VM starts (PowerState/running)", _is("azure-vm", "power state starting"),
                        _is("azure-vm", "power state running"), start)
        guest = _between(ev, "the VM's guest boots (nginx, PetClinic)", _is("azure-vm", "power state running"),
                         _is("azure-vm", "guest serving"), boot.end)
        return [boot, guest]
    if phase == "phase3":
        aws = chain("phase3", ev, start, time_scale)  # the web tier back behind the ALB, as for CloudFront
        r53 = _between(ev, "Route 53's health checkers pass the primary again (threshold × interval)",
                       _is("alb", "target healthy"), _is("route53", "health check healthy"), aws[-1].end)
        return [*aws, Segment(r53.what, aws[-1].end, r53.end), _dns_ttl(r53.end, time_scale)]
    raise Missing(f"no modeled chain is known for the goupang system's {phase}")


def chain(phase: str, events: Sequence[Event], start: float, time_scale: float, system: str = "cloudfront") -> list[Segment]:
    """The modeled operations `phase` of `system` waited for, in order, from `start` (monotonic). Raises Missing."""
    ev = sorted(events, key=lambda e: e["mono"])
    if system == "goupang":
        return goupang_chain(phase, ev, start, time_scale)
    if system != "cloudfront":
        raise Missing(f"no modeled chain is known for system {system!r}")
    if phase == "phase1":
        return [_drain(ev, start, until_all_gone=False)]
    if phase == "phase3":
        out: list[Segment] = []
        boot_after = start
        try:  # the node group update (DescribeUpdate Successful) before a node is asked for
            upd = _first(ev, _is("eks", "nodegroup update successful"), start, "EKS node group update")
            nxt = _first(ev, _is("web-tier", "node booting"), start, "a web node boots")
            if upd["mono"] <= nxt["mono"]:
                out.append(Segment("EKS updates the node group (its Auto Scaling group set)", start, upd["mono"]))
                boot_after = upd["mono"]
        except Missing:
            pass
        boot = _between(ev, "a web node boots", _is("web-tier", "node booting"), _is("web-tier", "node ready"), boot_after)
        check = _between(ev, "the ALB's health check finds the new target healthy", _is("web-tier", "node ready"),
                         _is("alb", "target healthy"), boot.end)
        return [*out, boot, check]
    if phase not in ("phase2", "phase2-data"):
        raise Missing(f"no modeled chain is known for {phase}")
    out = [_drain(ev, start, until_all_gone=True)]
    out.append(_between(ev, "Terraform creates MySQL Flexible Server", _is("stack", f"{MYSQL} creating"),
                        _is("stack", f"{MYSQL} present"), out[-1].end))
    out.append(_data_tier(ev, out[-1].end))
    if phase == "phase2-data":
        rule = _between(ev, "the drill's firewall rule created (ARM)", _is("azure-arm", "mysql firewall rule update started"),
                        _is("azure-arm", "mysql firewall rule created"), out[-1].end)
        effect = Segment("the drill's firewall rule takes effect", rule.end,
                         _first(ev, _is("azure-mysql", "firewall opened"), rule.end, "the firewall rule in effect")["mono"])
        return [*out, rule, effect]
    out.append(_between(ev, "Terraform creates the rest of the stack (AKS, App Gateway)",
                        lambda e: e.get("source") == "stack" and str(e.get("event", "")).endswith(" creating"),
                        lambda e: e.get("source") == "stack" and e.get("event") == "apply succeeded" and not e.get("targets"),
                        out[-1].end))
    out.append(_aks_service(ev, out[-1].end))
    update = _first(ev, _is("cloudfront", "distribution updated"), out[-1].end, "CloudFront deployment")["mono"]
    out.extend(_gateway_updates(ev, out[-1].end, update))
    out.append(_cloudfront_deploy(ev, out[-1].end, Timings().scaled(time_scale).cloudfront_deploy_seconds))
    return out


def split(phase: str, events: Iterable[Event], start: float, reached: float, time_scale: float,
          system: str = "cloudfront") -> dict[str, Any]:
    """How much of [start, reached] was modeled, the rest, and the real-world equivalent.

    {"modeled_seconds", "unscaled_seconds", "real_world_seconds", "chain": [{what, seconds}],
     "gaps": [{before, seconds}]} — or {"unknown": reason} when a segment is missing.
    """
    evs = [e for e in events if isinstance(e.get("mono"), (int, float))]
    try:
        segments = chain(phase, evs, start, time_scale, system)
    except Missing as e:
        return {"unknown": str(e)}
    clipped = [Segment(s.what, max(s.start, start), min(s.end, reached)) for s in segments]
    modeled = sum(s.seconds for s in clipped)
    rto = reached - start
    gaps, at = [], start
    for s in clipped:
        if s.start > at:
            gaps.append({"before": s.what, "seconds": round(s.start - at, 3)})
        at = max(at, s.end)
    if reached > at:
        gaps.append({"before": "users see the expected page (probe sampling, and the rest)", "seconds": round(reached - at, 3)})
    return {
        "modeled_seconds": round(modeled, 3),
        "unscaled_seconds": round(rto - modeled, 3),
        "real_world_seconds": round(modeled * time_scale + (rto - modeled), 1),
        # Segments that end after users already had the page: the lab served before it finished.
        "ends_after_reached": [s.what for s in segments if s.end > reached + 1e-6],
        "chain": [{"what": s.what, "seconds": round(s.seconds, 3)} for s in clipped],
        "gaps": gaps,
    }
