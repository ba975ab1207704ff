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

`render_markdown` and `render_html` turn a bundle into the human-readable report (report.md,
report.html); the HTML is self-contained (inline CSS, the timeline PNG embedded as base64) and
escapes every value it shows. Core module: stdlib only.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drill.runbook import RUNBOOK, from_summary
from drill.vantages import REPORT_PHASE_HEAD, REPORT_VANTAGE_HEAD, report_tables

PASSED, FAILED, NOT_PROVEN, NOT_RUN, DRY_RUN = "passed", "failed", "not proven", "not run", "dry run"
STATUSES = (PASSED, FAILED, NOT_PROVEN, NOT_RUN, DRY_RUN)
MARK = {PASSED: "✅", FAILED: "❌", NOT_PROVEN: "⚠️", NOT_RUN: "⏭️", DRY_RUN: "📝"}

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


# -- the report --------------------------------------------------------------------------------------

def _objectives(s: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(measure, measured, target, real-world, result) rows."""
    rows = []
    scale = s.get("time_scale")
    scaled = scale not in (None, 1, 1.0)
    for p in s.get("phases") or []:
        if not isinstance(p, dict):
            continue
        rto = p.get("rto_seconds")
        real = p.get("rto_real_equivalent_seconds")
        rt = p.get("rto_target_real_seconds")
        rows.append((
            f"{p.get('name')} RTO — {p.get('title', '')}",
            "not reached" if rto is None else _secs(rto),
            _secs(p.get("rto_target_seconds")),
            (f"≈ {real:g} s / {rt:g} s" if isinstance(real, (int, float)) and isinstance(rt, (int, float)) else
             f"— / {rt:g} s" if isinstance(rt, (int, float)) else "—") if scaled else "—",
            "PASS" if p.get("passed") else "FAIL",
        ))
    rpo = s.get("rpo") if isinstance(s.get("rpo"), dict) else None
    if rpo:
        rows.append(("RPO — fault → the restored backup's consistency point",
                     _secs(rpo.get("rpo_seconds")) if rpo.get("rpo_seconds") is not None else "not measured",
                     _secs(rpo.get("rpo_target_seconds")),
                     f"— / {rpo['rpo_target_real_seconds']:g} s"
                     if scaled and isinstance(rpo.get("rpo_target_real_seconds"), (int, float)) else "—",
                     "PASS" if rpo.get("passed") else "FAIL"))
    raw_alarms = s.get("alarms")
    alarms: dict[str, Any] = raw_alarms if isinstance(raw_alarms, dict) else {}
    factor = float(scale) if scaled and isinstance(scale, (int, float)) else None
    for phase, dets in (alarms.get("phases") or {}).items():
        for d in dets if isinstance(dets, list) else []:
            if not isinstance(d, dict):
                continue
            target = d.get("objective_seconds")
            for what, key in (("in ALARM", "detection_seconds"), ("notified", "notification_seconds")):
                v = d.get(key)
                rows.append((f"{phase} detection — {d.get('alarm')} {what} after the fault",
                             "never" if v is None else _secs(v), _secs(target),
                             f"≈ {v * factor:g} s / {target * factor:g} s" if factor and isinstance(v, (int, float))
                             and isinstance(target, (int, float)) else "—",
                             "PASS" if isinstance(v, (int, float)) and isinstance(target, (int, float)) and v <= target else "FAIL"))
    for c in alarms.get("clear") or []:
        if isinstance(c, dict):
            v, target = c.get("clear_seconds"), c.get("objective_seconds")
            rows.append((f"alarm clear — {c.get('alarm')} OK again after the restore"
                         + (" (cleared BEFORE the restore, during the outage)" if c.get("cleared_before_restore") else ""),
                         "never" if v is None else _secs(v), _secs(target),
                         f"≈ {v * factor:g} s / {target * factor:g} s" if factor and isinstance(v, (int, float))
                         and isinstance(target, (int, float)) else "—",
                         "PASS" if c.get("passed") else "FAIL"))
    return rows


def _alarm_facts(s: dict[str, Any]) -> list[tuple[str, str]]:
    """Which alarm fired when: one line per alarm, from summary.json's `alarms`."""
    raw_alarms = s.get("alarms")
    alarms: dict[str, Any] = raw_alarms if isinstance(raw_alarms, dict) else {}
    clears = {c.get("alarm"): c for c in alarms.get("clear") or [] if isinstance(c, dict)}
    out = []
    for phase, dets in (alarms.get("phases") or {}).items():
        for d in dets if isinstance(dets, list) else []:
            if not isinstance(d, dict):
                continue
            c = clears.get(d.get("alarm")) or {}
            text = ("never entered ALARM after the fault" if d.get("fired_at") is None else
                    f"ALARM at {d.get('fired_at')} (fault +{_secs(d.get('detection_seconds'))}); "
                    + ("notification never delivered" if d.get("notified_at") is None
                       else f"notified at {d.get('notified_at')} (fault +{_secs(d.get('notification_seconds'))})"))
            if c:
                text += ("; OK again at " + str(c.get("cleared_at")) + f" (restore {float(c['clear_seconds']):+.2f} s)"
                         if c.get("clear_seconds") is not None else f"; still {c.get('state_now')} after the restore")
            if d.get("reason"):
                text += f" — {d['reason']}"
            out.append((f"alarm {d.get('alarm')} ({phase})", text))
    return out


def _facts(s: dict[str, Any]) -> list[tuple[str, str]]:
    trans = " → ".join(str(t.get("class")) for t in (s.get("transitions") or []) if isinstance(t, dict)) or "(no sustained state)"
    by_class = ", ".join(f"{k} {v:.2f} s" for k, v in (s.get("seconds_by_class") or {}).items() if isinstance(v, (int, float)))
    out = [
        ("users saw", trans),
        ("downtime (errors)", f"{_secs(s.get('downtime_seconds'))} over {s.get('requests', '?')} probe requests"
                              + (f"; unobserved {_secs(s.get('unobserved_seconds'))}" if s.get("unobserved_seconds") else "")),
        ("time by class", by_class or "—"),
    ]
    for iv in s.get("downtime_intervals") or []:
        if isinstance(iv, dict):
            out.append(("error interval", f"{iv.get('from')} → {iv.get('to')} ({_secs(iv.get('seconds'))})"))
    if isinstance(s.get("failback_data_loss"), dict):
        out.append(("lost on failback", f"{s['failback_data_loss'].get('total')} row(s) {s['failback_data_loss'].get('rows')} — "
                                        f"{s['failback_data_loss'].get('policy', '')}"))
    out += _alarm_facts(s)
    outage_write = s.get("outage_write")
    writes = outage_write if isinstance(outage_write, dict) else {}
    for phase, w in writes.items():
        if isinstance(w, dict):
            b = _as_dict(w.get("behavior"))
            out.append((f"user write through the site, {phase}",
                        f"users saw {w.get('users_saw')}; POST {w.get('path')} (behavior {b.get('path_pattern')} → "
                        f"{b.get('target_kind')} {b.get('target')}) got status {w.get('status')}, "
                        f"{'accepted' if w.get('accepted') else 'refused'}; rows in the primary {w.get('rows_in_primary')}"))
    return out


def _as_dict(value: Any) -> dict[str, Any]:
    """An object of the evidence, or an empty one where it is missing or malformed."""
    return value if isinstance(value, dict) else {}


def _restore(s: dict[str, Any]) -> list[tuple[str, str]]:
    r = _as_dict(s.get("restore"))
    rows = [
        ("changes undone at the end", str(r.get("unwound", "?"))),
        ("users at the end", str(r.get("site_class"))),
        ("back on AWS after", _secs(r.get("seconds")) if r.get("seconds") is not None else "—"),
    ]
    for f in r.get("failures") or []:
        rows.append(("rollback FAILURE", str(f)))
    diff = s.get("baseline_diff") or r.get("baseline_diff") or []
    rows.append(("state vs before the drill", "unchanged" if not diff else f"{len(diff)} difference(s)"))
    for d in diff:
        rows.append(("difference", str(d)))
    return rows


def _runbook_rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(step, as written, what the real cloud does, what the drill did) for each runbook correction."""
    return [(d.step, d.as_written, d.refused_because, d.drill_did + (f" [{d.source}]" if d.source else ""))
            for d in from_summary(s.get("runbook_deviations"))]


def _preflight(s: dict[str, Any]) -> list[str] | None:
    """Preflight findings' sentences; None when preflight did not run."""
    found = s.get("preflight")
    if not isinstance(found, list):
        return None
    return [str(f.get("detail")) if isinstance(f, dict) else str(f) for f in found]


def _header(s: dict[str, Any]) -> list[tuple[str, str]]:
    scale = s.get("time_scale")
    return [
        ("run", str(s.get("run_id", "?"))),
        ("target", f"{s.get('target', '?')}" + (f" (time scale ×{scale:g}: objectives are real-world seconds ÷ {scale:g})"
                                                if isinstance(scale, (int, float)) and scale != 1 else "")),
        ("verdict", str(s.get("verdict", "unknown (no summary: the run was interrupted)")).upper()),
        ("operator", str(s.get("operator", "?"))),
        ("started / finished", f"{s.get('started_at', '?')} / {s.get('finished_at', '?')}"),
        ("duration", _secs(s.get("duration_seconds"))),
        ("git revision / harness", f"{s.get('git_revision') or '?'} / {s.get('harness_version', '?')}"),
    ]


def _counts(results: list[tuple[Item, Check]]) -> str:
    return ", ".join(f"{sum(1 for _, c in results if c.status == st)} {st}" for st in STATUSES)


def _md(text: Any) -> str:
    """One Markdown table cell: pipes escaped, newlines as <br>, HTML-ish characters escaped."""
    t = html.escape(str(text), quote=False).replace("|", "\\|")
    return "<br>".join(line for line in t.splitlines()) if "\n" in t else t


def render_markdown(summary: dict[str, Any] | None, actions: Sequence[dict[str, Any]] | None = None,
                    events: Sequence[dict[str, Any]] | None = None, chart: str | None = "timeline.png",
                    files: Iterable[str] = ()) -> str:
    """report.md: the run, its objectives, the timeline chart (a relative link) and the checklist."""
    s = summary if isinstance(summary, dict) else {}
    results = evaluate(s, actions, events)
    L: list[str] = [f"# DR drill report — {_md(s.get('run_id', '?'))}", ""]
    L += [f"Runbook checklist of `{RUNBOOK}` (체크리스트), walked item by item with the measurement that proves each.", ""]
    L += ["| | |", "|---|---|"] + [f"| **{_md(k)}** | {_md(v)} |" for k, v in _header(s)] + [""]
    L += ["## Objectives — measured vs target", ""]
    rows = _objectives(s)
    if rows:
        L += ["| measure | measured | target (wall clock) | real-world | result |", "|---|---|---|---|---|"]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in rows]
    else:
        L += ["No phase measured anything (the run stopped before its first measurement)."]
    L += [""] + [f"- **{_md(k)}**: {_md(v)}" for k, v in _facts(s)] + [""]
    vt_tables = report_tables(s)
    if vt_tables:
        ph_rows, why, each = vt_tables
        names = [r[0] for r in each]
        head = [REPORT_PHASE_HEAD[0], *names, *REPORT_PHASE_HEAD[1:]]
        L += [f"## Vantages — what users at each of {len(names)} places saw", ""]
        L += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in ph_rows] + [""]
        L += [f"- {_md(w)}" for w in why] + [""]
        L += ["| " + " | ".join(REPORT_VANTAGE_HEAD) + " |", "|" + "---|" * len(REPORT_VANTAGE_HEAD)]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in each] + [""]
    L += ["## Timeline", ""]
    L += [f"![what users saw over time]({chart})" if chart else "_The timeline chart is not available._", ""]
    L += [f"## Checklist (체크리스트) — {_counts(results)}", ""]
    for n in (1, 2, 3):
        ko, en = PHASE_TITLES[n]
        L += [f"### {_md(ko)}", f"_{_md(en)}_", ""]
        L += ["| # | 항목 (runbook) | item | result | evidence | source |", "|---|---|---|---|---|---|"]
        for item, c in results:
            if item.phase == n:
                L.append(f"| {item.number} | {_md(item.ko)} | {_md(item.en)} | {MARK[c.status]} {c.status} | "
                         f"{_md(c.evidence)} | {_md(c.source)} |")
        L.append("")
    deviations = _runbook_rows(s)
    if deviations:
        L += [f"## Where the runbook is wrong — {len(deviations)} step(s) of `{RUNBOOK}` corrected", "",
              "The runbook as written would fail at these steps on the real clouds; the drill did what works. Fix the runbook.", "",
              "| step | the runbook does | on the real clouds | the drill did |", "|---|---|---|---|"]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in deviations] + [""]
    found = _preflight(s)
    if found is not None:
        L += ["## Preflight — would the plan work on the real clouds?", ""]
        L += [f"- ❌ {_md(x)}" for x in found] if found else ["No finding."]
        L += [""]
    if s.get("dry_run"):
        L += ["## Plan (dry run: nothing was changed)", "", "| # | change | inverse |", "|---|---|---|"]
        L += [f"| {_md(p.get('id'))} | {_md(p.get('change'))} | {_md(p.get('inverse'))} |" for p in s.get("plan") or []]
        L += ["", "Checks of effects not evaluated (the changes were not made):", ""]
        L += [f"- {_md(x)}" for x in s.get("not_evaluated") or []] + [""]
    L += ["## Rollback and end state", ""] + [f"- **{_md(k)}**: {_md(v)}" for k, v in _restore(s)] + [""]
    if s.get("failed_steps"):
        L += ["## Failed steps", ""] + [f"- {_md(x)}" for x in s["failed_steps"]] + [""]
    if s.get("notes"):
        L += ["## Notes", ""] + [f"- {_md(x)}" for x in s["notes"]] + [""]
    L += ["## How each item is proven", ""]
    L += [f"- **{item.number}** {_md(item.en)}: {_md(item.how)}" for item in ITEMS] + [""]
    files = list(files)
    if files:
        L += ["## Files in this bundle", "", "SHA-256 digests and sizes of every file are in `manifest.json`; "
              "`drill verify <bundle>` checks them.", ""] + [f"- `{_md(f)}`" for f in files] + [""]
    return "\n".join(L)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans KR","Malgun Gothic",sans-serif;
margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top;font-size:.9em;text-align:left}
th{background:#f5f5f5}.passed{background:#e8f5e9}.failed{background:#ffebee}.not-proven{background:#fff8e1}.not-run{background:#eceff1;color:#555}.dry-run{background:#e3f2fd}
.verdict-passed{color:#1b5e20}.verdict-failed{color:#b71c1c}.en{color:#555;font-style:italic}img{max-width:100%;border:1px solid #ddd}
code{background:#f5f5f5;padding:0 3px}.muted{color:#666}
"""


def _h(x: Any) -> str:
    return html.escape(str(x), quote=True)


def render_html(summary: dict[str, Any] | None, actions: Sequence[dict[str, Any]] | None = None,
                events: Sequence[dict[str, Any]] | None = None, png: bytes | None = None,
                files: Iterable[str] = ()) -> str:
    """report.html: the same report, self-contained (inline CSS, the PNG as a data: URI), every value escaped."""
    s = summary if isinstance(summary, dict) else {}
    results = evaluate(s, actions, events)
    verdict = str(s.get("verdict", "unknown")).lower()
    H: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>DR drill report — {_h(s.get('run_id', '?'))}</title>", f"<style>{_CSS}</style></head><body>",
        f"<h1>DR drill report — {_h(s.get('run_id', '?'))} "
        f"<span class=\"verdict-{_h(verdict)}\">{_h(verdict.upper())}</span></h1>",
        f"<p>Runbook checklist of <code>{_h(RUNBOOK)}</code> (체크리스트), walked item by item with the measurement that proves each.</p>",
        "<table>" + "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in _header(s)) + "</table>",
        "<h2>Objectives — measured vs target</h2>",
    ]
    rows = _objectives(s)
    if rows:
        H.append("<table><tr><th>measure</th><th>measured</th><th>target (wall clock)</th><th>real-world</th><th>result</th></tr>"
                 + "".join("<tr class=\"{}\">".format("passed" if r[4] == "PASS" else "failed")
                           + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
    else:
        H.append("<p>No phase measured anything (the run stopped before its first measurement).</p>")
    H.append("<ul>" + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in _facts(s)) + "</ul>")
    vt_tables = report_tables(s)
    if vt_tables:
        ph_rows, why, each = vt_tables
        names = [r[0] for r in each]
        head = [REPORT_PHASE_HEAD[0], *names, *REPORT_PHASE_HEAD[1:]]
        H.append(f"<h2>Vantages — what users at each of {len(names)} places saw</h2>")
        H.append("<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in head) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in ph_rows) + "</table>")
        H.append("<ul>" + "".join(f"<li>{_h(w)}</li>" for w in why) + "</ul>")
        H.append("<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in REPORT_VANTAGE_HEAD) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in each) + "</table>")
    H.append("<h2>Timeline</h2>")
    if png:
        H.append(f'<img alt="what users saw over time" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
    else:
        H.append('<p class="muted">The timeline chart is not available.</p>')
    H.append(f"<h2>Checklist (체크리스트) — {_h(_counts(results))}</h2>")
    for n in (1, 2, 3):
        ko, en = PHASE_TITLES[n]
        H.append(f'<h3>{_h(ko)}</h3><p class="en">{_h(en)}</p>')
        H.append("<table><tr><th>#</th><th>항목 (runbook)</th><th>item</th><th>result</th><th>evidence</th><th>source</th></tr>")
        for item, c in results:
            if item.phase == n:
                H.append(f'<tr class="{_h(c.status.replace(" ", "-"))}"><td>{_h(item.number)}</td><td lang="ko">{_h(item.ko)}</td>'
                         f"<td>{_h(item.en)}</td><td>{MARK[c.status]} {_h(c.status)}</td><td>{_h(c.evidence)}</td>"
                         f"<td>{_h(c.source)}</td></tr>")
        H.append("</table>")
    deviations = _runbook_rows(s)
    if deviations:
        H.append(f"<h2>Where the runbook is wrong — {len(deviations)} step(s) of <code>{_h(RUNBOOK)}</code> corrected</h2>"
                 "<p>The runbook as written would fail at these steps on the real clouds; the drill did what works. Fix the runbook.</p>"
                 "<table><tr><th>step</th><th>the runbook does</th><th>on the real clouds</th><th>the drill did</th></tr>"
                 + "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in deviations) + "</table>")
    found = _preflight(s)
    if found is not None:
        H.append("<h2>Preflight — would the plan work on the real clouds?</h2>"
                 + ("<ul>" + "".join(f'<li class="failed">❌ {_h(x)}</li>' for x in found) + "</ul>" if found else "<p>No finding.</p>"))
    if s.get("dry_run"):
        H.append("<h2>Plan (dry run: nothing was changed)</h2><table><tr><th>#</th><th>change</th><th>inverse</th></tr>"
                 + "".join(f"<tr><td>{_h(p.get('id'))}</td><td>{_h(p.get('change'))}</td><td>{_h(p.get('inverse'))}</td></tr>"
                           for p in s.get("plan") or []) + "</table>")
        H.append("<p>Checks of effects not evaluated (the changes were not made):</p><ul>"
                 + "".join(f"<li>{_h(x)}</li>" for x in s.get("not_evaluated") or []) + "</ul>")
    H.append("<h2>Rollback and end state</h2><ul>" + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in _restore(s)) + "</ul>")
    if s.get("failed_steps"):
        H.append("<h2>Failed steps</h2><ul>" + "".join(f"<li>{_h(x)}</li>" for x in s["failed_steps"]) + "</ul>")
    if s.get("notes"):
        H.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_h(x)}</li>" for x in s["notes"]) + "</ul>")
    H.append("<h2>How each item is proven</h2><ul>"
             + "".join(f"<li><b>{_h(i.number)}</b> {_h(i.en)}: {_h(i.how)}</li>" for i in ITEMS) + "</ul>")
    files = list(files)
    if files:
        H.append("<h2>Files in this bundle</h2><p>SHA-256 digests and sizes of every file are in <code>manifest.json</code>; "
                 "<code>drill verify &lt;bundle&gt;</code> checks them.</p><ul>"
                 + "".join(f"<li><code>{_h(f)}</code></li>" for f in files) + "</ul>")
    H.append("</body></html>")
    return "\n".join(H) + "\n"
