"""Why a drill's verdict is FAILED, in words, from its summary.json: the one rule the verdict is decided
by (steps.runtime.DrillRun.summary) and the exit status names (conftest.py)."""
from __future__ import annotations

from typing import Any


def verdict_reasons(s: dict[str, Any]) -> list[str]:
    """Each thing that made the verdict `failed`, one phrase each; empty for a run that passed."""
    out: list[str] = []
    if not s.get("phases") and not s.get("dry_run"):
        out.append("no phase completed")
    for ph in s.get("phases") or []:
        if not ph.get("passed"):
            rto = "never reached" if ph.get("rto_seconds") is None else f"{ph['rto_seconds']:.2f}s"
            out.append(f"{ph.get('name')} RTO {rto} / target {ph.get('rto_target_seconds')}s")
    rpo = s.get("rpo") or {}
    if rpo and not rpo.get("passed"):
        out.append(f"RPO {rpo.get('rpo_seconds')}s / target {rpo.get('rpo_target_seconds')}s"
                   + (f" ({rpo['error']})" if rpo.get("error") else ""))
    alarms = s.get("alarms") or {}
    if alarms and not alarms.get("passed"):
        missed = [f"{d.get('alarm')} ({phase}) not alerted in time" for phase, ds in (alarms.get("phases") or {}).items()
                  for d in ds if not d.get("passed")]
        missed += [f"{c.get('alarm')} not back to OK in time" for c in alarms.get("clear") or [] if not c.get("passed")]
        out.append("alarms: " + ", ".join(missed or ["not judged"]))
    out += [f"step failed: {t}" for t in s.get("failed_steps") or []]
    r = s.get("restore") or {}
    if r.get("failures") or r.get("site_class") not in (None, "aws") or s.get("baseline_diff"):
        out.append("not everything was put back")
    if s.get("stopped_by"):
        out.append(f"stopped by {s['stopped_by']}")
    if s.get("preflight"):  # a dry run that finds the plan would fail is no "dry-run" pass
        out.append(f"{len(s['preflight'])} preflight finding(s)")
    return out
