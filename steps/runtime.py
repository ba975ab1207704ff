"""One drill run: the probe, the rollback ledger, phase results and the evidence they become.

This is the glue the step definitions share; it has no pytest imports so that the same run can be
driven from the CLI or a test. A run starts its probe before the first fault and keeps it until
everything is put back, so the timeline covers the whole drill.
"""
from __future__ import annotations

import getpass
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from drill import __version__
from drill import timeline as tl
from drill.config import Target
from drill.evidence import SCHEMA_VERSION, EvidenceDir, Masker, PhaseResult, iso, new_run_id, phase_dicts
from drill.ledger import Ledger
from drivers.actions import executor
from drivers.aws import Aws, CloudFront, LoadBalancing, NodeGroups
from drivers.probe import Probe

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Instant:
    t: float  # wall clock, for humans and evidence
    mono: float  # monotonic, comparable with the probe's samples

    @classmethod
    def now(cls) -> "Instant":
        return cls(time.time(), time.monotonic())


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except OSError:
        return None


def operator() -> str:
    if os.environ.get("DRILL_OPERATOR"):
        return os.environ["DRILL_OPERATOR"]
    if os.environ.get("GITHUB_ACTOR"):
        return f"ci:{os.environ['GITHUB_ACTOR']}"
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def wait_until(check: Callable[[], Any], timeout: float, poll: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; return it, or the last falsy value on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(poll)


class DrillRun:
    def __init__(
        self,
        target: Target,
        reports_dir: Path,
        masker: Masker,
        lab_events: Path | None = None,
    ) -> None:
        self.target = target
        self.started = Instant.now()
        self.run_id = new_run_id(self.started.t)
        self.evidence = EvidenceDir(reports_dir / "evidence", self.run_id, masker)
        self.work = reports_dir / "work" / self.run_id
        self.work.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.work / "ledger.json")
        self.lab_events = lab_events
        self.aws = Aws(target.aws)
        self.nodegroups = NodeGroups(self.aws, self.ledger)
        self.elb = LoadBalancing(self.aws)
        self.cloudfront = CloudFront(self.aws, self.ledger)
        self.instants: dict[str, Instant] = {}
        self.phases: list[PhaseResult] = []
        self.notes: list[str] = []
        self.probe: Probe | None = None

    def __repr__(self) -> str:  # Allure shows fixture reprs as step parameters
        return f"DrillRun({self.run_id}, target={self.target.name})"

    # -- probe -------------------------------------------------------------------------------
    def ensure_probe(self) -> Probe:
        if self.probe is None:
            p = self.target.probe
            self.probe = Probe(
                self.target.site.url, self.work / "timeline.jsonl", rate_per_second=p.rate_per_second,
                users=p.users, timeout_seconds=p.timeout_seconds, rules=p.rules, log_path=self.work / "probe.log",
            )
            self.probe.start()
        return self.probe

    @property
    def max_gap(self) -> float:
        return self.target.probe.max_gap_seconds or self.ensure_probe().max_gap

    def samples(self) -> list[tl.Sample]:
        return self.probe.samples() if self.probe else []

    def first_sustained(self, cls: str, after: float) -> tl.Sample | None:
        p = self.target.probe
        return tl.first_sustained_sample(self.samples(), cls, after, p.sustain_seconds, p.min_samples, self.max_gap)

    def wait_for_class(self, cls: str, after: float, timeout: float) -> tl.Sample | None:
        """Wait until users get `cls` sustained for requests sent since `after`; the first such sample."""
        self.ensure_probe()
        return wait_until(lambda: self.first_sustained(cls, after), timeout, poll=0.2)

    def current_class(self) -> str | None:
        """The class users see now: the last samples agree for `sustain_seconds`, else None."""
        p = self.target.probe
        samples = self.samples()
        if not samples:
            return None
        now = samples[-1].seen
        recent = [s for s in samples if s.seen >= now - p.sustain_seconds]
        if len(recent) < p.min_samples or samples[0].seen > now - p.sustain_seconds:
            return None
        classes = {s.cls for s in recent}
        return classes.pop() if len(classes) == 1 else None

    # -- results -----------------------------------------------------------------------------
    def measure_rto(self, name: str, title: str, fault: Instant, cls: str, objective_real: float) -> PhaseResult:
        """Wait for `cls` after `fault` (up to objective + grace) and record it as a phase result."""
        target_s = self.target.scaled(objective_real)
        reached = self.wait_for_class(cls, fault.mono, target_s + self.target.scaled(self.target.grace_seconds))
        rto = None if reached is None else reached.mono - fault.mono
        result = PhaseResult(
            name=name,
            title=title,
            rto_seconds=None if rto is None else round(rto, 3),
            rto_target_seconds=round(target_s, 3),
            passed=rto is not None and rto <= target_s,
            measured=f"fault → first request answered with '{cls}', sustained {self.target.probe.sustain_seconds:g}s",
            fault_at=iso(fault.t),
            reached_at=None if rto is None else iso(fault.t + rto),
            rto_target_real_seconds=objective_real,
            rto_real_equivalent_seconds=None if rto is None else round(rto * self.target.time_scale, 1),
            detail={} if reached is None else {"first_response_latency_ms": round(reached.latency_ms, 1)},
        )
        self.phases = [p for p in self.phases if p.name != name] + [result]
        return result

    # -- end of run --------------------------------------------------------------------------
    def finish(self, failed_tests: list[str]) -> dict[str, Any]:
        """Unwind what is left, check users are back on AWS, stop the probe, write the evidence."""
        unwind_failures = []
        restored: dict[str, Any] = {"unwound": 0, "failures": [], "site_class": None, "seconds": None}
        outstanding = self.ledger.outstanding()
        if outstanding:
            t0 = Instant.now()
            busy = self.target.scaled(900.0) + 30.0
            unwind_failures = self.ledger.unwind(executor(self.target, busy_timeout=busy))
            restored["unwound"] = len(outstanding)
            restored["failures"] = [f"{e.inverse.description}: {err}" for e, err in unwind_failures]
            if self.probe is not None:
                bound = self.target.scaled((self.target.objectives.failback_rto_seconds or 900.0) + self.target.grace_seconds)
                back = self.wait_for_class("aws", t0.mono, bound)
                restored["site_class"] = "aws" if back else self.current_class()
                restored["seconds"] = None if back is None else round(back.mono - t0.mono, 3)
        elif self.probe is not None:
            restored["site_class"] = self.current_class()
        finished = Instant.now()
        if self.probe is not None:
            self.probe.stop()
        summary = self.summary(finished, failed_tests, restored)
        self._write_evidence(summary)
        return summary

    def summary(self, finished: Instant, failed_tests: list[str], restored: dict[str, Any]) -> dict[str, Any]:
        samples = self.samples()
        p = self.target.probe
        gap = self.max_gap if self.probe else 1.0
        stats = tl.summarize(samples, gap) if samples else {}
        down, intervals = tl.downtime(samples, gap) if samples else (0.0, [])
        restored_ok = not restored["failures"] and (restored["site_class"] in (None, "aws"))
        ok = bool(self.phases) and all(ph.passed for ph in self.phases) and not failed_tests and restored_ok
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "target": self.target.name,
            "time_scale": self.target.time_scale,
            "dry_run": False,
            "operator": operator(),
            "started_at": iso(self.started.t),
            "finished_at": iso(finished.t),
            "duration_seconds": round(finished.mono - self.started.mono, 3),
            "git_revision": git_revision(),
            "harness_version": __version__,
            "phases": phase_dicts(self.phases),
            "downtime_seconds": round(down, 3),
            "downtime_intervals": [
                {"from": iso(self._wall(i.start)), "to": iso(self._wall(i.end)), "seconds": round(i.duration, 3)}
                for i in intervals
            ],
            "seconds_by_class": {k: round(v, 3) for k, v in stats.get("seconds", {}).items()} if stats else {},
            "requests": len(samples),
            "unobserved_seconds": stats.get("unobserved_seconds", 0.0) if stats else 0.0,
            "transitions": [
                {"class": s["class"], "from": iso(self._wall(s["from"])), "to": iso(self._wall(s["to"]))}
                for s in tl.transitions(samples, gap, p.sustain_seconds, p.min_samples)
            ],
            "restore": restored,
            "failed_steps": failed_tests,
            "notes": self.notes,
            "verdict": "passed" if ok else "failed",
        }

    def _wall(self, mono: float) -> float:
        return self.started.t + (mono - self.started.mono)

    def _write_evidence(self, summary: dict[str, Any]) -> None:
        ev = self.evidence
        ev.write_json("summary.json", summary)
        ev.copy_text(self.work / "timeline.jsonl", "timeline.jsonl")
        ev.write_json("actions.json", self.ledger.to_list())
        ev.write_json("target.json", self.target.masked_dict())
        ev.write_json(
            "environment.json",
            {
                "python": sys.version.split()[0], "platform": platform.platform(), "host": platform.node(),
                "operator": summary["operator"], "git_revision": summary["git_revision"], "harness_version": __version__,
            },
        )
        if self.lab_events is not None:
            ev.copy_text(self.lab_events, "lab-events.jsonl")
        ev.point_latest()
