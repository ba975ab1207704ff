"""One drill run: the probe, the rollback ledger, phase results and the evidence they become.

This is the glue the step definitions share; it has no pytest imports so that the same run can be
driven from the CLI or a test. A run starts its probe before the first fault and keeps it until
everything is put back, so the timeline covers the whole drill.
"""
from __future__ import annotations

import getpass
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from drill import __version__
from drill import timeline as tl
from drill import vantages as vt
from drill.config import ConfigError, Target
from drill.evidence import SCHEMA_VERSION, EvidenceDir, Masker, PhaseResult, iso, new_run_id, phase_dicts
from drill.ledger import Ledger
from drill.preflight import Finding
from drill.runbook import Deviation, Deviations
from drill.verdict import verdict_reasons
from drivers.actions import executor
from drivers.aws import Aws, CloudFront, LoadBalancing, NodeGroups
from drivers.probe import Probe, ProbeFleet, Vantage
from drivers.retries import api_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a user's write through the site is: PetClinic's "add owner" form. The last name is counted by
# the baseline's drill artefacts (`Drill-%`), so a write left behind shows up in the baseline diff.
SITE_WRITE_PATH = "/owners/new"
SITE_WRITE_LAST_NAME = "Drill-Write"


@dataclass(frozen=True)
class Instant:
    t: float  # wall clock, for humans and evidence
    mono: float  # monotonic, comparable with the probe's samples

    @classmethod
    def now(cls) -> Instant:
        return cls(time.time(), time.monotonic())


_S = TypeVar("_S")


def need(section: _S | None, name: str) -> _S:
    """An optional target section that a step needs, or a clear error naming it.

    The phases' needs are checked before a drill starts (steps/config_needs.py), so this fails only
    when a step runs outside the drill that checked them.
    """
    if section is None:
        raise ConfigError(f"the target has no `{name}:` section, which this step needs")
    return section



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
    except (KeyError, OSError):  # no passwd entry for this uid (containers), or no login name
        return "unknown"


def kubeconfig_secrets(path: Path) -> list[str]:
    """The credentials in a kubeconfig (tokens, client keys and certificates), to mask them everywhere."""
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    out = []
    for u in cfg.get("users") or []:
        user = (u or {}).get("user") or {}
        out += [str(user[k]) for k in ("token", "client-key-data", "client-certificate-data", "password") if user.get(k)]
    return out


def dr_relevant_alarms(target: Target) -> list[str]:
    """The alarms a drill depends on: `alarms.dr_relevant`, else every expected alarm and stop.alarms guard."""
    a = target.alarms
    if a is not None and a.dr_relevant is not None:
        return list(a.dr_relevant)
    return list(dict.fromkeys([*(a.watched() if a is not None else []), *target.stop.alarms]))


