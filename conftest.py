"""Root conftest: target selection, the embedded lab, and the drill run shared by all phases.

`pytest -m drill` runs the drill against `--target` (default: the lab, started here once per
session and stopped at the end). SIGTERM is turned into the same clean stop as Ctrl-C so the
rollback ledger always unwinds, and SIGINT is obeyed even where it was inherited as ignored.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drill.config import ConfigError, Target, load_target, read_raw, require_objectives, resolve_path
from drill.evidence import Masker

SECRET_KEY = re.compile(r"password|secret|key|token|connection_string", re.I)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _attached_endpoints(config: pytest.Config) -> dict[str, Any] | None:
    """The endpoints of a lab given with --lab-endpoints (or DRILL_LAB_ENDPOINTS), if any."""
    attached = config.getoption("--lab-endpoints") or os.environ.get("DRILL_LAB_ENDPOINTS")
    return json.loads(Path(attached).read_text()) if attached else None


def pytest_configure(config: pytest.Config) -> None:
    # A drill stopped by SIGTERM (CI cancel, kill) must unwind like Ctrl-C does.
    signal.signal(signal.SIGTERM, _terminate)
    # A drill started as a background job of a non-interactive shell (`pytest -m drill &` in a
    # script) inherits SIGINT ignored, and Python then installs no Ctrl-C handler: `kill -INT` and
    # the stop-condition watchdog (which interrupts the run with SIGINT) would do nothing.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.stash[_FAILED] = []
    target = config.getoption("--target")
    try:
        loaded = load_target(target)  # fail before anything starts or changes
    except ConfigError as e:
        raise pytest.UsageError(f"invalid target: {e}") from None
    from drill.attestation import SigningKeyError, signing_key

    try:
        signing_key(loaded.evidence)  # a drill whose evidence cannot be signed does not start
    except SigningKeyError as e:
        raise pytest.UsageError(f"invalid target: {e}") from None
    config.pluginmanager.register(_SystemFilter(loaded.system), "dr-drill-system-filter")


def item_system(item: pytest.Item) -> str | None:
    """The system a scenario belongs to: the folder of its step module under steps/ (steps/<system>/),
    None for anything else (the harness's own tests, shared modules)."""
    try:
        rel = Path(item.path).relative_to(item.config.rootpath / "steps")
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 else None


class _SystemFilter:
    """A target drills one system: the other systems' scenarios are deselected before anything starts.

    Runs after -m has chosen (trylast), so a line is printed only when a selected drill or readiness
    scenario belongs to another system than the target's."""

    def __init__(self, system: str) -> None:
        self.system = system

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        other = [it for it in items if item_system(it) not in (None, self.system)]
        if not other:
            return
        items[:] = [it for it in items if item_system(it) in (None, self.system)]
        config.hook.pytest_deselected(items=other)
        systems = ", ".join(sorted({str(item_system(it)) for it in other}))
        tr = config.pluginmanager.get_plugin("terminalreporter")
        line = (f"dr-drill: target {config.getoption('--target')!r} is system {self.system!r}: "
                f"deselected {len(other)} scenario(s) of other systems ({systems})")
        if tr is not None:
            tr.write_line(line)


_FAILED = pytest.StashKey[list]()
_APPLIES_STACK = pytest.StashKey[bool]()
PHASES = ("phase1", "phase2", "phase3")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the drill's scenarios are chosen (after -m), before any fixture (or lab) starts.

    Every objective a selected phase compares must be set in the target, or nothing starts (the
    target itself was validated in pytest_configure): no silent defaults. A target with a `lab:` section
    whose endpoints are not the lab's is production in disguise:
    refused here without the opt-in, before a lab is started for it (the guard checks again with
    the real endpoints once the lab runs).
    """
    drill = [it for it in session.items if it.get_closest_marker("drill") is not None]
    # Phase 2 (and 3, which continues it) apply the failover stack: it is checked before the first change.
    session.config.stash[_APPLIES_STACK] = any((_phase(it) or 0) >= 1 for it in drill)
    if not drill:
        return
    from drivers.safety import Refused, refuse_unless_lab, stand_in_endpoints

    name = session.config.getoption("--target")
    target = load_target(name)
    phases = {PHASES[i] for it in drill if (i := _phase(it)) is not None}
    try:
        require_objectives(target, sorted(phases))
    except ConfigError as e:
        raise pytest.UsageError(f"invalid target: {e}") from None
    if not target.wants_lab:
        return
    attached = _attached_endpoints(session.config)
    try:
        refuse_unless_lab(load_target(name, attached) if attached else target, attached or stand_in_endpoints())
    except Refused as e:
        pytest.exit(f"dr-drill refused to start: {e}", returncode=3)


def _phase(item: pytest.Item) -> int | None:
    for i, name in enumerate(PHASES):
        if item.get_closest_marker(name) is not None:
            return i
    return None


HARNESS_TESTS = Path(__file__).resolve().parent / "tests"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`pytest -m drill` (or readiness) selects scenarios, all under steps/: the harness's own tests
    are not imported just to be deselected (drill/selection.py)."""
    from drill.selection import selects_scenarios_only

    # What is inside tests/: pytest never asks about a directory it was given (testpaths).
    if collection_path.is_relative_to(HARNESS_TESTS) and selects_scenarios_only(config.option.markexpr or ""):
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Phases build on each other: selecting phase N selects phases 1..N too, in order.

    `-m "drill and phase2"` runs Phase 1 then Phase 2 (each later phase's mark is added to the
    earlier phases' scenarios before -m deselects). A phase picked by file path alone runs alone,
    and its first Given fails clearly because the earlier phase's end state is missing.
    """
    for item in items:
        idx = _phase(item)
        if idx is not None:
            for later in PHASES[idx + 1 :]:
                item.add_marker(getattr(pytest.mark, later))
    # Stable sort: drill phases in phase order, everything else where it was.
    order = {id(it): (-1 if (p := _phase(it)) is None else p, n) for n, it in enumerate(items)}
    items.sort(key=lambda it: (0, order[id(it)][1]) if order[id(it)][0] < 0 else (1, order[id(it)][0], order[id(it)][1]))


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    # Called before the session's fixtures are torn down, so the drill run's summary sees it: an
    # interrupted drill is never "passed", even if every phase it got through met its objective.
    _INTERRUPTS.append(f"interrupted: {str(excinfo.value) or 'SIGINT (Ctrl-C or a stop condition)'}")


_INTERRUPTS: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and item.get_closest_marker("drill") is not None:
        item.config.stash[_FAILED].append(f"{item.nodeid} ({report.when})")
    if call.when == "call" and item.get_closest_marker("drill") is not None and _RUN in item.config.stash:
        _record_measured(item)
    return report


_RUN = pytest.StashKey[Any]()
_STEP_STARTED: dict[int, float] = {}


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any) -> None:
    _STEP_STARTED[id(step)] = time.time()


def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any,
                          step_func_args: Any) -> None:
    _record_step(request, scenario, step, "passed")


def pytest_bdd_step_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any,
                          step_func_args: Any, exception: BaseException) -> None:
    _record_step(request, scenario, step, "failed", f"{type(exception).__name__}: {str(exception)[:300]}")


def _record_step(request: pytest.FixtureRequest, scenario: Any, step: Any, status: str, error: str | None = None) -> None:
    """Each executed drill step, with its phase and times: the drill's OpenTelemetry trace (drivers.tracing)."""
    started = _STEP_STARTED.pop(id(step), time.time())
    run = request.config.stash.get(_RUN, None)
    if run is None or request.node.get_closest_marker("drill") is None:
        return
    idx = _phase(request.node)
    run.steps.append({"phase": PHASES[idx] if idx is not None else "run", "scenario": scenario.name,
                      "step": f"{step.keyword} {step.name}", "start": started, "end": time.time(), "status": status,
                      "error": None if error is None else run.evidence.mask(error)})
_ATTRIBUTED = pytest.StashKey[set]()


def _record_measured(item: pytest.Item) -> None:
    """The figures this scenario measured, as JUnit properties of its <testcase> (--junitxml)."""
    from dataclasses import asdict

    from drill.junit_properties import phase_properties, rpo_properties

    run = item.config.stash[_RUN]
    seen = item.config.stash.setdefault(_ATTRIBUTED, set())
    for phase in run.phases:
        if phase.name not in seen:
            seen.add(phase.name)
            item.user_properties.extend(phase_properties(asdict(phase)))
    if run.rpo is not None and "rpo" not in seen:
        seen.add("rpo")
        item.user_properties.extend(rpo_properties(run.rpo))


@pytest.fixture(scope="session")
def reports_dir(pytestconfig: pytest.Config) -> Path:
    opt = pytestconfig.getoption("--reports-dir")
    path = Path(opt) if opt else pytestconfig.rootpath / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Iterator[dict[str, Any]]:
    """The embedded lab's endpoints (started on first use, stopped at session end)."""
    from lab.client import LabProcess

    attached = _attached_endpoints(pytestconfig)
    if attached is not None:
        yield attached
        return
    raw = read_raw(resolve_path(pytestconfig.getoption("--target")))
    scale = float(raw.get("time_scale", 30))
    proc = LabProcess(scale, topology=str((raw.get("lab") or {}).get("topology", "cloudfront")))
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    name = request.config.getoption("--target")
    if load_target(name).wants_lab:
        return load_target(name, request.getfixturevalue("lab"))
    return load_target(name)


@pytest.fixture(scope="session")
def drill_run(request: pytest.FixtureRequest, target: Target, reports_dir: Path) -> Iterator[Any]:
    """The one drill run of this session: probe from first use to the end, ledger, evidence."""
    from steps.runtime import DrillRun

    masker = Masker(target.secret_values())
    lab_events = None
    # The lab this run started or attached (--lab-endpoints): the guard compares every endpoint with it.
    endpoints = request.getfixturevalue("lab") if target.wants_lab or _attached_endpoints(request.config) else None
    if endpoints is not None:
        masker.add(str(v) for k, v in endpoints.items() if SECRET_KEY.search(k))
        if target.wants_lab:
            lab_events = Path(endpoints["events_path"])
    # Before anything changes: the production guard, the failover stack (absent, its data tier
    # targets sound), then one drill per target (a blob lease).
    from drill.evidence import new_run_id
    from drivers.safety import DrillLock, Refused, check_production_guard

    run_id = new_run_id()
    dry_run = bool(request.config.getoption("--dry-run"))
    stack = None
    try:
        verified = check_production_guard(target, lab_endpoints=endpoints)
        if request.config.stash.get(_APPLIES_STACK, False) and target.failover_stack is not None:
            stack = _stack_preflight(target)
        # Would the plan work on the real clouds? Checked before the first change (and the lock).
        from steps import preflight

        findings = preflight.run(target, _selected_phases(request.session.items))
        if findings and not dry_run:
            raise Refused("preflight found what the real clouds would refuse (`pytest -m drill --dry-run` lists it):\n  "
                          + "\n  ".join(f.detail for f in findings))
        # The team's signals (stop.alarms, stop.alertmanager) must exist and be quiet before the first change.
        from drivers.aws import Aws
        from drivers.stop_signals import check_before_start

        signal_notes = check_before_start(target, Aws(target.aws))
        lock = DrillLock(target) if target.azure is not None else None
        # A dry run changes nothing, so it takes no lock (a lock is a write); it says who holds one.
        other = lock.holder() if lock and dry_run else None
        holder = lock.acquire(run_id) if lock and not dry_run else None
    except Refused as e:
        pytest.exit(f"dr-drill refused to start: {e}", returncode=3)
    if dry_run:
        lock = None
    run = DrillRun(target, reports_dir, masker, lab_events, run_id=run_id, dry_run=dry_run)
    run.preflight = findings
    run.notes.extend(verified)
    run.notes.extend(signal_notes)
    if masker.too_short_for_text():
        run.notes.append(f"{masker.too_short_for_text()} secret(s) shorter than {Masker.MIN_IN_TEXT} characters: masked "
                         "wherever they are a whole value, not inside free text (that would spell them out)")
    if stack is not None:
        run.adopt_terraform(*stack)
    if holder is not None:
        run.notes.append(f"drill lock held by {holder.who} since {holder.since}")
    if dry_run:
        run.notes.append("dry run: no drill lock taken" + (
            f"; a drill lock is held by {other.who} since {other.since} (run {other.run_id})" if other is not None else ""))
    from steps.conftest import _MASK

    _MASK[:] = [masker]  # step attachments are masked like the evidence
    alluredir = request.config.getoption("--alluredir", None)
    run.allure_results = Path(alluredir) if alluredir else None
    request.config.stash[_RUN] = run
    suite_property = request.getfixturevalue("record_testsuite_property")  # --junitxml; a no-op without it
    try:
        yield run
    finally:
        try:
            summary = run.finish(request.config.stash[_FAILED] + _INTERRUPTS)
        finally:
            if lock is not None:
                lock.release()
        request.config.stash[_SUMMARY] = (run, summary)
        from drill.junit_properties import run_properties

        for name, value in run_properties(summary):
            suite_property(name, value)
        chart = run.evidence.path / "timeline.png"
        import allure

        if chart.exists():  # lands on the last scenario's Allure result
            allure.attach.file(str(chart), name="timeline: what users saw", attachment_type=allure.attachment_type.PNG)
        request.config.stash[_HISTORY] = _history(run, reports_dir)
        if request.config.stash[_HISTORY].get("chart"):
            allure.attach.file(request.config.stash[_HISTORY]["chart"], name=f"history: every drill of {target.name}",
                               attachment_type=allure.attachment_type.PNG)
        r = summary["restore"]
        if r["failures"] or r["site_class"] not in (None, "aws") or summary["baseline_diff"]:
            pytest.fail(f"the drill did not put everything back: {r}", pytrace=False)
        from drill.verdict import verdict_reasons

        if summary["verdict"] == "failed" and not request.config.stash[_FAILED]:
            # Judged after the last step (a Phase-1-only run's alarms, a late RTO re-judgement): the exit
            # status must say what summary.json says, or CI would pass a failed drill.
            pytest.fail(f"the drill's verdict is FAILED though every step passed: {'; '.join(verdict_reasons(summary))}",
                        pytrace=False)


_SUMMARY = pytest.StashKey[tuple]()
_HISTORY = pytest.StashKey[dict]()


def _history(run: Any, reports_dir: Path) -> dict[str, Any]:
    """This run among every sealed drill of its target: its regressions, the staleness line, the chart
    (reports/history/<target>.png). Never fails the drill: a problem here is a line in the summary."""
    try:
        from drill import history
        from drill.history_chart import render_history

        t = history.Thresholds.from_config(run.target.evidence)
        runs = history.load(run.evidence.root, run.target.name)
        regs = history.regressions(runs, t)
        chart = render_history(runs, regs, reports_dir / "history" / f"{run.target.name}.png",
                               title=f"dr-drill history: {run.target.name} ({len(runs)} runs)")
        return {"runs": len(runs), "regressions": [g.sentence() for g in regs if g.run_id == run.run_id],
                "staleness": history.staleness(runs, t).sentence(), "chart": str(chart)}
    except Exception as e:  # noqa: BLE001 — the evidence is sealed already; the history view is a convenience
        return {"error": f"history not drawn: {type(e).__name__}: {e}"}


def _selected_phases(items: list[pytest.Item]) -> list[str]:
    """The drill phases this session runs (each item's own phase: its first phase mark)."""
    return sorted({PHASES[i] for i in (_phase(it) for it in items) if i is not None})


def pytest_sessionstart(session: pytest.Session) -> None:
    # One report, one run: the previous session's Allure results leave --alluredir before this one
    # writes any (an unreported drill's wait in reports/allure-pending/ for `drill report`'s Trend).
    alluredir = session.config.getoption("--alluredir", None)
    if alluredir:
        from drill.allure_meta import start_session

        start_session(Path(alluredir))


def _stack_preflight(target: Target) -> tuple[Any, Any]:
    """`terraform init`, then refuse unless the failover stack is absent and the data-tier targets
    cover the data tier (drivers.terraform_stack.preflight). Reads only."""
    from drivers.provisioner import ProvisionerError
    from drivers.safety import Refused
    from drivers.terraform_stack import StackError, preflight, stack_terraform

    try:
        tf = stack_terraform(target)
        assert target.failover_stack is not None  # stack_terraform() refused a target without one
        return tf, preflight(tf, target.failover_stack.data_tier_targets)
    except (StackError, ProvisionerError) as e:
        raise Refused(str(e).strip().replace("\n", " ")) from None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Safety net: step attachments and parameters are written by Allure unmasked; scrub them.
    alluredir = session.config.getoption("--alluredir", None)
    if alluredir and _SUMMARY in session.config.stash:
        from drill.allure_meta import scrub_results

        run, _ = session.config.stash[_SUMMARY]
        scrub_results(Path(alluredir), run.evidence.mask)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    # Printed here, not in the fixture's teardown: fd-level capture would swallow it there.
    if _SUMMARY in config.stash:
        _print_summary(terminalreporter, *config.stash[_SUMMARY])


def _print_summary(tr: Any, run: Any, s: dict[str, Any]) -> None:
    tr.write_sep("=", f"dr-drill {s['run_id']} on {s['target']}: {s['verdict'].upper()}")
    if s.get("dry_run"):
        tr.write_line("  DRY RUN: nothing was changed. The plan, in order, each change with its inverse:")
        for p in s.get("plan") or []:
            tr.write_line(f"  {p['id']:>3}. {p['change']}")
            tr.write_line(f"       undo: {p['inverse']}")
        tr.write_line(f"  not evaluated (effects of changes not made): {len(s.get('not_evaluated') or [])} check(s)")
    if s.get("preflight") is not None:
        found = s["preflight"]
        tr.write_line(f"  preflight: {'no finding' if not found else f'{len(found)} finding(s): the plan would fail on the real clouds'}")
        for f in found:
            tr.write_line(f"    - {f['detail']}")
    for ph in s["phases"]:
        rto = "not reached" if ph["rto_seconds"] is None else f"{ph['rto_seconds']:.2f}s"
        d = ph.get("detail") or {}
        split = (f": {d['modeled_seconds']:.2f}s modeled ×{s['time_scale']:g} + {d['unscaled_seconds']:.2f}s unscaled"
                 if "modeled_seconds" in d else "")
        real = "unknown" if ph["rto_real_equivalent_seconds"] is None else f"{ph['rto_real_equivalent_seconds']:g}s"
        tr.write_line(
            f"  {ph['name']:<11} RTO {rto:>8} / target {ph['rto_target_seconds']:.2f}s"
            f"  (real-world ≈ {real} / {ph['rto_target_real_seconds']:g}s{split})"
            f"  {'PASS' if ph['passed'] else 'FAIL'}"
        )
    from drill.vantages import summary_lines

    for line in summary_lines(s):  # more than one vantage: each one's RTO, the spread, clocks, gaps
        tr.write_line(line)
    flow = " → ".join(t["class"] for t in s["transitions"]) or "(no sustained state)"
    tr.write_line(f"  users saw: {flow}")
    tr.write_line(f"  downtime (errors) {s['downtime_seconds']:.2f}s over {s['requests']} probe requests")
    rpo = s.get("rpo") or {}
    if s.get("rpo_seconds") is not None:
        worst = rpo.get("worst_case_seconds")
        bound = "" if worst is None else (
            f"; schedule's worst case ≤ {worst:.2f}s{'' if rpo.get('worst_case_within_target') else ' (over target)'}")
        tr.write_line(f"  RPO {s['rpo_seconds']:.2f}s / target {s['rpo_target_seconds']:.2f}s (backup completed before the "
                      f"fault: {rpo.get('backup', '?').rsplit('/', 1)[-1]}){bound}{'  ERROR' if rpo.get('error') else ''}")
    tr.write_line(f"  degraded (maintenance) {s['degraded_seconds']:.2f}s; on Azure {s['azure_seconds']:.2f}s; "
                  f"drill took {s['duration_seconds']:.1f}s")
    alarms = s.get("alarms") or {}
    clears = {c["alarm"]: c for c in alarms.get("clear") or []}
    for phase, dets in (alarms.get("phases") or {}).items():
        for d in dets:
            fired = "never" if d["detection_seconds"] is None else f"{d['detection_seconds']:.2f}s"
            told = "never" if d["notification_seconds"] is None else f"{d['notification_seconds']:.2f}s"
            c = clears.get(d["alarm"])
            ok = "" if c is None else (f"; OK {c['clear_seconds']:+.2f}s from the restore" if c["clear_seconds"] is not None
                                       else f"; still {c['state_now']}")
            verdict = "PASS" if d["passed"] and (c is None or c["passed"]) else "FAIL"
            tr.write_line(f"  alarm {d['alarm']:<20} ({phase}) ALARM {fired}, notified {told} / target "
                          f"{d['objective_seconds']:.2f}s{ok}  {verdict}")
    for x in alarms.get("not_evaluated") or []:
        tr.write_line(f"  alarm {x['alarm']:<20} ({x['phase']}) not evaluated: {x['why']}")
    if s.get("stopped_by"):
        tr.write_line(f"  stopped by: {s['stopped_by']}")
    mon = s.get("monitoring") or {}
    for where, r in mon.items():
        tr.write_line(f"  results → {where}: {r}")
    if s.get("outage_write"):
        writes = "; ".join(f"{phase} ({w.get('users_saw')}) {w.get('status')} {'saved' if w.get('accepted') else 'refused'}"
                           for phase, w in s["outage_write"].items())
        tr.write_line(f"  a user's write (POST /owners/new): {writes}")
    if s.get("failback_data_loss"):
        tr.write_line(f"  lost on failback (written on Azure, not replicated): {s['failback_data_loss']['rows']}")
    for d in s.get("runbook_deviations") or []:
        tr.write_line(f"  runbook {d['step']} corrected: {d['refused_because']}; the drill {d['drill_did']}")
    calls = s.get("api_calls") or []
    if calls:
        failed = [c for c in calls if c["outcome"] == "failed"]
        tr.write_line(f"  API calls: {len(calls) - len(failed)} retried and recovered, {len(failed)} failed after retries")
        for c in failed + [c for c in calls if c["outcome"] != "failed"][:5]:
            tr.write_line(f"    - {c['sdk']} {c['service']} {c['operation']}: {c['outcome']} after {c['attempts']} "
                          f"attempt(s) ({', '.join(c['errors'])})")
    r = s["restore"]
    tr.write_line(f"  rollback: {r['unwound']} change(s) undone, failures: {len(r['failures'])}, site back on {r['site_class']}")
    diff = s.get("baseline_diff") or []
    tr.write_line(f"  baseline: {'unchanged' if not diff else f'{len(diff)} difference(s)'}")
    for d in diff:
        tr.write_line(f"    - {d}")
    tr.write_line(f"  evidence: {run.evidence.path}")
    h = tr.config.stash.get(_HISTORY, {})
    if h.get("error"):
        tr.write_line(f"  history: {h['error']}")
    elif h:
        tr.write_line(f"  history: {h['runs']} sealed run(s) of {s['target']}; chart {h['chart']}")
        for line in h["regressions"]:
            tr.write_line(f"    REGRESSION {line}")
        tr.write_line(f"    {h['staleness']}")
