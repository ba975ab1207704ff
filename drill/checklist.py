"""The runbook's checklist (dr-failover-test-guide.md, "체크리스트"), item by item, with its proof.

Each item keeps the runbook's Korean text and an English gloss, and says how the drill proves it:
a function of the evidence bundle — summary.json, actions.json (the rollback ledger) and, against
the lab, lab-events.jsonl (the lab's ground truth). A check has one of four results:

    passed      the evidence shown proves the item
    failed      the evidence shows the item was not achieved (e.g. an RTO over its target)
    not proven  the item's phase ran, but nothing in the evidence proves this item
                (e.g. the scenario stopped before it, or the drill does not check it)
    not run     the item's phase did not run in this drill — never shown as passed
    dry run     a dry run (`--dry-run`) changed nothing, so no item is proven; the plan is shown

This module is the checklist's data and nothing else: the items, their proofs and `evaluate`. The
human-readable report of a bundle (report.md, report.html) renders it in drill/report.py. Core
module: stdlib only.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PASSED, FAILED, NOT_PROVEN, NOT_RUN, DRY_RUN = "passed", "failed", "not proven", "not run", "dry run"
STATUSES = (PASSED, FAILED, NOT_PROVEN, NOT_RUN, DRY_RUN)

PHASE_TITLES = {
    1: ("Phase 1: 단기 장애 (Blob Storage Failover)", "short outage: CloudFront fails over to the Blob maintenance page"),
    2: ("Phase 2: 장기 DR (Azure Application Gateway)", "long outage: PetClinic served from Azure through the App Gateway"),
    3: ("Phase 3: AWS 복구 및 정상화", "AWS recovered, traffic back on AWS, Azure failover stack removed"),
}


@dataclass(frozen=True)
class Check:
    status: str
    evidence: str  # the measurement that proves (or disproves) the item, in words
    source: str = ""  # where it comes from: "summary.json phases[phase1]", "actions.json #3", …


@dataclass(frozen=True)
class Item:
    phase: int
    number: str  # "1.1" … in the runbook's order
    ko: str  # the runbook's text, verbatim
    en: str  # English gloss
    how: str  # how the drill proves it, in words
    prove: Callable[[Evidence], Check]


# -- the evidence, with the questions every proof asks ---------------------------------------------

def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _clock(t: float | None) -> str:
    if t is None:
        return "?"
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


def _secs(x: Any) -> str:
    return f"{float(x):.2f} s" if isinstance(x, (int, float)) and not isinstance(x, bool) else "?"


class Evidence:
    """summary.json, actions.json and lab-events.jsonl of one bundle, and what proofs ask of them."""

    def __init__(self, summary: dict[str, Any] | None, actions: Sequence[Any] | None = None,
                 events: Sequence[Any] | None = None) -> None:
        # As read from the evidence: anything that is not an object is skipped.
        self.summary = summary if isinstance(summary, dict) else {}
        self.actions = [a for a in (actions or []) if isinstance(a, dict)]
        self.events = [e for e in (events or []) if isinstance(e, dict)]
        self.has_events = bool(self.events)
        self.phases = [p for p in (self.summary.get("phases") or []) if isinstance(p, dict)]
        self.failed_steps = [str(s) for s in (self.summary.get("failed_steps") or [])]
        p1 = self.phase("phase1")
        self.fault_t = _ts(p1.get("fault_at")) if p1 else None
        self.origin_t = self.fault_t if self.fault_t is not None else _ts(self.summary.get("started_at"))

    # phases
    def phase(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.phases if p.get("name") == name), None)

    def scenario_failures(self, n: int) -> list[str]:
        return [s for s in self.failed_steps if f"test_phase{n}.py" in s]

    def ran(self, n: int) -> bool:
        """Did phase n run (at least start) in this drill?"""
        if any(str(p.get("name", "")).startswith(f"phase{n}") for p in self.phases) or self.scenario_failures(n):
            return True
        if n == 1:
            return bool(self.scale_to_zero())
        if n == 2:
            return bool(self.ops("provisioner.apply")) or self.summary.get("rpo") is not None
        return False

    def scenario_passed(self, n: int) -> bool:
        return self.ran(n) and not self.scenario_failures(n)

    def stopped_early(self, n: int) -> str:
        if self.scenario_failures(n):
            return f"not reached: Phase {n}'s scenario failed before this item was proven (see Failed steps)"
        return f"not reached: Phase {n} stopped before this item was proven"

    # the ledger
    def ops(self, op: str, pred: Callable[[dict[str, Any]], bool] = lambda a: True) -> list[dict[str, Any]]:
        return [a for a in self.actions if (a.get("change") or {}).get("op") == op and pred(a)]

    def scale_to_zero(self) -> list[dict[str, Any]]:
        return self.ops("aws.eks.set_scaling",
                        lambda a: ((a["change"].get("params") or {}).get("scaling") or {}).get("desiredSize") == 0)

    # lab events
    def lab(self, event: str, source: str | None = None, after: float | None = None,
            pred: Callable[[dict[str, Any]], bool] = lambda e: True) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event and (source is None or e.get("source") == source)
                and (after is None or (_ts(e.get("t")) or 0) >= after) and pred(e)]

    # words
    def at(self, t: float | None) -> str:
        """05:17:43.685Z (fault +5.33 s)"""
        if t is None:
            return "?"
        if self.fault_t is not None:
            return f"{_clock(t)} (fault {t - self.fault_t:+.2f} s)"
        return _clock(t)

    def action_words(self, a: dict[str, Any]) -> str:
        desc = (a.get("change") or {}).get("description") or (a.get("change") or {}).get("op")
        return f"ledger #{a.get('id')} “{desc}”"


def _phase_rto(e: Evidence, name: str, what: str) -> Check:
    p = e.phase(name)
    src = f"summary.json phases[{name}]"
    if p is None:
        return Check(NOT_PROVEN, f"no {name} measurement in summary.json ({e.stopped_early(int(name[5]))})", src)
    rto, target = p.get("rto_seconds"), p.get("rto_target_seconds")
    real = p.get("rto_real_equivalent_seconds")
    real_target = p.get("rto_target_real_seconds")
    scale = e.summary.get("time_scale")
    raw_detail = p.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    split = (f": {detail['modeled_seconds']:g} s modeled × {scale:g} + {detail['unscaled_seconds']:g} s unscaled"
             if isinstance(detail.get("modeled_seconds"), (int, float)) and isinstance(detail.get("unscaled_seconds"), (int, float))
             else "")
    real_words = (f" (real-world ≈ {real:g} s / {real_target:g} s{split})"
                  if isinstance(real, (int, float)) and isinstance(real_target, (int, float)) and scale not in (None, 1, 1.0)
                  else "")
    if rto is None:
        return Check(FAILED, f"{what}: not reached — the target was {_secs(target)}{real_words}; "
                             f"measured from {e.at(_ts(p.get('fault_at')))}", src)
    words = (f"{what} {_secs(rto)} after {e.at(_ts(p.get('fault_at')))} — target {_secs(target)}{real_words}; "
             f"reached at {_clock(_ts(p.get('reached_at')))}; measured: {p.get('measured', '?')}")
    return Check(PASSED if p.get("passed") else FAILED, words, src)


# -- Phase 1 ------------------------------------------------------------------------------------------

def _p1_scaled_to_zero(e: Evidence) -> Check:
    entries = e.scale_to_zero()
    if not entries:
        return Check(NOT_PROVEN,
                     "no “scale to desiredSize 0” change in the rollback ledger", "actions.json")
    a = entries[0]
    before = ((a.get("inverse") or {}).get("params") or {}).get("scaling") or {}
    if a.get("applied_at") is None:
        return Check(FAILED, f"{e.action_words(a)} was recorded but never applied (state {a.get('state')})", f"actions.json #{a.get('id')}")
    return Check(PASSED, f"{e.action_words(a)} applied at {e.at(_ts(a.get('applied_at')))}; the size before "
                         f"(desiredSize {before.get('desiredSize', '?')}) kept as its inverse; state now: {a.get('state')}",
                 f"actions.json #{a.get('id')}")


def _p1_nodes_gone(e: Evidence) -> Check:
    if e.has_events and e.fault_t is not None:
        draining = {ev.get("instance") for ev in e.lab("node draining", "web-tier", e.fault_t)}
        gone = [ev for ev in e.lab("node terminated", "web-tier", e.fault_t) if ev.get("instance") in draining]
        if draining and {ev.get("instance") for ev in gone} >= draining:
            last = max(_ts(ev.get("t")) or 0 for ev in gone)
            return Check(PASSED, f"all {len(draining)} web node(s) drained and terminated, the last at {e.at(last)}",
                         "lab-events.jsonl (web-tier)")
        if draining:
            return Check(FAILED, f"{len(draining)} web node(s) drained but only {len({ev.get('instance') for ev in gone})} terminated",
                         "lab-events.jsonl (web-tier)")
    if e.phase("phase1") is not None:
        return Check(PASSED, "step “the web node group settles at 0 nodes” passed: the EKS update Successful "
                             "(DescribeUpdate) and no instance left in the node group's Auto Scaling group",
                     "summary.json phases[phase1]")
    return Check(NOT_PROVEN, e.stopped_early(1), "summary.json failed_steps")


def _p1_alb_unhealthy(e: Evidence) -> Check:
    if e.has_events and e.fault_t is not None:
        lost = e.lab("no serving targets", "alb", e.fault_t)
        if lost:
            words = (f"from {e.at(_ts(lost[0].get('t')))} no target of the ALB accepted a connection (pods evicted): "
                     "every request got a 5xx")
            unhealthy = e.lab("target unhealthy", "alb", e.fault_t)
            if unhealthy:
                words += (f"; health checks marked {len({ev.get('instance') for ev in unhealthy})} target(s) unhealthy, "
                          f"the last at {e.at(max(_ts(ev.get('t')) or 0 for ev in unhealthy))}")
            return Check(PASSED, words, "lab-events.jsonl (alb)")
    if e.phase("phase1") is not None:
        return Check(PASSED, "step “the ALB reports no healthy targets” passed (ELBv2 DescribeTargetHealth: no target "
                             "healthy)", "summary.json phases[phase1]")
    return Check(NOT_PROVEN, e.stopped_early(1), "summary.json failed_steps")


def _default_behavior(ev: dict[str, Any]) -> bool:
    """An edge event about what users' pages get (the default cache behavior), not a write path's."""
    return bool(ev.get("behavior", "*") == "*")


def _p1_secondary_origin(e: Evidence) -> Check:
    maint = (e.summary.get("seconds_by_class") or {}).get("maintenance") or 0.0
    seen = [t for t in (e.summary.get("transitions") or []) if isinstance(t, dict) and t.get("class") == "maintenance"]
    parts = []
    src = ["summary.json transitions"]
    if seen:
        parts.append(f"users got the maintenance page — which only the secondary origin serves — sustained from "
                     f"{e.at(_ts(seen[0].get('from')))}, {maint:.2f} s in all")
    if e.has_events and e.fault_t is not None:
        sw = e.lab("serving origin", "edge", e.fault_t, lambda ev: "secondary" in str(ev.get("origin", "")) and _default_behavior(ev))
        if sw:
            parts.append(f"the edge switched to origin “{sw[0].get('origin')}” ({sw[0].get('domain')}) at {e.at(_ts(sw[0].get('t')))}")
            src.append("lab-events.jsonl (edge)")
    if seen:
        return Check(PASSED, "; ".join(parts), ", ".join(src))
    if e.phase("phase1") is not None:
        return Check(FAILED, "users never got the maintenance page sustained after the fault", "summary.json transitions")
    return Check(NOT_PROVEN, e.stopped_early(1), "summary.json failed_steps")


def _p1_maintenance_page(e: Evidence) -> Check:
    return _phase_rto(e, "phase1", "users (the probe, through the public site) got the maintenance page sustained")


# -- Phase 2 ------------------------------------------------------------------------------------------

def _after_apply(e: Evidence) -> list[dict[str, Any]]:
    """Changes the drill can only make once the whole failover stack is up."""
    return [a for a in e.actions if str((a.get("change") or {}).get("op", "")).startswith(("kube.", "azure."))]


def _p2_terraform(e: Evidence) -> Check:
    applies = e.ops("provisioner.apply")
    done = e.lab("apply succeeded", "stack")
    failed = e.lab("apply failed", "stack")
    src = "actions.json" + (", lab-events.jsonl (stack)" if e.has_events else "")
    if not applies:
        return Check(NOT_PROVEN, "no terraform apply in the rollback ledger", src)
    words = f"{e.action_words(applies[0])} recorded at {e.at(_ts(applies[0].get('recorded_at')))}"
    if done:
        words += "; " + ", ".join(f"apply succeeded at {e.at(_ts(ev.get('t')))} (targets: {', '.join(ev.get('targets') or []) or 'all'})"
                                  for ev in done)
    if failed:
        return Check(FAILED, words + f"; apply failed: {failed[0].get('error')}", src)
    later = _after_apply(e)
    if later or e.phase("phase2") is not None:
        first = min((_ts(a.get("recorded_at")) or 0 for a in later), default=None)
        return Check(PASSED, words + (f"; the stack was up when the drill went on to AKS at {e.at(first)}" if first else ""), src)
    return Check(NOT_PROVEN, words + f"; the full apply is not proven complete ({e.stopped_early(2)})", src)


def _p2_mysql_restored(e: Evidence) -> Check:
    c = _phase_rto(e, "phase2-data", "the newest backup completed before the fault was restored and verified on Azure MySQL")
    rpo = e.summary.get("rpo") if isinstance(e.summary.get("rpo"), dict) else None
    if rpo and c.status != NOT_PROVEN:
        worst = rpo.get("worst_case_seconds")
        bound = ("" if worst is None else
                 f"; the schedule's worst case {_secs(worst)} {'within' if rpo.get('worst_case_within_target') else 'OVER'} target")
        error = f"; ERROR: {rpo['error']}" if rpo.get("error") else ""
        c = Check(c.status, c.evidence + f"; backup {rpo.get('backup')} (age {_secs(rpo.get('backup_age_seconds'))}); "
                                         f"RPO {_secs(rpo.get('rpo_seconds'))} / target {_secs(rpo.get('rpo_target_seconds'))} "
                                         f"{'PASS' if rpo.get('passed') else 'FAIL'}{bound}{error}", c.source + ", summary.json rpo")
    return c


def _p2_aks(e: Evidence) -> Check:
    deps = [a for a in e.actions if (a.get("change") or {}).get("op") in ("kube.create", "kube.replace")
            and ((a.get("change") or {}).get("params") or {}).get("kind") == "Deployment"]
    src = "actions.json" + (", lab-events.jsonl (kube)" if e.has_events else "")
    if not deps:
        return Check(NOT_PROVEN, "no PetClinic Deployment in the rollback ledger", src)
    d = deps[0]
    if d.get("applied_at") is None:
        return Check(FAILED, f"{e.action_words(d)} was not applied (state {d.get('state')}, {d.get('error')})", src)
    words = f"{e.action_words(d)} applied at {e.at(_ts(d.get('applied_at')))}"
    ready = e.lab("pod ready", "kube", _ts(d.get("applied_at")))
    if ready:
        words += f"; {len(ready)} pod(s) became ready, the first at {e.at(_ts(ready[0].get('t')))}"
    if e.ops("azure.appgw.configure_backend") or e.phase("phase2") is not None:
        return Check(PASSED, words + "; the rollout step passed (the drill went on to the App Gateway)", src)
    return Check(NOT_PROVEN, words + f"; the rollout is not proven complete ({e.stopped_early(2)})", src)


def _p2_backend_pool(e: Evidence) -> Check:
    cfg = e.ops("azure.appgw.configure_backend")
    src = "actions.json" + (", lab-events.jsonl (appgw)" if e.has_events else "")
    if not cfg:
        return Check(NOT_PROVEN, "no App Gateway backend change in the rollback ledger", src)
    a = cfg[0]
    if a.get("applied_at") is None:
        return Check(FAILED, f"{e.action_words(a)} was not applied (state {a.get('state')})", src)
    words = f"{e.action_words(a)} applied at {e.at(_ts(a.get('applied_at')))}"
    changed = e.lab("pool changed", "appgw", _ts(a.get("recorded_at")))
    if changed:
        words += f"; the App Gateway's pool “{changed[0].get('pool')}” changed at {e.at(_ts(changed[0].get('t')))}"
    return Check(PASSED, words, src)


def _p2_appgw_http(e: Evidence) -> Check:
    switched = _secondary_switch(e)
    cleared = e.lab("502 cleared", "appgw")
    src = "actions.json" + (", lab-events.jsonl (appgw)" if e.has_events else "")
    if switched or e.phase("phase2") is not None:
        words = ("step “the App Gateway serves PetClinic from Azure” passed: a GET of the App Gateway's public address "
                 "was classified as PetClinic from Azure")
        if switched:
            words += f" before the drill went on to CloudFront ({e.action_words(switched[0])})"
        if cleared:
            words += f"; the App Gateway's first healthy backend response at {e.at(_ts(cleared[0].get('t')))}"
        return Check(PASSED, words, src)
    if e.ops("azure.appgw.configure_backend"):
        return Check(NOT_PROVEN,
                     f"the App Gateway was reconfigured, but its HTTP check is not proven to have passed ({e.stopped_early(2)})", src)
    return Check(NOT_PROVEN, e.stopped_early(2), "summary.json failed_steps")


def _secondary_switch(e: Evidence) -> list[dict[str, Any]]:
    """The drill changes one CloudFront origin only: the secondary (Phase 2 switches it, Phase 3 reverts it)."""
    return e.ops("aws.cloudfront.set_origin")


def _p2_cloudfront_origin(e: Evidence) -> Check:
    sw = _secondary_switch(e)
    if not sw:
        return Check(NOT_PROVEN, "no CloudFront origin change in the rollback ledger", "actions.json")
    a = sw[0]
    settings = ((a.get("change") or {}).get("params") or {}).get("settings") or {}
    if a.get("applied_at") is None:
        return Check(FAILED, f"{e.action_words(a)} was not applied (state {a.get('state')})", f"actions.json #{a.get('id')}")
    return Check(PASSED, f"{e.action_words(a)} applied at {e.at(_ts(a.get('applied_at')))} "
                         f"({settings.get('OriginProtocolPolicy', '?')}, port {settings.get('HTTPPort', '?')})",
                 f"actions.json #{a.get('id')}")


def _p2_cloudfront_deployed(e: Evidence) -> Check:
    updated = e.lab("distribution updated", "cloudfront")
    extra = f"; the distribution was updated at {', '.join(e.at(_ts(ev.get('t'))) for ev in updated[:3])}" if updated else ""
    if e.phase("phase2") is not None:
        return Check(PASSED, "step “the CloudFront change is deployed and the cache invalidated” passed: GetDistribution "
                             "reported Status Deployed and the /* invalidation Completed before users were measured" + extra,
                     "summary.json phases[phase2]" + (", lab-events.jsonl (cloudfront)" if updated else ""))
    if _secondary_switch(e):
        return Check(NOT_PROVEN,
                     f"CloudFront was changed, but Deployed is not proven ({e.stopped_early(2)})" + extra, "actions.json")
    return Check(NOT_PROVEN, e.stopped_early(2), "summary.json failed_steps")


def _p2_azure_site(e: Evidence) -> Check:
    c = _phase_rto(e, "phase2", "users got PetClinic from Azure sustained")
    secs = (e.summary.get("seconds_by_class") or {}).get("azure")
    if isinstance(secs, (int, float)) and c.status != NOT_PROVEN:
        c = Check(c.status, c.evidence + f"; {secs:.2f} s on Azure in all", c.source)
    return c


# -- Phase 3 ------------------------------------------------------------------------------------------

def _p3_scaled_back(e: Evidence) -> Check:
    p3 = e.phase("phase3")
    entries = e.scale_to_zero()
    size = (((entries[0].get("inverse") or {}).get("params") or {}).get("scaling") or {}).get("desiredSize") if entries else None
    if p3 is None:
        return Check(NOT_PROVEN, f"no Phase 3 restore recorded ({e.stopped_early(3)})", "summary.json phases[phase3]")
    words = f"the web node group was restored at {e.at(_ts(p3.get('fault_at')))}"
    if size is not None:
        words += f" to desiredSize {size}, its size before the drill ({e.action_words(entries[0])}, inverse)"
        if size != 2:
            words += " — the runbook says 2"
    return Check(PASSED, words, "summary.json phases[phase3], actions.json")


def _p3_nodes_running(e: Evidence) -> Check:
    p3 = e.phase("phase3")
    if p3 is None:
        return Check(NOT_PROVEN, e.stopped_early(3), "summary.json failed_steps")
    t0 = _ts(p3.get("fault_at"))
    if e.has_events:
        booted = {ev.get("instance") for ev in e.lab("node booting", "web-tier", t0)}
        ready = [ev for ev in e.lab("node ready", "web-tier", t0) if ev.get("instance") in booted]
        if booted and {ev.get("instance") for ev in ready} >= booted:
            last = max(_ts(ev.get("t")) or 0 for ev in ready)
            return Check(PASSED, f"all {len(booted)} new web node(s) ready, the last at {e.at(last)}", "lab-events.jsonl (web-tier)")
        if booted:
            return Check(FAILED, f"{len(booted)} web node(s) booted, {len(ready)} became ready", "lab-events.jsonl (web-tier)")
    return Check(NOT_PROVEN, "the drill checks that the ALB has a healthy target and that users get PetClinic from AWS, "
                             "not each node's state", "summary.json phases[phase3]")


def _p3_alb_healthy(e: Evidence) -> Check:
    p3 = e.phase("phase3")
    if p3 is None:
        return Check(NOT_PROVEN, e.stopped_early(3), "summary.json failed_steps")
    words = "step “the ALB reports healthy targets” passed (ELBv2 DescribeTargetHealth: a healthy target)"
    back = e.lab("routable targets", "alb", _ts(p3.get("fault_at")))
    if back:
        words += f"; the ALB had {back[0].get('count')} routable target(s) at {e.at(_ts(back[0].get('t')))}"
    return Check(PASSED, words, "summary.json phases[phase3]" + (", lab-events.jsonl (alb)" if back else ""))


def _p3_alb_direct(e: Evidence) -> Check:
    p3 = e.phase("phase3")
    if p3 is None:
        return Check(NOT_PROVEN, e.stopped_early(3), "summary.json failed_steps")
    edge = e.lab("serving origin", "edge", _ts(p3.get("fault_at")),
                 lambda ev: "primary" in str(ev.get("origin", "")) and _default_behavior(ev))
    if p3.get("rto_seconds") is None:
        return Check(FAILED, "users never got PetClinic from AWS again through CloudFront's primary origin (the ALB)",
                     "summary.json phases[phase3]")
    words = ("indirect — the drill does not request the ALB's own address: users got PetClinic from AWS through "
             f"CloudFront's primary origin, the ALB, from {e.at(_ts(p3.get('reached_at')))}")
    if edge:
        words += f"; the edge served origin “{edge[0].get('origin')}” ({edge[0].get('domain')}) again at {e.at(_ts(edge[0].get('t')))}"
    return Check(PASSED, words, "summary.json phases[phase3]" + (", lab-events.jsonl (edge)" if edge else ""))


def _p3_primary_back(e: Evidence) -> Check:
    return _phase_rto(e, "phase3", "users got PetClinic from AWS (CloudFront's primary origin) sustained")


def _baseline(e: Evidence, prefix: str) -> list[str]:
    diff = e.summary.get("baseline_diff") or (e.summary.get("restore") or {}).get("baseline_diff") or []
    return [str(d) for d in diff if str(d).startswith(prefix)]


def _p3_origin_reverted(e: Evidence) -> Check:
    sw = _secondary_switch(e)
    diff = _baseline(e, "cloudfront")
    if not e.scenario_passed(3):
        return Check(NOT_PROVEN, e.stopped_early(3), "summary.json failed_steps")
    if diff:
        return Check(FAILED, f"CloudFront differs from before the drill: {'; '.join(diff)}", "summary.json baseline_diff")
    words = "step “CloudFront's secondary origin is the Blob maintenance site again” passed (compared with the snapshot before the drill)"
    if sw:
        words += f"; {e.action_words(sw[0])} undone at {e.at(_ts(sw[0].get('undone_at')))}"
    return Check(PASSED, words, "actions.json, summary.json baseline_diff")


def _p3_stack_destroyed(e: Evidence) -> Check:
    applies = e.ops("provisioner.apply")
    diff = _baseline(e, "azure")
    destroyed = e.lab("destroy succeeded", "stack")
    if not e.scenario_passed(3):
        return Check(NOT_PROVEN, e.stopped_early(3), "summary.json failed_steps")
    if diff or any(a.get("state") == "undo_failed" for a in applies):
        return Check(FAILED, "Azure failover resources remain: " + "; ".join(diff or [str(a.get("error")) for a in applies]),
                     "summary.json baseline_diff, actions.json")
    words = "step “no Azure failover resource remains” passed (Terraform outputs empty, no App Gateway in ARM)"
    if applies:
        words += f"; {e.action_words(applies[0])} undone at {e.at(_ts(applies[0].get('undone_at')))}"
    if destroyed:
        words += f"; terraform destroy succeeded at {e.at(_ts(destroyed[-1].get('t')))}"
    return Check(PASSED, words, "actions.json, summary.json baseline_diff" + (", lab-events.jsonl (stack)" if destroyed else ""))


def _p3_aws_site(e: Evidence) -> Check:
    if not e.scenario_passed(3):
        return Check(NOT_PROVEN, e.stopped_early(3), "summary.json failed_steps")
    restore = e.summary.get("restore") or {}
    trans = [t.get("class") for t in (e.summary.get("transitions") or []) if isinstance(t, dict)]
    site = restore.get("site_class")
    if site not in (None, "aws") or (trans and trans[-1] != "aws"):
        return Check(FAILED, f"at the end users saw {site or (trans[-1] if trans else '?')!r}", "summary.json restore, transitions")
    return Check(PASSED, f"at the end of the drill users got PetClinic from AWS (users saw: {' → '.join(map(str, trans)) or '?'}); "
                         f"downtime (errors) {_secs(e.summary.get('downtime_seconds'))} over {e.summary.get('requests', '?')} requests",
                 "summary.json restore, transitions")


ITEMS: tuple[Item, ...] = (
    Item(1, "1.1", "AWS Web 노드 그룹 desired=0 설정 완료", "AWS web node group set to desired=0",
         "the scale-to-0 change in the rollback ledger, applied", _p1_scaled_to_zero),
    Item(1, "1.2", "Web 노드 모두 종료 확인", "all web nodes confirmed terminated",
         "lab: every draining node terminated; else the step “the web node group settles at 0 nodes”", _p1_nodes_gone),
    Item(1, "1.3", "ALB Target Group unhealthy 확인", "ALB target group confirmed unhealthy",
         "lab: the ALB's “no serving targets” event; else the step “the ALB reports no healthy targets”", _p1_alb_unhealthy),
    Item(1, "1.4", "CloudFront가 Secondary Origin(Blob Storage) 사용 확인",
         "CloudFront confirmed serving from the secondary origin (Blob Storage)",
         "the probe's sustained maintenance-page state; lab: the edge's origin switch", _p1_secondary_origin),
    Item(1, "1.5", "브라우저에서 정적 유지보수 페이지 표시 확인", "static maintenance page confirmed in a browser",
         "measured RTO: fault → maintenance page sustained, vs the maintenance RTO", _p1_maintenance_page),
    Item(2, "2.1", "Azure 2-failover Terraform 배포 완료", "Azure 2-failover Terraform deployment complete",
         "terraform apply in the ledger, and the drill going on to AKS", _p2_terraform),
    Item(2, "2.2", "Azure MySQL 데이터 복구 완료", "Azure MySQL data restore complete",
         "measured: fault → the newest backup completed before the fault restored and verified on Azure MySQL, vs the "
         "data-restore RTO; RPO (the loss window of that backup)", _p2_mysql_restored),
    Item(2, "2.3", "Azure AKS PetClinic 배포 완료", "PetClinic deployed on Azure AKS",
         "the PetClinic Deployment in the ledger, its rollout step passed", _p2_aks),
    Item(2, "2.4", "Application Gateway Backend Pool을 AKS Service로 변경", "App Gateway backend pool pointed at the AKS service",
         "the App Gateway backend change in the ledger, applied", _p2_backend_pool),
    Item(2, "2.5", "Application Gateway HTTP 테스트 성공", "App Gateway HTTP test succeeded",
         "the step “the App Gateway serves PetClinic from Azure”", _p2_appgw_http),
    Item(2, "2.6", "CloudFront Secondary Origin을 App Gateway로 변경", "CloudFront secondary origin switched to the App Gateway",
         "the origin change in the ledger, applied", _p2_cloudfront_origin),
    Item(2, "2.7", "CloudFront 배포 완료 (Status: Deployed)", "CloudFront deployment complete (Status: Deployed)",
         "the step “the CloudFront change is deployed and the cache invalidated”", _p2_cloudfront_deployed),
    Item(2, "2.8", "도메인에서 PetClinic (Azure) 정상 동작 확인", "PetClinic (Azure) confirmed working on the domain",
         "measured RTO: fault → PetClinic from Azure sustained, vs the full-service RTO", _p2_azure_site),
    Item(3, "3.1", "AWS Web 노드 그룹 desired=2로 복구", "AWS web node group restored to desired=2",
         "Phase 3's restore instant and the ledger's inverse (the size before the drill)", _p3_scaled_back),
    Item(3, "3.2", "AWS Web 노드 모두 Running 확인", "all AWS web nodes confirmed Running",
         "lab: every booted node ready", _p3_nodes_running),
    Item(3, "3.3", "ALB Target Group healthy 확인", "ALB target group confirmed healthy",
         "the step “the ALB reports healthy targets”; lab: routable targets", _p3_alb_healthy),
    Item(3, "3.4", "AWS ALB 직접 접속 테스트 성공", "direct access to the AWS ALB succeeded",
         "indirect: users got PetClinic from AWS through CloudFront's primary origin, the ALB", _p3_alb_direct),
    Item(3, "3.5", "CloudFront가 Primary Origin(AWS ALB) 자동 복구 확인",
         "CloudFront confirmed back on the primary origin (AWS ALB) automatically",
         "measured RTO: restore → PetClinic from AWS sustained, vs the failback RTO", _p3_primary_back),
    Item(3, "3.6", "CloudFront Secondary Origin을 Blob Storage로 원복", "CloudFront secondary origin reverted to Blob Storage",
         "the step comparing the origin with the snapshot before the drill; no baseline difference", _p3_origin_reverted),
    Item(3, "3.7", "Azure 2-failover 인프라 삭제 완료", "Azure 2-failover infrastructure deleted",
         "the step “no Azure failover resource remains”; the apply's inverse done; no baseline difference", _p3_stack_destroyed),
    Item(3, "3.8", "도메인에서 PetClinic (AWS) 정상 동작 확인", "PetClinic (AWS) confirmed working on the domain",
         "what users saw at the end of the drill", _p3_aws_site),
)


def evaluate(summary: dict[str, Any] | None, actions: Sequence[dict[str, Any]] | None = None,
             events: Sequence[dict[str, Any]] | None = None) -> list[tuple[Item, Check]]:
    """Every checklist item with its check, in the runbook's order."""
    e = Evidence(summary, actions, events)
    out = []
    dry = isinstance(summary, dict) and bool(summary.get("dry_run"))
    for item in ITEMS:
        if dry:  # planned changes prove nothing: never let a dry run read as a passed checklist
            check = Check(DRY_RUN, "a dry run made no change, so nothing here is proven; the plan lists what a drill would do",
                          "summary.json plan")
        elif not e.ran(item.phase):
            check = Check(NOT_RUN, f"Phase {item.phase} did not run in this drill", "summary.json phases, failed_steps")
        else:
            try:
                check = item.prove(e)
            except Exception as ex:  # noqa: BLE001 — a malformed bundle must not hide the other items
                check = Check(NOT_PROVEN, f"the evidence could not be read: {type(ex).__name__}: {ex}", "")
        out.append((item, check))
    return out