def refuse_lacking(target_name: str, phase: str, lacking: Sequence[str]) -> None:
    """A phase's first step fails, naming them, when the target lacks settings the phase needs
    (steps.config_needs.missing), before the phase changes anything."""
    assert not lacking, (f"target {target_name!r} does not set {', '.join(lacking)}, which "
                         f"{phase.replace('phase', 'Phase ')} needs")


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
        run_id: str | None = None,
        dry_run: bool = False,
    ) -> None:
        self.target = target
        # A dry run reads everything a drill reads and records every change as planned, unmade.
        self.dry_run = dry_run
        self.not_evaluated: list[str] = []  # a dry run's checks of effects that were never caused
        self.started = Instant.now()
        self.run_id = run_id or new_run_id(self.started.t)
        self.evidence = EvidenceDir(reports_dir / "evidence", self.run_id, masker)
        self.work = reports_dir / "work" / self.run_id
        self.work.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.work / "ledger.json", dry_run=dry_run)
        # Every API call that had to be retried, or failed, from the SDKs' own hooks (drivers.retries).
        from drivers import retries

        self.api_calls = retries.CallLog(self.work / "api-calls.jsonl", mask=self.evidence.mask)
        retries.use(self.api_calls)
        self.lab_events = lab_events
        self.aws = Aws(target.aws, api_settings(target))
        self.nodegroups = NodeGroups(self.aws, self.ledger, consistency_seconds=target.scaled(60))
        self.elb = LoadBalancing(self.aws)
        self.cloudfront = CloudFront(self.aws, self.ledger, time_scale=target.time_scale)
        self.instants: dict[str, Instant] = {}
        self.phases: list[PhaseResult] = []
        self.notes: list[str] = []
        self.probe: Probe | ProbeFleet | None = None
        self.dr_probe: Probe | None = None  # users of the DR site (target.dr_site), from when it is brought up
        self.dns_watch: Any = None  # drivers.route53.AnswerWatch of the site's name, once a phase starts it
        self.canary: Any = None  # drivers.database.CanaryWriter, while users' writes are modeled
        self.state: dict[str, Any] = {}  # what one phase hands to the next (explicit, checked)
        self.rpo: dict[str, Any] | None = None
        self.baseline: dict[str, Any] | None = None
        self.failback_data_loss: dict[str, Any] | None = None
        self.allure_results: Path | None = None  # pytest's --alluredir, set by conftest.py (None: no Allure)
        self.phase: tuple[str, Instant] | None = None  # the phase under way and when it began
        self.stopped_by: str | None = None
        # Probe-measured RTOs (name -> class, fault, objective, when judged): re-judged on the complete timeline.
        self._probe_rtos: dict[str, tuple[str, Instant, float, float]] = {}
        self._phase_start: dict[str, float] = {}  # name -> monotonic instant its RTO is measured from
        # Where the drill had to depart from the runbook because the runbook as written would fail.
        self.runbook = Deviations()
        # Preflight findings (drill.preflight), once run: None = not run in this drill.
        self.preflight: list[Finding] | None = None
        self._watchdog: threading.Thread | None = None
        self._watching = threading.Event()
        # The team's alarms (alarms.expected): per phase, fault → ALARM → notified; after failback → OK.
        self.detections: dict[str, Any] = {}  # phase -> list[drill.detection.Detection]
        self.clearings: list[Any] | None = None  # list[drill.detection.Clearing], once judged
        # Expected alarms not OK before the first change (alarms_before): not evaluated, each listed once.
        self.alarms_not_evaluated: list[dict[str, str]] = []
        self._receipts: Any = None  # drivers.cloudwatch.Receipts
        self._detecting: dict[str, threading.Thread] = {}  # phase -> its background detection watcher
        # Each executed Gherkin step (phase, scenario, step, start, end, status): the drill's trace.
        self.steps: list[dict[str, Any]] = []
        self.monitoring: dict[str, Any] | None = None  # where the results went (Pushgateway, textfile, OTLP)

    def __repr__(self) -> str:  # Allure shows fixture reprs as step parameters
        return f"DrillRun({self.run_id}, target={self.target.name})"

    # -- probe -------------------------------------------------------------------------------
    def _resolver(self, vantage: Any = None) -> dict[str, Any] | None:
        """A vantage's caching resolver (its own, else probe.resolver) as the probe takes it; None: the host's."""
        r = (vantage.resolver if vantage is not None else None) or self.target.probe.resolver
        return None if r is None else {"nameserver": r.nameserver, "time_scale": self.target.time_scale,
                                       "honour_ttl": r.honour_ttl}

    def ensure_probe(self) -> Probe | ProbeFleet:
        """The probe, started once: one standalone Locust process (one local vantage), or a Locust
        master with a worker per vantage, every remote vantage joined before the drill goes on."""
        if self.probe is None:
            p = self.target.probe
            if p.distributed:
                m = p.master
                self.probe = ProbeFleet(
                    self.target.site.url, self.work / "timeline.jsonl",
                    [Vantage(v.name, v.worker, v.where, v.connect_to, self._resolver(v)) for v in p.vantages],
                    rate_per_second=p.rate_per_second, users=p.users, timeout_seconds=p.timeout_seconds, rules=p.rules,
                    log_dir=self.work, bind=m.bind if m else "127.0.0.1", port=m.port if m else None,
                    join_timeout=m.join_timeout_seconds if m else 120.0,
                )
            else:
                v = p.vantages[0]
                self.probe = Probe(
                    self.target.site.url, self.work / "timeline.jsonl", rate_per_second=p.rate_per_second,
                    users=p.users, timeout_seconds=p.timeout_seconds, rules=p.rules, log_path=self.work / "probe.log",
                    vantage=v.name, connect_to=v.connect_to, resolver=self._resolver(v),
                    session_user=p.session_user.model_dump() if p.session_user is not None else None,
                )
            self.probe.start()
            self._start_watchdog()
        return self.probe

    @property
    def vantage_names(self) -> list[str]:
        return [v.name for v in self.target.probe.vantages]

    def ensure_dr_probe(self) -> Probe:
        """Users of the DR site (target.dr_site), probed like the main site from now to the end of the run:
        a standalone probe on the drill's host, resolving as the reference vantage (the first declared) does."""
        if self.dr_probe is None:
            if self.target.dr_site is None:
                raise RuntimeError(f"target {self.target.name!r} has no dr_site")
            p = self.target.probe
            v = p.vantages[0]
            self.dr_probe = Probe(
                self.target.dr_site.url, self.work / "timeline-dr.jsonl", rate_per_second=p.rate_per_second,
                users=p.users, timeout_seconds=p.timeout_seconds, rules=self.target.dr_site.rules or p.rules,
                log_path=self.work / "probe-dr.log", vantage=v.name, resolver=self._resolver(v),
            )
            self.dr_probe.start(wait_first_sample=30.0)
        return self.dr_probe

    def dr_samples(self) -> list[tl.Sample]:
        return self.dr_probe.samples() if self.dr_probe else []

    def first_sustained_dr(self, cls: str, after: float) -> tl.Sample | None:
        p = self.target.probe
        return tl.first_sustained_sample(self.dr_samples(), cls, after, p.sustain_seconds, p.min_samples, self.max_gap)

    # -- Route 53 and the DR VM (the goupang system) ---------------------------------------------
    def route53(self) -> Any:
        from drivers.route53 import Route53

        if "route53" not in self.state:
            self.state["route53"] = Route53(self.aws)
        return self.state["route53"]

    def authoritative_answer(self) -> str | None:
        """What the zone's name server answers for the site's name now (no cache)."""
        from drivers.dns_resolver import CachingResolver, ResolveError

        r = self.target.aws.route53
        assert r is not None, "the target has no aws.route53"
        try:
            return CachingResolver(r.nameserver, honour_ttl=False).query(r.record_name)[0]
        except ResolveError:
            return None

    def ensure_dns_watch(self) -> Any:
        from drivers.route53 import AnswerWatch

        if self.dns_watch is None:
            r = self.target.aws.route53
            assert r is not None, "the target has no aws.route53"
            self.dns_watch = AnswerWatch(r.nameserver, r.record_name, poll_seconds=max(0.05, self.target.scaled(2.0))).start()
        return self.dns_watch

    def dr_vm(self) -> Any:
        from drivers.azure_compute import VirtualMachine, make_client

        az = self.target.azure
        assert az is not None and az.vm is not None, "the target has no azure.vm"
        return VirtualMachine(make_client(self.azure_auth()), az.vm.resource_group or az.resource_group, az.vm.name, self.ledger)

    def session_samples(self) -> list[dict[str, Any]]:
        """The signed-in user's samples (probe.session_user), oldest first."""
        import json

        if not isinstance(self.probe, Probe) or not self.probe.sessions_out.exists():
            return []
        out = []
        for line in self.probe.sessions_out.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a half-written last line
        return out

    # -- stop conditions --------------------------------------------------------------------
    def begin_phase(self, name: str) -> None:
        self.phase = (name, Instant.now())

    def newest_before_fault(self, what: str) -> tuple[Any, float, int]:
        """The newest of the backups (`what`: "backup", "snapshot dump") listed complete just before the
        fault, its age at the fault, and how many were listed. The disaster rehearsed loses the AWS side
        at the fault, its backup job included: only those exist in it (DrillRun.before_fault); a later
        backup of the still-running primary would make the RPO ~0 by construction."""
        if "backups_at_fault" not in self.state:
            raise AssertionError(f"the {what}s could not be listed before the fault: "
                                 f"{self.state.get('backups_at_fault_error', 'no listing was made')}")
        listed = self.state["backups_at_fault"]
        assert listed, f"no {what} had completed before the fault: there is nothing to restore"
        newest = max(listed, key=lambda b: (b.started_at, b.name))
        return newest, self.instants["phase1.fault"].t - newest.started_at.timestamp(), len(listed)

    def continue_phase(self, name: str, after: str, sees: str, left_by: str, lacking: Sequence[str] = ()) -> bool:
        """Begin phase `name` as the continuation of an earlier phase of this run: that phase's instant
        `after` must be on record (else `-m` selected a phase without the ones it builds on), and users
        must see `sees`, what the earlier phase left them (`left_by` names it) — or AWS in a dry run,
        which changed nothing; `lacking`: the target's settings the phase needs and lacks
        (steps.config_needs.missing). True when the phase goes on to change things (not a dry run)."""
        self.begin_phase(name)
        refuse_lacking(self.target.name, name, lacking)
        phase = name.replace("phase", "Phase ")
        assert after in self.instants, (
            f"{phase} continues {left_by} of the same run: run `pytest -m drill --target={self.target.name}` "
            f"(all phases) or `pytest -m \"drill and {name}\" --target={self.target.name}` (it includes the phases before it)")
        seen = self.current_class()
        if self.dry_run:
            assert seen == "aws", f"users see {seen!r} during a dry run, which changes nothing: expected 'aws'"
            return False
        assert seen == sees, f"users see {seen!r}, not {sees!r} as {left_by} should have left them"
        return True

    def _start_watchdog(self) -> None:
        stop = self.target.stop
        signals = bool(stop.alarms) or stop.alertmanager is not None
        if stop.max_phase_seconds is None and stop.max_error_seconds is None and not signals:
            return
        self._watching.set()
        self._watchdog = threading.Thread(target=self._watch, name="stop-conditions", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        stop = self.target.stop
        since, next_signals = time.time(), 0.0
        while self._watching.is_set() and self.stopped_by is None:
            time.sleep(0.25)
            reason = None
            if (stop.alarms or stop.alertmanager is not None) and time.monotonic() >= next_signals:
                # The team's signals (CloudWatch alarms, Alertmanager), at stop.poll_seconds.
                # At least a second apart: the reads must not load the machine the drill measures on.
                next_signals = time.monotonic() + max(1.0, self.target.scaled(stop.poll_seconds))
                from drivers.stop_signals import fired

                try:
                    reason = fired(self.target, self.aws, since - 1.0)
                except Exception as e:  # noqa: BLE001 — a signal that cannot be read is noted, not a reason to stop
                    self._log(f"stop conditions: could not read the team's signals: {type(e).__name__}: {e}")
            if reason is None and stop.max_phase_seconds is not None and self.phase is not None:
                name, began = self.phase
                limit = self.target.scaled(stop.max_phase_seconds)
                if time.monotonic() - began.mono > limit:
                    reason = f"stop condition: {name} ran longer than its maximum {limit:.1f}s (stop.max_phase_seconds)"
            if reason is None and stop.max_error_seconds is not None:
                errors = self._trailing_errors()
                limit = self.target.scaled(stop.max_error_seconds)
                if errors > limit:
                    reason = (f"stop condition: users got errors for {errors:.1f}s at a stretch, beyond the budget "
                              f"{limit:.1f}s (stop.max_error_seconds)")
            if reason is not None and self._watching.is_set():
                self.stopped_by = reason
                self.notes.append(reason)
                # The same path as Ctrl-C: the step is interrupted and the ledger unwinds.
                os.kill(os.getpid(), signal.SIGINT)

    def _trailing_errors(self) -> float:
        """The longest current stretch of errors any vantage's users are in."""
        worst = 0.0
        for samples in self.by_vantage().values():
            if not samples or samples[-1].cls != "error":
                continue
            first = samples[-1]
            for s in reversed(samples):
                if s.cls != "error":
                    break
                first = s
            worst = max(worst, samples[-1].seen - first.seen)
        return worst

    @property
    def max_gap(self) -> float:
        return self.target.probe.max_gap_seconds or self.ensure_probe().max_gap

    def samples(self) -> list[tl.Sample]:
        """Every vantage's samples (each carries its vantage)."""
        return self.probe.samples() if self.probe else []

    def by_vantage(self) -> dict[str, list[tl.Sample]]:
        return vt.split(self.samples(), self.vantage_names)

    def vantage_rtos(self, cls: str, after: float, now: float | None = None) -> list[vt.VantageRto]:
        """Each vantage's first request sent since `after` that begins a sustained run of `cls`
        (drill.vantages), judged at `now` (default: now)."""
        p = self.target.probe
        return vt.phase_rtos(self.by_vantage(), cls, after, p.sustain_seconds, p.min_samples, self.max_gap,
                             time.monotonic() if now is None else now)

    def reaching_sample(self, cls: str, after: float) -> tl.Sample | None:
        """The request a phase's RTO counts to: the verdict vantage's (probe.verdict_on) first request
        sent since `after` that begins a sustained run of `cls`; None when that vantage never got there."""
        _, pick = vt.verdict(self.vantage_rtos(cls, after), self.target.probe.verdict_on)
        if pick is None or pick.reached_mono is None:
            return None
        return next((s for s in self.by_vantage().get(pick.vantage, []) if s.mono == pick.reached_mono), None)

    def wait_for_vantages(self, cls: str, after: float, timeout: float) -> list[vt.VantageRto]:
        """Wait until every vantage has got `cls` sustained, or its worker is gone, or `timeout`."""
        self.ensure_probe()
        deadline = time.monotonic() + timeout
        while True:
            rtos = self.vantage_rtos(cls, after)
            pending = [r.vantage for r in rtos if r.rto_seconds is None and not self._gone(r.vantage)]
            if not pending or time.monotonic() >= deadline:
                return rtos
            time.sleep(0.2)

    def _gone(self, vantage: str) -> bool:
        """The probe knows this vantage's worker is gone (exited, missing at the master), and its samples stopped."""
        probe = self.probe
        if probe is None:
            return True
        samples = self.by_vantage().get(vantage, [])
        if vt.alive(samples, time.monotonic(), self.max_gap):
            return False
        return not probe.running() if isinstance(probe, Probe) else probe.gone(vantage)

    def wait_for_class(self, cls: str, after: float, timeout: float) -> tl.Sample | None:
        """Wait until users get `cls` sustained for requests sent since `after`: every vantage still
        observed. The reaching sample of the last of them (None: some observed vantage did not get there,
        or none is observed at all)."""
        rtos = self.wait_for_vantages(cls, after, timeout)
        if any(r.state == vt.NOT_REACHED for r in rtos) or not any(r.state == vt.MEASURED for r in rtos):
            return None
        last = max((r for r in rtos if r.state == vt.MEASURED), key=lambda r: r.reached_mono or 0.0)
        by = self.by_vantage().get(last.vantage, [])
        return next((s for s in by if s.mono == last.reached_mono), None)

    def current_class(self) -> str | None:
        """The class users see now: at every vantage still observed, the last samples agree for
        `sustain_seconds` on one class, the same everywhere; else None."""
        p = self.target.probe
        seen: set[str] = set()
        now = time.monotonic()
        for samples in self.by_vantage().values():
            if not vt.alive(samples, now, self.max_gap):
                continue  # a vantage whose worker is gone says nothing of now
            last = samples[-1].seen
            recent = [s for s in samples if s.seen >= last - p.sustain_seconds]
            if len(recent) < p.min_samples or samples[0].seen > last - p.sustain_seconds:
                return None
            classes = {s.cls for s in recent}
            if len(classes) != 1:
                return None
            seen |= classes
        return seen.pop() if len(seen) == 1 else None

    def runbook_deviation(self, step: str, as_written: str, refused_because: str, drill_did: str,
                          source: str = "") -> Deviation:
        """Record that runbook step `step`, as written, would fail on the real clouds and what the drill did."""
        return self.runbook.record(Deviation(step, as_written, refused_because, drill_did, source))

    # -- faults and data ---------------------------------------------------------------------
    def before_fault(self) -> None:
        """Just before the first fault: stop the canary writes, and list the backups that exist
        (have completed) now.

        The drill rehearses losing the AWS side at the fault, its backup job included: only these
        backups exist in that disaster, so only these are eligible for Phase 2's restore (the lab
        and, in a drill, the real primary keep running and backing up; that is not the disaster).
        A listing error is recorded, not raised: Phase 1 does not need backups; Phase 2 says why.
        """
        if "phase1.fault" in self.instants:
            return
        if self.canary is not None:  # in the disaster rehearsed, no write after the fault exists
            self.canary.stop()
            self.state["last_canary_before_fault"] = self.canary.last_written()
        if self.target.azure is None:
            return
        try:
            self.state["backups_at_fault"] = self.backup_store().list()
            self.state.pop("backups_at_fault_error", None)
        except Exception as e:  # noqa: BLE001 — a listing that fails is recorded as evidence, not raised at the fault
            self.state["backups_at_fault_error"] = f"{type(e).__name__}: {e}"

    def mark_fault(self, name: str, at: Instant) -> None:
        """The instant users lost the primary: application writes stop here (the web tier is gone)."""
        self.instants[name] = at
        if self.canary is not None and name == "phase1.fault" and "last_canary_before_fault" not in self.state:
            self.canary.stop()
            self.state["last_canary_before_fault"] = self.canary.last_written()

    def primary_db(self) -> Any:
        """The primary database, from the same Secrets Manager secret the backup job uses."""
        from drivers.aws import Secrets
        from drivers.database import Database

        if self.target.database is None:
            raise RuntimeError(f"target {self.target.name!r} has no `database:` section")
        s = Secrets(self.aws).json(need(self.target.database, "database").secret_id)
        self.evidence.mask.add([str(s.get("password", ""))])
        return Database(str(s["host"]), int(s["port"]), str(s["username"]), str(s["password"]), str(s["dbname"]),
                        ssl_ca=need(self.target.database, "database").ssl_ca)

    def ensure_baseline(self) -> None:
        """Snapshot what the drill may touch, before its first change (once per run)."""
        if self.baseline is None:
            from steps.baseline import alarms_not_ok, capture

            self.baseline = capture(self)
            firing = alarms_not_ok(self.baseline)
            if firing:
                self.notes.append("alarms not OK before the first change (not the drill's to clear; excluded from the "
                                  f"baseline check): {', '.join(f'{k} {v}' for k, v in sorted(firing.items()))}")

    def drill_artifacts_in_primary(self) -> dict[str, Any]:
        """What a drill writes into the primary database (the canary table, marker owners)."""
        db = self.primary_db()
        with db.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'dr_canary'")
            canary = cur.fetchone()[0] > 0
            cur.execute("SELECT COUNT(*) FROM owners WHERE last_name LIKE 'Drill-%%'")
            markers = int(cur.fetchone()[0])
        return {"dr_canary_table": canary, "drill_marker_owners": markers}

    def azure_failover_resources(self) -> dict[str, Any]:
        """What of the failover stack exists: Terraform's outputs and the App Gateway as ARM sees it."""
        from azure.core.exceptions import ResourceNotFoundError

        outputs = self.terraform().output()
        try:
            self.app_gateway().get()
            gateway = True
        except ResourceNotFoundError:
            gateway = False
        return {
            "terraform_outputs": sorted(k for k in outputs if k != "resource_group_name"),
            "app_gateway": gateway,
        }

    def site_write(self, phase: str) -> dict[str, Any] | None:
        """A user adds an owner through the public site now: what they get, and whether it landed.

        The write path takes whatever cache behavior the distribution gives it (the seeds': one that
        goes straight to the primary, as origin failover never covers POST), so while the primary is
        down the user gets an error whatever the secondary serves. A write that succeeds changes the
        primary database: it is ledgered first, its inverse deleting that row. Returns the
        observation (also kept in `state["outage_write"][phase]`), or None in a dry run (planned only).
        """
        import httpx

        from drill.ledger import Action

        if self.target.database is None:
            raise RuntimeError(f"target {self.target.name!r} has no `database:` section: a site write needs the primary")
        cf = self.target.aws.cloudfront
        assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
        behavior = self.cloudfront.behavior_for(cf.distribution_id, SITE_WRITE_PATH)
        key = f"dr-drill {self.run_id} {phase}"  # unique per write: what the inverse deletes by
        where = {"secret_id": need(self.target.database, "database").secret_id, "table": "owners", "column": "address", "value": key}
        url = self.target.site.url.rstrip("/") + SITE_WRITE_PATH
        entry = self.ledger.record(
            Action("site.write_owner", {"url": url, "address": key},
                   f"a user adds owner {SITE_WRITE_LAST_NAME} ({phase}) through the site"),
            Action("db.delete_rows", where, f"delete the owner a user added through the site in {phase} from the primary, if it landed"),
        )
        if entry.planned:
            return None
        form = {"firstName": phase, "lastName": SITE_WRITE_LAST_NAME, "address": key, "city": "Seoul", "telephone": "0100000000"}
        seen = self.current_class()
        t0 = time.monotonic()
        result: dict[str, Any] = {"phase": phase, "users_saw": seen, "method": "POST", "path": SITE_WRITE_PATH,
                                  "behavior": behavior.as_dict()}
        try:
            r = httpx.post(url, data=form, timeout=self._site_write_timeout(behavior.target))
            # PetClinic redirects to the new owner's page once it is saved (a 200 re-shows the form).
            result.update(status=r.status_code, accepted=r.status_code in (301, 302, 303), x_cache=r.headers.get("x-cache"))
        except httpx.HTTPError as e:
            result.update(status=0, accepted=False, error=type(e).__name__)
        finally:
            self.ledger.applied(entry)
        result["seconds"] = round(time.monotonic() - t0, 3)
        with self.primary_db().connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM owners WHERE address = %s", (key,))
            result["rows_in_primary"] = int(cur.fetchone()[0])
        self.state.setdefault("outage_write", {})[phase] = result
        return result

    def _site_write_timeout(self, target_id: str) -> float:
        """Longer than the edge may take before answering a POST itself (then the answer is CloudFront's):
        every connection attempt timing out, then one response timeout (POST is never sent twice)."""
        cf = self.target.aws.cloudfront
        assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
        cfg, _ = self.cloudfront.config(cf.distribution_id)
        groups = {g["Id"]: [m["OriginId"] for m in g["Members"]["Items"]] for g in (cfg.get("OriginGroups") or {}).get("Items") or []}
        worst = 0.0
        for o in cfg["Origins"]["Items"]:
            if o["Id"] in groups.get(target_id, [target_id]):
                read = float((o.get("CustomOriginConfig") or {}).get("OriginReadTimeout") or 30)
                worst = max(worst, int(o.get("ConnectionAttempts") or 3) * float(o.get("ConnectionTimeout") or 10) + read)
        return self.target.scaled(worst or 60.0) + self.target.probe.timeout_seconds

    def azure_only_rows(self) -> dict[str, int]:
        """Rows written on Azure after the restore: what failback would lose (not replicated back)."""
        restored = self.state.get("restored_max_ids", {})
        out: dict[str, int] = {}
        with self.azure_db().connect() as conn, conn.cursor() as cur:
            for table, max_id in restored.items():
                cur.execute(f"SELECT COUNT(*) FROM `{table}` WHERE id > %s", (max_id,))
                out[table] = int(cur.fetchone()[0])
        return out

    def ensure_canary(self) -> None:
        """Start writing canary rows (RPO) into the primary, once, before the first fault."""
        if self.canary is not None or self.target.database is None or self.instants or self._entry("db.create_table"):
            return
        from drill.ledger import Action
        from drivers.database import CanaryWriter

        db = self.primary_db()
        where = {"secret_id": need(self.target.database, "database").secret_id, "table": "dr_canary"}
        entry = self.ledger.record(
            Action("db.create_table", where, "create the dr_canary table in the primary (RPO canaries)"),
            Action("db.drop_table", where, "drop the dr_canary table from the primary"),
        )
        if entry.planned:  # a dry run writes nothing into the primary
            self._write_marker_owner(db)
            return
        self.canary = CanaryWriter(db, self.target.scaled(need(self.target.database, "database").canary_interval_seconds))
        self.canary.start()
        self.ledger.applied(entry)
        self._write_marker_owner(db)

    def _write_marker_owner(self, db: Any) -> None:
        """An owner only this run writes, to check on Azure that data before the backup survived."""
        from drill.ledger import Action

        last_name = f"Drill-{self.run_id}"
        where = {"secret_id": need(self.target.database, "database").secret_id, "table": "owners", "column": "last_name",
                 "value": last_name}
        entry = self.ledger.record(
            Action("db.insert_marker", where, f"insert marker owner {last_name} into the primary"),
            Action("db.delete_rows", where, f"delete marker owner {last_name} from the primary"),
        )
        if entry.planned:
            return
        written_at = time.time()
        with db.connect() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO owners (first_name, last_name, address, city, telephone) VALUES (%s, %s, %s, %s, %s)",
                ("DR", last_name, "1 Drill Street", "Seoul", "0000000000"),
            )
        committed_at = time.time()  # autocommit: the server has committed once execute returns
        self.ledger.applied(entry)
        self.state["drill_owner"] = {"last_name": last_name, "written_at": written_at, "committed_at": committed_at}

    # -- Azure side (Phase 2) ------------------------------------------------------------------
    def backup_store(self) -> Any:
        from drivers.actions import blob_service
        from drivers.backups import BackupStore

        st = need(self.target.azure, "azure").storage
        return BackupStore(blob_service(self.target).get_container_client(st.backup_container))

    def azure_auth(self) -> Any:
        from drivers.actions import azure_auth

        return azure_auth(self.target)

    def azure_credential(self) -> Any:
        from drivers.azure_network import make_credential

        return make_credential(self.azure_auth())

    def terraform(self) -> Any:
        """The failover stack's Terraform (the target's subscription, credentials and variables).

        Sensitive outputs join the run's masker as soon as Terraform prints them, so no attachment,
        log or evidence file can carry them.
        """
        from drivers.terraform_stack import stack_terraform

        if "terraform" not in self.state:
            self.state["terraform"] = stack_terraform(self.target, log=self._log, on_secret=self.evidence.mask.add)
        return self.state["terraform"]

    def adopt_terraform(self, tf: Any, preflight: Any) -> None:
        """Take over the Terraform CLI the pre-start check used (initialised), and what it found."""
        tf.log, tf.on_secret = self._log, self.evidence.mask.add
        self.evidence.mask.add(tf.secret_values())
        self.state["terraform"] = tf
        self.state["stack_preflight"] = preflight
        self.notes.append(f"failover stack absent before the first change: no outputs; plan: {preflight.plan}")

    def record_stack_destroy(self, plan: str | None = None) -> None:
        """Before the first apply: the way back is `terraform destroy` of the whole failover stack.

        Only for a stack this run creates: the pre-start check (no outputs, a plan of creations only)
        must have passed, and its findings go into the inverse as the proof an unwind checks.
        `plan` is `terraform plan`'s one-line summary, which a dry run shows instead of applying.
        """
        from drill.ledger import Action
        from drivers.provisioner import destroy_action

        fs = need(self.target.failover_stack, "failover_stack")
        if self._entry("provisioner.apply"):
            return
        found = self.state.get("stack_preflight")
        if found is None:
            raise AssertionError("the failover stack was not checked absent before the first change: "
                                 "refusing to apply it (its destroy could remove a stack the drill did not create)")
        params = {"chdir": fs.chdir, "binary": fs.terraform_binary}
        entry = self.ledger.record(
            Action("provisioner.apply", params,
                   "terraform apply of the Azure failover stack" + (f" (plan: {plan})" if plan else "")),
            destroy_action(fs.chdir, fs.terraform_binary, self.run_id, found.as_dict()),
        )
        self.ledger.applied(entry)  # applied from here on: a partial apply must be destroyed too

    def stack_entry(self) -> Any:
        """The ledger entry of the failover stack's apply: what lives in the stack is `inside` it."""
        entry = self._entry("provisioner.apply")
        if entry is None:
            raise AssertionError("the failover stack's apply is not in the ledger: this step continues Phase 2's provisioning")
        return entry

    def _entry(self, op: str) -> Any:
        """The first ledger entry whose change is `op` (applied, planned or undone), else None."""
        return next((e for e in self.ledger.entries if e.change.op == op), None)

    def azure_db(self) -> Any:
        from drivers.database import Database

        az = need(self.target.azure, "azure")
        if az.mysql.host is not None:  # an always-on server (no failover stack outputs)
            return Database(az.mysql.host, az.mysql.port, az.mysql.admin_username or "", az.mysql.admin_password.get_secret_value(),
                            az.mysql.database or "petclinic", ssl_ca=az.mysql.ssl_ca)
        out = self.state["stack_outputs"]
        return Database(out["mysql_fqdn"], az.mysql.port, out["mysql_admin_username"],
                        az.mysql.admin_password.get_secret_value(), out["mysql_database_name"], ssl_ca=az.mysql.ssl_ca)

    def kubeconfig_path(self) -> Path:
        """Where the failover stack's AKS credentials are (to be) written: the run's private work dir
        (never a file the target names: that one is the operator's, and preflight refuses it anyway)."""
        return self.work / "kubeconfig"

    def fetch_kubeconfig(self, outputs: dict[str, Any]) -> Path:
        """After the apply, as runbook 2.3 step 1 (`az aks get-credentials`): the new cluster's user
        kubeconfig from ARM, 0600 in the work dir; its credentials are masked wherever the run writes."""
        from drivers.aks import AksCredentials, Kubelogin, cluster_ref, make_client

        k = need(self.target.kubernetes, "kubernetes")
        name = outputs.get("aks_cluster_name")
        if not name:
            raise AssertionError(f"the failover stack's apply gave no aks_cluster_name output (outputs: {sorted(outputs)}): "
                                 "the drill cannot tell which AKS cluster to fetch credentials for")
        rg = str(outputs.get("resource_group_name") or need(self.target.azure, "azure").resource_group)
        self.state["aks_cluster"] = cluster_ref(rg, str(name))
        creds = AksCredentials(make_client(self.azure_auth()), Kubelogin(k.kubelogin.mode, k.kubelogin.binary)
                               if k.kubelogin else None, log=self._log)
        path = creds.fetch(rg, str(name), self.kubeconfig_path())
        self.evidence.mask.add(kubeconfig_secrets(path))
        self.state["kubeconfig"] = path
        self.state.pop("kube", None)  # a client made before the fetch would hold nothing valid
        return path

    def kube(self) -> Any:
        from drivers.kube import Kube

        if "kube" not in self.state:
            k = need(self.target.kubernetes, "kubernetes")
            path = self.state.get("kubeconfig") or (Path(k.kubeconfig).expanduser() if k.kubeconfig else self.kubeconfig_path())
            self.state["kube"] = Kube(path, context=k.context, cluster=self.state.get("aks_cluster"), api=api_settings(self.target))
        return self.state["kube"]

    def app_gateway(self) -> Any:
        from drivers.azure_network import AppGateway, make_client

        az = need(self.target.azure, "azure")
        return AppGateway(make_client(self.azure_auth()), az.resource_group, az.app_gateway.name, self.ledger)

    def _log(self, line: str) -> None:
        with open(self.work / "drivers.log", "a", encoding="utf-8") as f:
            f.write(self.evidence.mask(line.rstrip("\n")) + "\n")

    # -- the team's alarms ---------------------------------------------------------------------
    def cloudwatch_alarms(self) -> Any:
        from drivers.cloudwatch import Alarms

        return Alarms(self.aws)

    def receipts(self) -> list[Any]:
        """Every alarm notification delivered so far (read from the receipts queue), oldest first."""
        a = self.target.alarms
        if a is None or a.notification_queue_url is None:
            return []
        if self._receipts is None:
            from drivers.cloudwatch import Receipts

            self._receipts = Receipts(self.aws, a.notification_queue_url)
        return list(self._receipts.drain())

    def alarm_transitions(self, names: list[str], since: float) -> dict[str, list[Any]]:
        alarms = self.cloudwatch_alarms()
        return {n: alarms.transitions(n, since) for n in names}

    @property
    def alarms_before(self) -> dict[str, str]:
        """Alarms not OK in the baseline (a previous drill's still clearing, a real incident): no OK → ALARM
        of theirs can be measured, so their detection and clearing are not evaluated."""
        from steps.baseline import alarms_not_ok

        return alarms_not_ok(self.baseline) if isinstance(self.baseline, dict) else {}

    def expected_alarms(self, phase: str) -> list[str]:
        """The alarms `phase`'s fault must set off (alarms.expected), less those already not OK before the
        drill's first change: each of those is recorded as not evaluated, once."""
        t = self.target
        expected = list((t.alarms.expected if t.alarms else {}).get(phase, []))  # type: ignore[call-overload]
        before = self.alarms_before
        for name in expected:
            state = before.get(name)
            if state is not None and not any(x["alarm"] == name and x["phase"] == phase for x in self.alarms_not_evaluated):
                self.alarms_not_evaluated.append({
                    "alarm": name, "phase": phase, "state_before": state,
                    "why": f"{state} before the drill's first change: no OK → ALARM to measure, nor its clearing"})
        return [n for n in expected if n not in before]

    def wait_for_detection(self, phase: str) -> list[Any]:
        """Fault → each alarm `phase` expects in ALARM and its notification delivered; waits until all
        are, or the detection objective (plus grace) has passed since the fault. Kept per phase."""
        from drill.detection import detect

        t = self.target
        expected = self.expected_alarms(phase)
        objective = t.objectives.detection_seconds
        if not expected or objective is None:
            return []
        fault = self.instants[f"{phase}.fault"]
        limit = t.scaled(objective)
        deadline = fault.mono + limit + t.scaled(t.grace_seconds)
        # The instants come from the alarms' history and SQS's SentTimestamp, not from when we look:
        # a look a second keeps the load on the machine (and the rate-limited APIs) low.
        poll = 1.0

        def measure() -> list[Any]:
            return detect(phase, fault.t, expected, self.alarm_transitions(expected, fault.t - 1.0), self.receipts(), limit)

        found = measure()
        while not all(d.complete for d in found) and time.monotonic() < deadline:
            time.sleep(poll)
            found = measure()
        self.detections[phase] = found
        return found

    def start_detection(self, phase: str) -> None:
        """Measure `phase`'s detection (wait_for_detection) in a background thread: judged later, by
        `detection_result` (a later step, or the end of the run), so it never delays the drill."""
        if phase in self._detecting or phase in self.detections:
            return

        def run() -> None:
            try:
                self.wait_for_detection(phase)
            except Exception as e:  # noqa: BLE001 — unreadable alarms: every expected alarm is reported as never fired
                from drill.detection import detect

                self._log(f"alarms: detection of {phase} could not be measured: {type(e).__name__}: {e}")
                self.notes.append(f"alarms: detection of {phase} could not be measured: {type(e).__name__}: {e}")
                t = self.target
                expected = self.expected_alarms(phase)
                self.detections[phase] = detect(phase, self.instants[f"{phase}.fault"].t, expected, {}, [],
                                                t.scaled(t.objectives.detection_seconds or 0.0))

        thread = threading.Thread(target=run, name=f"detection-{phase}", daemon=True)
        self._detecting[phase] = thread
        thread.start()

    def detecting(self, phase: str) -> bool:
        return phase in self._detecting

    def detection_result(self, phase: str) -> list[Any]:
        """`phase`'s detections, waiting for its watcher (bounded by the objective + grace from the fault)."""
        thread = self._detecting.get(phase)
        if thread is not None:
            t = self.target
            deadline = (self.instants[f"{phase}.fault"].mono + t.scaled(t.objectives.detection_seconds or 0.0)
                        + t.scaled(t.grace_seconds) + 30.0)
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return list(self.detections.get(phase, []))

    def wait_for_clear(self, restored: Instant) -> list[Any]:
        """Restore → every alarm that fired back to OK; waits up to the clear objective (plus grace)."""
        from drill.detection import clear

        t = self.target
        fired = [d for ds in self.detections.values() for d in ds if d.fired_at is not None]
        objective = t.objectives.alarm_clear_seconds
        if not fired or objective is None:
            return []
        names = list(dict.fromkeys(d.alarm for d in fired))
        alarms = self.cloudwatch_alarms()
        limit = t.scaled(objective)
        deadline = restored.mono + limit + t.scaled(t.grace_seconds)
        poll = max(0.1, min(1.0, limit / 50))
        while True:
            states = alarms.describe(names)
            if all(states.get(n) is not None and states[n].state == "OK" for n in names) or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        since = min(d.fired_at for d in fired) - 1.0
        self.clearings = clear(restored.t, fired, self.alarm_transitions(names, since), states, limit)
        self.receipts()  # the OK notifications, for the record
        return self.clearings

    def alarm_states(self) -> dict[str, str]:
        """The DR-relevant alarms' states now (for the baseline): name -> state, or "(absent)"."""
        names = dr_relevant_alarms(self.target)
        states = self.cloudwatch_alarms().describe(names)
        return {n: states[n].state if n in states else "(absent)" for n in names}

    # -- results -----------------------------------------------------------------------------
    def measure_rto(self, name: str, title: str, fault: Instant, cls: str, objective_real: float) -> PhaseResult:
        """Wait for `cls` after `fault` (up to objective + grace) at every vantage and record it as a
        phase result: the RTO is the verdict vantage's (probe.verdict_on: the worst, or a percentile),
        each vantage's RTO, the spread and its explanation are in `detail`."""
        target_s = self.target.scaled(objective_real)
        rtos = self.wait_for_vantages(cls, fault.mono, target_s + self.target.scaled(self.target.grace_seconds))
        self._probe_rtos[name] = (cls, fault, objective_real, time.monotonic())
        return self._probe_result(name, title, fault, cls, objective_real, rtos)

    def _probe_result(
        self, name: str, title: str, fault: Instant, cls: str, objective_real: float, rtos: list[vt.VantageRto],
    ) -> PhaseResult:
        p = self.target.probe
        target_s = self.target.scaled(objective_real)
        rto, pick = vt.verdict(rtos, p.verdict_on)
        self._phase_start[name] = fault.mono
        detail: dict[str, Any] = {} if rto is None or pick is None else {
            "first_response_latency_ms": round(pick.latency_ms or 0.0, 1)}
        detail.update(vt.phase_detail(rtos, p.verdict_on, 1.0 / p.rate_per_second, cls, self.target.time_scale, wall=iso))
        result = PhaseResult(
            name=name,
            title=title,
            rto_seconds=None if rto is None else round(rto, 3),
            rto_target_seconds=round(target_s, 3),
            passed=rto is not None and rto <= target_s,
            measured=f"fault → first request answered with '{cls}', sustained {self.target.probe.sustain_seconds:g}s"
                     + (f", at every vantage ({p.verdict_on} of {len(rtos)})" if len(rtos) > 1 else ""),
            fault_at=iso(fault.t),
            reached_at=None if rto is None else iso(fault.t + rto),
            rto_target_real_seconds=objective_real,
            detail=detail,
        )
        self._set_phase(result)
        return result

    def _set_phase(self, result: PhaseResult) -> None:
        """Record a phase result, replacing an earlier one of that name in place (phases stay in order)."""
        names = [p.name for p in self.phases]
        if result.name in names:
            self.phases[names.index(result.name)] = result
        else:
            self.phases.append(result)

    def record_rto(
        self, name: str, title: str, fault: Instant, reached: Instant, objective_real: float, measured: str,
    ) -> PhaseResult:
        """An RTO measured by the drill's own clock (e.g. data verified on Azure), not by the probe."""
        target_s = self.target.scaled(objective_real)
        rto = reached.mono - fault.mono
        self._phase_start[name] = fault.mono
        result = PhaseResult(
            name=name, title=title, rto_seconds=round(rto, 3), rto_target_seconds=round(target_s, 3),
            passed=rto <= target_s, measured=measured, fault_at=iso(fault.t), reached_at=iso(reached.t),
            rto_target_real_seconds=objective_real,
        )
        self._set_phase(result)
        return result

    # -- end of run --------------------------------------------------------------------------
    def finish(self, failed_tests: list[str]) -> dict[str, Any]:
        """Unwind what is left, wait for the system to settle back, check users are on AWS, write evidence.

        Nothing may interrupt this: stop conditions are disarmed and a further Ctrl-C or SIGTERM is
        noted, not obeyed (as Terraform does), because a half-done unwind leaves the system broken.
        """
        self._watching.clear()
        shielded: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            def note(signum: int, frame: Any) -> None:
                self.notes.append(f"signal {signum} received during the unwind: ignored until it finished")

            for sig in (signal.SIGINT, signal.SIGTERM):
                shielded[sig] = signal.signal(sig, note)
        try:
            return self._finish(failed_tests)
        finally:
            for sig, handler in shielded.items():
                signal.signal(sig, handler)

    def _finish(self, failed_tests: list[str]) -> dict[str, Any]:
        restored: dict[str, Any] = {"unwound": 0, "failures": [], "site_class": None, "seconds": None}
        # A Terraform apply still running in the background holds the state lock: let it finish
        # (it cannot be cancelled safely mid-resource) before destroying what it made.
        applying = self.state.get("stack_apply")
        if applying is not None and applying[0].is_alive():
            applying[0].join(timeout=self.target.scaled(3600) + 60)
        # Likewise a failback's destroy: racing it would delete inside a stack being deleted.
        destroying = self.state.get("stack_destroy")
        if destroying is not None and destroying.is_alive():
            destroying.join(timeout=self.target.scaled(3600) + 60)
        t0 = Instant.now()
        outstanding = self.ledger.outstanding()
        if outstanding:
            busy = self.target.scaled(900.0) + 30.0
            failures = self.ledger.unwind(executor(self.target, busy_timeout=busy))
            restored["unwound"] = len(outstanding)
            restored["failures"] = [f"{e.inverse.description}: {err}" for e, err in failures]
        if self.canary is not None:
            self.canary.stop()
        if not self.ledger.outstanding():
            # Everything is undone and the cluster gone with the stack: its credentials need not linger.
            self.kubeconfig_path().unlink(missing_ok=True)
        # Put back is not instantly back: nodes boot and must pass the ALB's health checks again,
        # within the failback objective (required whenever a drill phase runs: drill.config), and the
        # team's alarms must be back to OK within theirs (they are in the baseline; required with alarms.expected).
        o = self.target.objectives
        failback = o.failback_rto_seconds
        if failback is None:
            self.notes.append("objectives.failback_rto_seconds is not set: the end of the run did not wait for the "
                              "system to settle back")
        # Alarms expected to fire (a watcher may still run), or alarms in the baseline: a fault of any
        # length sets them off, and they clear on CloudWatch's schedule, not the drill's.
        watched = bool(self.detections or self._detecting
                       or (isinstance(self.baseline, dict) and "alarms" in self.baseline))
        settle_real = max([x for x in (failback, o.alarm_clear_seconds if watched else None) if x is not None],
                          default=None)
        settle = 0.0 if settle_real is None else self.target.scaled(settle_real + self.target.grace_seconds)
        baseline_diff: list[str] = []
        if self.baseline is not None:
            from steps.baseline import capture, drill_diff

            before = self.baseline

            def differences() -> list[str]:
                try:
                    return drill_diff(before, capture(self))
                except Exception as e:  # noqa: BLE001 — an unreadable state is a difference, not a pass
                    return [f"(could not read the state after the drill: {type(e).__name__}: {e})"]

            deadline = time.monotonic() + settle
            baseline_diff = differences()
            while baseline_diff and time.monotonic() < deadline:
                time.sleep(0.5)
                baseline_diff = differences()
        restored["baseline_diff"] = baseline_diff
        if self.probe is not None:
            # Users count as back only once the state has settled: during a node drain that the
            # unwind raced, they may see AWS, then the maintenance page, then AWS again.
            settled = Instant.now()
            if outstanding:
                back = self.wait_for_class("aws", settled.mono, settle)
                restored["site_class"] = "aws" if back else self.current_class()
                restored["seconds"] = None if back is None else round(back.mono - t0.mono, 3)
            else:
                restored["site_class"] = self.current_class()
        for phase in list(self._detecting):
            # A watcher still running (a Phase-1-only run, a stopped drill): its result is part of the run.
            self.detection_result(phase)
        if self.detections and self.clearings is None and outstanding:
            # No failback step judged the alarms: the unwind restored the primary, so judge from the
            # instant it put the node group back (after the newer changes were undone), else its start.
            restored_at = [e.undone_at for e in outstanding if e.change.op == "aws.eks.set_scaling" and e.undone_at]
            since = t0 if not restored_at else Instant(max(restored_at), t0.mono + (max(restored_at) - t0.t))
            try:
                self.wait_for_clear(since)
            except Exception as e:  # noqa: BLE001 — the run is over: its evidence is still written
                self.notes.append(f"alarms: could not read their states after the unwind: {type(e).__name__}: {e}")
        finished = Instant.now()
        if self.probe is not None:
            self.probe.stop()
            self.rejudge_rtos()
        if self.dr_probe is not None:
            self.dr_probe.stop()
        if self.dns_watch is not None:
            self.dns_watch.stop()
        self.real_world()
        summary = self.summary(finished, failed_tests, restored)
        from drivers.monitoring import export_results

        # Into the team's monitoring (Pushgateway, textfile collector); failures are noted, never fatal.
        self.monitoring = summary["monitoring"] = export_results(self.target, summary)
        self._write_evidence(summary)
        return summary

    def rejudge_rtos(self) -> None:
        """Judge every probe-measured RTO again on the complete timeline.

        A step judges its RTO on the answers in so far; a request still in flight then (sent
        earlier, answered later) can join or break the sustained run it found. Once the probe has
        stopped every request is in, so this is the final figure; a change is noted.
        """
        for name, (cls, fault, objective_real, judged_at) in self._probe_rtos.items():
            before = next((ph for ph in self.phases if ph.name == name), None)
            if before is None:
                continue
            # Per vantage, as judged then: a vantage whose samples had stopped by then stays unobserved.
            after = self._probe_result(name, before.title, fault, cls, objective_real, self.vantage_rtos(cls, fault.mono, judged_at))
            # What the phase's own step added (the Route 53 system's detection / DNS TTL split) stays, its
            # TTL part following the final RTO (the answer changed at a fixed instant; users came after).
            detail = {**before.detail, **after.detail}
            if after.rto_seconds is not None:
                for answer_changed in ("detection_seconds", "answer_back_on_primary_seconds"):
                    if answer_changed in detail:
                        detail["dns_ttl_seconds"] = round(after.rto_seconds - detail[answer_changed], 3)
            self._set_phase(replace(after, detail=detail))
            if after.rto_seconds != before.rto_seconds:
                self.notes.append(f"{name}: RTO {before.rto_seconds}s as judged during the run is {after.rto_seconds}s "
                                  "on the complete timeline (a request in flight then changed the sustained run)")

    def real_world(self) -> None:
        """Each phase's real-world equivalent: scale only what the target time-scales.

        On a target that plays reality at its own pace (time_scale 1) the real-world figure is
        the measurement. In the lab, only the delays it models are scaled (the phase's modeled
        critical path, from its event log: lab.critical_path); the harness's own work and waits
        and real process start-up are counted once, and reported apart (`unscaled_seconds`).
        Without a way to tell them apart the figure is unknown (None), never a guess.
        """
        scale = self.target.time_scale
        events = None
        if scale != 1 and self.lab_events is not None and Path(self.lab_events).exists():
            from lab.events import read_events

            events = read_events(Path(self.lab_events))
        for i, ph in enumerate(self.phases):
            detail = dict(ph.detail)
            real: float | None = None
            if ph.rto_seconds is None:
                pass
            elif scale == 1:
                real = ph.rto_seconds
            elif events is None or ph.name not in self._phase_start:
                detail["real_world_unknown"] = "the target is time-scaled but left no event log to tell modeled delays apart"
            else:
                from lab.critical_path import split

                start = self._phase_start[ph.name]
                got = split(ph.name, events, start, start + ph.rto_seconds, scale, self.target.system)
                if "unknown" in got:
                    detail["real_world_unknown"] = got["unknown"]
                else:
                    real = got["real_world_seconds"]
                    detail.update(modeled_seconds=got["modeled_seconds"], unscaled_seconds=got["unscaled_seconds"],
                                  modeled_chain=got["chain"], unscaled_gaps=got["gaps"])
                    if got["ends_after_reached"]:
                        detail["modeled_after_reached"] = got["ends_after_reached"]
            if "real_world_unknown" in detail:
                self.notes.append(f"{ph.name}: no real-world figure: {detail['real_world_unknown']}")
            self.phases[i] = replace(ph, rto_real_equivalent_seconds=real, detail=detail)

    def vantages_summary(self, gap: float) -> tuple[list[dict[str, Any]], str]:
        """Per vantage: where it was, what its users saw, its probe gaps, its worker(s) and clock; and
        the vantage whose users had the most downtime."""
        p = self.target.probe
        by = self.by_vantage()
        all_seen = [s.seen for v in by.values() for s in v]
        start, end = (min(all_seen), max(all_seen)) if all_seen else (None, None)
        status = self.probe.status() if isinstance(self.probe, ProbeFleet) else {}
        declared = {v.name: v for v in p.vantages}
        out = []
        for name, samples in by.items():
            st = vt.vantage_stats(samples, gap, start, end, p.sustain_seconds, p.min_samples)
            cfg = declared.get(name)
            workers = [w for w in status.get("workers", []) if w.get("vantage") == name]
            holder = next((w for w in workers if w.get("holds_vantage")), workers[-1] if workers else None)
            clock: dict[str, Any] | None
            if isinstance(self.probe, Probe):
                clock = {"offset_seconds": 0.0, "uncertainty_seconds": 0.0,
                         "source": "the standalone probe runs on the drill's host: one clock"}
            else:
                clock = dict(holder["clock"], source="NTP-style exchanges over the Locust master–worker channel "
                             "(drill.clocks)") if holder and holder.get("clock") else None
            out.append({
                "name": name, "worker": cfg.worker if cfg else "undeclared", "where": cfg.where if cfg else "",
                "connect_to": cfg.connect_to if cfg else None,
                "requests": st["requests"], "edges": st["edges"],
                "downtime_seconds": st["downtime_seconds"],
                "downtime_intervals": [{"from": iso(self._wall(a)), "to": iso(self._wall(b)), "seconds": round(b - a, 3)}
                                       for a, b in st["downtime_intervals"]],
                "unobserved_seconds": st["unobserved_seconds"],
                "unobserved_intervals": [{"from": iso(self._wall(a)), "to": iso(self._wall(b)), "seconds": round(b - a, 3)}
                                         for a, b in st["unobserved_intervals"]],
                "seconds_by_class": st["seconds_by_class"],
                "transitions": [{"class": c, "from": iso(self._wall(a)), "to": iso(self._wall(b))} for c, a, b in st["transitions"]],
                "first_sample_at": iso(self._wall(st["first_seen"])) if st["first_seen"] is not None else None,
                "last_sample_at": iso(self._wall(st["last_seen"])) if st["last_seen"] is not None else None,
                "clock": clock,
                "wall_clock": holder.get("wall_clock") if holder else None,
                "workers": [{k: w.get(k) for k in ("host", "pid", "state", "samples", "left")} | {"joined_at": iso(w.get("joined_t"))}
                            for w in workers],
            })
        worst = max(out, key=lambda v: v["downtime_seconds"])["name"] if out else (self.vantage_names or [tl.DEFAULT_VANTAGE])[0]
        return out, worst

    def summary(self, finished: Instant, failed_tests: list[str], restored: dict[str, Any]) -> dict[str, Any]:
        everything = self.samples()
        p = self.target.probe
        gap = self.max_gap if self.probe else 1.0
        vantages, worst = self.vantages_summary(gap)
        by = self.by_vantage()
        # Single-stream figures: the users of the reference vantage (the first declared: with one
        # vantage, everything), except downtime, which is the worst vantage's (summary.json: vantages).
        reference = self.vantage_names[0]
        samples = by.get(reference, [])
        stats = tl.summarize(samples, gap) if samples else {}
        worst_samples = by.get(worst, [])
        down, intervals = tl.downtime(worst_samples, gap) if worst_samples else (0.0, [])
        alarms = self.alarms_summary()
        summary = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "target": self.target.name,
            "time_scale": self.target.time_scale,
            "dry_run": self.dry_run,
            "plan": self.ledger.plan() if self.dry_run else None,
            "not_evaluated": self.not_evaluated,
            "operator": operator(),
            "started_at": iso(self.started.t),
            "finished_at": iso(finished.t),
            "duration_seconds": round(finished.mono - self.started.mono, 3),
            "git_revision": git_revision(),
            "harness_version": __version__,
            "phases": phase_dicts(self.phases),
            "rpo_seconds": None if self.rpo is None else self.rpo["rpo_seconds"],
            "rpo_target_seconds": None if self.rpo is None else self.rpo["rpo_target_seconds"],
            "backup_age_seconds": None if self.rpo is None else self.rpo["backup_age_seconds"],
            "rpo": self.rpo,
            "failback_data_loss": self.failback_data_loss,
            "outage_write": self.state.get("outage_write"),
            "alarms": alarms,
            "runbook_deviations": self.runbook.as_list(),
            "preflight": None if self.preflight is None else [f.as_dict() for f in self.preflight],
            "baseline_diff": restored.get("baseline_diff", []),
            "downtime_seconds": round(down, 3),
            "degraded_seconds": round(stats.get("seconds", {}).get("maintenance", 0.0), 3) if stats else 0.0,
            "azure_seconds": round(stats.get("seconds", {}).get("azure", 0.0), 3) if stats else 0.0,
            "downtime_intervals": [
                {"from": iso(self._wall(i.start)), "to": iso(self._wall(i.end)), "seconds": round(i.duration, 3)}
                for i in intervals
            ],
            "seconds_by_class": {k: round(v, 3) for k, v in stats.get("seconds", {}).items()} if stats else {},
            "requests": len(everything),
            "unobserved_seconds": max((v["unobserved_seconds"] for v in vantages), default=0.0),
            "vantages": vantages,
            "vantage_reference": reference,
            "vantage_verdict_on": p.verdict_on,
            "downtime_vantage": worst,
            "probe_refused": (self.probe.status().get("refused") or []) if isinstance(self.probe, ProbeFleet) else [],
            "transitions": [
                {"class": s["class"], "from": iso(self._wall(s["from"])), "to": iso(self._wall(s["to"]))}
                for s in tl.transitions(samples, gap, p.sustain_seconds, p.min_samples)
            ],
            "restore": restored,
            **self._system_summary(gap, samples),
            "failed_steps": failed_tests,
            # Calls the SDKs retried (outcome "ok") or gave up on ("failed"): which, how often, each error.
            "api_calls": [c.as_dict() for c in self.api_calls.calls()],
            "stopped_by": self.stopped_by,
            "notes": self.notes,
            "verdict": None,
        }
        # Failed for any reason drill.verdict names (the exit status says why from the same function); a
        # dry run proves the plan and the reads, never an objective: it must not read as "passed".
        summary["verdict"] = "failed" if verdict_reasons(summary) else ("dry-run" if self.dry_run else "passed")
        return summary

    def _system_summary(self, gap: float, samples: list[tl.Sample]) -> dict[str, Any]:
        """What only some systems have: the DR site's users, the DNS answers, the signed-in user.
        `samples`: the site's users at the reference vantage (as the summary's transitions)."""
        extra: dict[str, Any] = {}
        p = self.target.probe
        if self.dr_probe is not None:
            dr = self.dr_samples()
            stats = tl.summarize(dr, gap) if dr else {}
            extra["dr_site"] = {
                "url": self.target.dr_site.url if self.target.dr_site else None,
                "requests": len(dr),
                "seconds_by_class": {k: round(v, 3) for k, v in stats.get("seconds", {}).items()} if stats else {},
                "transitions": [{"class": s["class"], "from": iso(self._wall(s["from"])), "to": iso(self._wall(s["to"]))}
                                for s in tl.transitions(dr, gap, p.sustain_seconds, p.min_samples)],
            }
        if self.dns_watch is not None:
            extra["dns_answers"] = [{**c, "at": iso(c["at"])} for c in self.dns_watch.as_list()]
        if "sessions" in self.state:
            extra["sessions"] = self.state["sessions"]
        if self.dr_probe is not None:
            www = [t["class"] for t in tl.transitions(samples, gap, p.sustain_seconds, p.min_samples)]
            dr_served = any(t["class"] == "azure" for t in extra["dr_site"]["transitions"])
            # Users of www, with the DR site where it served (after the maintenance page): "aws → maintenance → (dr site) → aws".
            flow = []
            for c in www:
                flow.append(c)
                if c == "maintenance" and dr_served and "(dr site)" not in flow:
                    flow.append("(dr site)")
            extra["users_saw"] = " → ".join(flow)
        return extra

    def alarms_summary(self) -> dict[str, Any] | None:
        """summary.json's `alarms` (drill.detection.summary), or None when no alarm was watched."""
        from drill.detection import summary

        if not self.detections and not self.alarms_not_evaluated:
            return None
        o = self.target.objectives
        return summary(self.detections, self.clearings,
                       None if o.detection_seconds is None else round(self.target.scaled(o.detection_seconds), 3),
                       None if o.alarm_clear_seconds is None else round(self.target.scaled(o.alarm_clear_seconds), 3),
                       self.alarms_not_evaluated)

    def _wall(self, mono: float) -> float:
        return self.started.t + (mono - self.started.mono)

    def _write_evidence(self, summary: dict[str, Any]) -> None:
        ev = self.evidence
        from drivers.tracing import export_trace

        # One OpenTelemetry trace of the drill: into the evidence, and to OTLP when configured.
        trace = export_trace(self, summary, ev.path / "trace.otlp.json")
        if isinstance(summary.get("monitoring"), dict):
            summary["monitoring"]["otlp"] = trace
        ev.write_json("summary.json", summary)
        ev.copy_text(self.work / "timeline.jsonl", "timeline.jsonl")
        for extra in ("timeline-dr.jsonl", "timeline-sessions.jsonl", "api-calls.jsonl"):
            # the DR site's users, the signed-in user, the API calls the SDKs retried or gave up on
            if (self.work / extra).exists():
                ev.copy_text(self.work / extra, extra)
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

        from drill.attestation import signing_key
        from drill.finalize import finalize_bundle

        # timeline.png, report.md, report.html, Allure metadata, then the seal (manifest, signed statement) last.
        finalize_bundle(ev.path, self.allure_results, mask=ev.mask, signing_key=signing_key(self.target.evidence))
        ev.point_latest()
