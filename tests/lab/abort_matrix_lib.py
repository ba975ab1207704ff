"""The abort matrix: interrupt the full drill at a step with a signal and check the lab is back.

Shared by `benchmarks/abort_matrix.py` (the whole matrix, hours) and `tests/lab/test_abort_matrix.py`
(a representative subset in CI). One lab runs apart from the drills (as `drill lab up` does) so a
SIGKILLed drill leaves it up for `drill unwind`; drills run one after another against it:

  python -m pytest -m drill -p abort_at ... steps/cloudfront/test_phase1.py steps/cloudfront/test_phase2.py steps/cloudfront/test_phase3.py

with DRILL_ABORT_AT="<step>:<SIGNAL>[:<delay>]" (tests/lab/abort_at.py sends the signal and writes a
marker saying where it went). SIGINT and SIGTERM must unwind by themselves; SIGKILL is followed by
`drill unwind reports/work/<run-id>` (which must also release the killed run's drill lock).

A cell is "yes" only if the interrupt really happened at that step and, read from this process, the
lab is back to the state captured before the first drill: the drill's baseline snapshot
(steps/baseline.py: node group, CloudFront, ALB health, failover-stack resources, drill artefacts
in the primary database) unchanged; CloudFront deployed; every failover-stack resource absent (as
the lab's control endpoint sees it, "creating"/"failed" included); users get PetClinic from AWS;
the drill lock free; the lab's processes as before (no AKS pod, no Azure MySQL left running); no
process of the drill (probe, terraform) still alive. A cell whose drill failed before the step is
"not reached", never "yes".
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abort_at import SIGNALS, DrillStep, drill_steps
from lab_targets import target_without_alarms

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PETCLINIC_TITLE = "PetClinic :: a Spring Framework demonstration"
TAG_VAR = "DRILL_ABORT_MATRIX_TAG"  # in the environment of every process a cell starts (leak check)
SIGNAL_NAMES = tuple(SIGNALS)  # SIGINT, SIGTERM, SIGKILL
COLUMN = {"SIGINT": "SIGINT", "SIGTERM": "SIGTERM", "SIGKILL": "SIGKILL+unwind"}
TRANSIENT = {"mysqldump", "mariadb-dump"}  # the lab's backup job, every 10 s: not part of its steady state

Log = Callable[[str], None]


@dataclass(frozen=True)
class System:
    """Which system's drill the matrix interrupts: its features and step modules, target and lab."""

    name: str  # features/<name>/, steps/<name>/
    target: str  # targets/<target>.yaml
    topology: str  # lab/topologies/<topology>.py

    @property
    def drill_files(self) -> tuple[str, ...]:
        return tuple(str(p.relative_to(REPO)) for p in sorted((REPO / "steps" / self.name).glob("test_phase[0-9].py")))


SYSTEMS = {"cloudfront": System("cloudfront", "lab", "cloudfront"), "goupang": System("goupang", "lab-goupang", "goupang")}


@dataclass(frozen=True)
class Cell:
    step: int
    signal: str
    delay: float = 0.0  # seconds into the step (0: just before its function runs)

    @property
    def label(self) -> str:
        at = f"{self.step}" + (f"@{self.delay:g}s" if self.delay else "")
        return f"step {at} × {COLUMN[self.signal]}"


@dataclass
class CellResult:
    cell: Cell
    outcome: str  # "yes" | "NO" | "not reached"
    reasons: list[str] = field(default_factory=list)  # why not "yes"
    notes: list[str] = field(default_factory=list)  # observations that do not decide the cell
    seconds: float = 0.0  # wall time of the cell (drill, unwind, settling, checks), last attempt
    attempts: int = 1
    fired: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    workdir: Path | None = None


# -- the lab ---------------------------------------------------------------------------------------
class SharedLab:
    """One lab for many drills; restarted (fresh baseline) after a cell that left it dirty."""

    def __init__(self, root: Path, time_scale: float = 30.0, log: Log = print, keep: bool = False,
                 system: System = SYSTEMS["cloudfront"], alarms: bool = True) -> None:
        self.root = root
        self.system = system
        # What the cells' drills, unwinds and the observer read (--target): the system's target, or
        # without its alarms, whose clearing (≈ 40 s a cell) is not what interrupting a drill tests.
        self.target = system.target if alarms else str(target_without_alarms(system.target, root / "targets"))
        self.time_scale = time_scale
        self.log = log
        self.keep = keep  # keep the lab's workdir (databases, logs: ~100 MB) after it stops
        self.proc: Any = None
        self.endpoints: dict[str, Any] = {}
        self.endpoints_file: Path | None = None
        self.observer: Observer | None = None
        self.pristine: Snapshot | None = None
        self._n = 0

    def start(self) -> None:
        from lab.client import LabProcess

        self._n += 1
        workdir = self.root / f"lab{self._n}"
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.proc = LabProcess(self.time_scale, workdir=workdir, watch_parent=True, topology=self.system.topology)
        try:
            self.endpoints = self.proc.start()
            self.endpoints_file = workdir / "endpoints.json"
            self.observer = Observer(self.endpoints, self.root / f"observer{self._n}", self.proc.proc.pid, workdir,
                                     target=self.target)
            self.pristine = self.observer.steady_baseline()
        except BaseException:
            self.stop()
            raise
        self.log(f"lab up in {time.monotonic() - t0:.1f}s ({workdir})")

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stop()
            finally:
                if not self.keep:
                    shutil.rmtree(self.proc.workdir, ignore_errors=True)
                self.proc = None
                self.observer = None

    def restart(self) -> None:
        self.log("restarting the lab (the last cell left it dirty)")
        self.stop()
        self.start()

    def __enter__(self) -> SharedLab:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class Snapshot:
    control_plane: dict[str, Any]  # steps.baseline.capture
    processes: Counter  # the lab's processes by kind


class Observer:
    """Reads the lab's state from outside any drill (reads only)."""

    def __init__(self, endpoints: dict[str, Any], scratch: Path, lab_pid: int, lab_workdir: Path, target: str = "lab") -> None:
        from drill.config import load_target
        from drill.evidence import Masker
        from steps.runtime import DrillRun

        self.endpoints = endpoints
        self.target = load_target(target, endpoints)
        # A drill run that never starts: its reads are the drill's own baseline reads.
        self.run = DrillRun(self.target, scratch, Masker(), None, run_id="abort-matrix-observer")
        self.lab_pid = lab_pid
        self.lab_workdir = str(lab_workdir)

    def capture(self) -> dict[str, Any]:
        from steps.baseline import capture

        return capture(self.run)

    def processes(self) -> Counter:
        import psutil

        kinds: Counter = Counter()
        try:
            children = psutil.Process(self.lab_pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return kinds
        for p in children:
            try:
                if p.name() in TRANSIENT:
                    continue
                kinds[_kind(p.cmdline(), self.lab_workdir)] += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return kinds

    def snapshot(self) -> Snapshot:
        return Snapshot(self.capture(), self.processes())

    def steady_baseline(self, timeout: float = 90.0) -> Snapshot:
        """The lab at rest (users on AWS, ALB healthy): what every cell must come back to."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            ok = snap.control_plane.get("alb", {}).get("healthy_targets") and self.site_on_aws()
            if ok or time.monotonic() > deadline:
                if not ok:
                    raise RuntimeError(f"the lab never settled: {snap.control_plane}")
                return snap
            time.sleep(1.0)

    def site_on_aws(self, n: int = 3) -> bool:
        """`n` requests in a row answered with PetClinic from AWS (not Azure)."""
        import httpx

        for _ in range(n):
            try:
                url, headers = self._site_request()
                r = httpx.get(url, headers=headers, timeout=2)
            except Exception:  # noqa: BLE001 — no connection, or no DNS answer (ResolveError): not on AWS
                return False
            if r.status_code != 200 or PETCLINIC_TITLE not in r.text or r.headers.get("x-served-by") == "azure":
                return False
            time.sleep(0.2)
        return True

    def _site_request(self) -> tuple[str, dict[str, str]]:
        """The site's URL as users reach it: through the target's name server when it names one."""
        from urllib.parse import urlsplit

        url, resolver = self.endpoints["site_url"], self.target.probe.resolver
        if resolver is None:
            return url, {}
        from drivers.dns_resolver import CachingResolver

        parts = urlsplit(url)
        address = CachingResolver(resolver.nameserver, honour_ttl=False).query(parts.hostname or "")[0]
        return f"{parts.scheme}://{address}{':' + str(parts.port) if parts.port else ''}{parts.path or '/'}", {"Host": parts.netloc}

    def stack_resources(self) -> dict[str, str]:
        """The failover stack as the lab's control endpoint sees it (absent/creating/present/...)."""
        from lab.client import control

        return control(self.endpoints, "/stacks/2-failover", method="GET", timeout=10)["resources"]

    def cloudfront_status(self) -> str:
        dist = self.target.aws.cloudfront
        assert dist is not None, "only a target with a CloudFront distribution has its status read"
        cf = self.run.aws.client("cloudfront")
        return cf.get_distribution(Id=dist.distribution_id)["Distribution"]["Status"]

    def lock(self) -> dict[str, Any]:
        """The drill lock's lease and holder (free: lease status 'unlocked')."""
        from azure.core.exceptions import ResourceNotFoundError

        from drivers.actions import blob_service
        from drivers.safety import LOCK_CONTAINER

        blob = blob_service(self.target).get_blob_client(LOCK_CONTAINER, f"locks/{self.target.name}.lock")
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return {"status": "unlocked", "state": "none", "holder": {}}
        return {"status": props.lease.status, "state": props.lease.state, "holder": dict(props.metadata or {})}

    def problems(self, pristine: Snapshot, tag: str) -> list[str]:
        """Everything that differs from `pristine` (empty: restored)."""
        from steps.baseline import diff

        out: list[str] = []
        try:
            snap = self.snapshot()
        except Exception as e:  # noqa: BLE001 — any failure to read is a problem the matrix reports for this cell
            return [f"could not read the lab's state: {type(e).__name__}: {e}"]
        out += [f"baseline: {d}" for d in diff(pristine.control_plane, snap.control_plane)]
        if self.target.failover_stack is not None:
            try:
                left = {a: s for a, s in self.stack_resources().items() if s != "absent"}
                if left:
                    out.append(f"failover stack resources remain: {left}")
            except Exception as e:  # noqa: BLE001 — any failure to read is a problem the matrix reports for this cell
                out.append(f"could not read the failover stack: {type(e).__name__}: {e}")
        if self.target.aws.cloudfront is not None:
            try:
                status = self.cloudfront_status()
                if status != "Deployed":
                    out.append(f"CloudFront distribution is {status}, not Deployed")
            except Exception as e:  # noqa: BLE001 — any failure to read is a problem the matrix reports for this cell
                out.append(f"could not read CloudFront: {type(e).__name__}: {e}")
        if not self.site_on_aws():
            out.append("the site does not serve PetClinic from AWS")
        try:
            lk = self.lock()
            if lk["status"] != "unlocked":
                out.append(f"the drill lock is still held ({lk['state']}) by {lk['holder'] or 'unknown'}")
        except Exception as e:  # noqa: BLE001 — any failure to read is a problem the matrix reports for this cell
            out.append(f"could not read the drill lock: {type(e).__name__}: {e}")
        if snap.processes != pristine.processes:
            more = snap.processes - pristine.processes
            fewer = pristine.processes - snap.processes
            out.append("lab processes differ:" + "".join(f" +{n} {k}" for k, n in more.items())
                       + "".join(f" -{n} {k}" for k, n in fewer.items()))
        leaked = tagged_processes(tag)
        if leaked:
            out.append("processes of the drill still running: " + "; ".join(leaked))
        return out


def _kind(cmdline: list[str], lab_workdir: str) -> str:
    """What a lab process is, without what changes between instances (ports, pids)."""
    if not cmdline:
        return "?"
    exe = Path(cmdline[0]).name
    if exe.startswith("python"):
        args = cmdline[1:]
        return "python " + " ".join(args[:2] if args[:1] == ["-m"] else args[:1])
    conf = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--defaults-file=")), None)
    if conf:
        return f"{exe} {conf.replace(lab_workdir, '<lab>')}"
    if exe == "node" and len(cmdline) > 1:
        return f"node {Path(cmdline[1]).name}"
    return exe


def tagged_processes(tag: str) -> list[str]:
    """Live processes started by a cell (they carry its tag in their environment)."""
    import psutil

    found = []
    me = os.getpid()
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == me:
            continue
        try:
            if p.environ().get(TAG_VAR) == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(f"pid {p.pid} {' '.join(p.info['cmdline'] or [])[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def kill_tagged(tag: str) -> None:
    """Last resort so nothing of ours outlives the matrix."""
    import psutil

    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get(TAG_VAR) == tag:
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue


# -- one cell --------------------------------------------------------------------------------------


def drill_argv(reports: Path, endpoints_file: Path, system: System = SYSTEMS["cloudfront"], target: str | None = None) -> list[str]:
    """The full drill as `pytest -m drill` runs it, against a running lab, with the abort plugin."""
    return [sys.executable, "-m", "pytest", "-m", "drill", "-p", "no:cacheprovider", "-p", "abort_at",
            f"--target={target or system.target}", f"--reports-dir={reports}", f"--alluredir={reports / 'allure-results'}",
            f"--lab-endpoints={endpoints_file}", *system.drill_files]


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def run_cell(lab: SharedLab, cell: Cell, workdir: Path, log: Log = print,
             drill_timeout: float = 900.0, settle: float = 180.0) -> CellResult:
    """Run the full drill, interrupt it at `cell`, put back (unwind after SIGKILL), check the lab."""
    assert lab.observer is not None and lab.pristine is not None and lab.endpoints_file is not None
    workdir.mkdir(parents=True, exist_ok=True)
    reports, marker, steplog, output = workdir / "reports", workdir / "marker.json", workdir / "steps.jsonl", workdir / "drill.log"
    tag = uuid.uuid4().hex
    env = dict(os.environ, DRILL_ABORT_AT=f"{cell.step}:{cell.signal}:{cell.delay:g}", DRILL_ABORT_MARKER=str(marker),
               DRILL_ABORT_STEPLOG=str(steplog), DRILL_OPERATOR="abort-matrix", DRILL_ABORT_SYSTEM=lab.system.name,
               **{TAG_VAR: tag})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    result = CellResult(cell, "yes", workdir=workdir)
    t0, started = time.monotonic(), time.time()
    with open(output, "wb") as out:
        # Its own session: a Ctrl-C at our terminal is forwarded below, not delivered twice.
        argv = drill_argv(reports, lab.endpoints_file, lab.system, lab.target)
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=drill_timeout)
        except BaseException as e:  # timeout, or Ctrl-C of the matrix: let the drill unwind, then go
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=600)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if not isinstance(e, subprocess.TimeoutExpired):
                raise
            rc = proc.returncode
            result.reasons.append(f"the drill did not exit within {drill_timeout:.0f}s")
    result.timings["drill"] = round(time.monotonic() - t0, 1)
    fired = json.loads(marker.read_text()) if marker.exists() else None
    result.fired = fired
    if fired and fired.get("reached"):
        result.timings["signal_at"] = round(fired["fired_at"] - started, 1)
        result.timings["exit_after_signal"] = round(max(0.0, started + result.timings["drill"] - fired["fired_at"]), 1)
    reached = bool(fired and fired.get("reached"))
    if not fired:
        result.outcome = "not reached"
        result.reasons.append(f"the drill never reached step {cell.step} (exit {rc}): {_last_error(output)}")
    elif not fired.get("reached"):
        result.outcome = "not reached"
        result.reasons.append(fired.get("reason", "not reached"))
    elif fired.get("in_step") != cell.step or fired.get("step_finished"):
        result.outcome = "not reached"
        result.reasons.append(f"step {cell.step} was over before the delay of {cell.delay:g}s: the signal went "
                              f"{'in step ' + str(fired.get('in_step')) if fired.get('in_step') else 'between steps'}")
    run_dirs = sorted((reports / "work").glob("*")) if (reports / "work").exists() else []
    if reached and cell.signal == "SIGKILL":
        if rc != -signal.SIGKILL:
            result.reasons.append(f"the drill exited {rc}, not killed by SIGKILL")
        if not run_dirs:
            result.reasons.append("a killed drill left no run directory to unwind")
        for run_dir in run_dirs:
            t1 = time.monotonic()
            unwind = _drill_cli(["unwind", str(run_dir), "--target", lab.target, "--lab-endpoints", str(lab.endpoints_file)], env)
            result.timings["unwind"] = round(time.monotonic() - t1, 1)
            (workdir / "unwind.log").write_text(unwind.stdout + unwind.stderr)
            if unwind.returncode != 0:
                result.reasons.append(f"drill unwind exited {unwind.returncode}: {(unwind.stderr or unwind.stdout).strip()[-600:]}")
            again = _drill_cli(["unwind", str(run_dir), "--target", lab.target, "--lab-endpoints", str(lab.endpoints_file)], env)
            if again.returncode != 0 or "0 outstanding change(s)" not in again.stdout:
                result.reasons.append(f"a second drill unwind was not a no-op: {(again.stdout + again.stderr).strip()[-400:]}")
    elif reached:
        if rc == 0:
            result.reasons.append("the interrupted drill exited 0")
        summary = _summary(reports)
        if summary is None:
            result.reasons.append("the interrupted drill wrote no summary.json")
        else:
            r = summary.get("restore") or {}
            result.reasons += unwind_problems(summary)
            if r.get("site_class") not in (None, "aws"):
                result.reasons.append(f"the drill saw users on {r.get('site_class')!r} after its unwind")
            if summary.get("verdict") != "failed":
                result.notes.append(f"summary.json verdict is {summary.get('verdict')!r} for an interrupted drill")
            ignored = [n for n in summary.get("notes", []) if "received during the unwind" in n]
            result.notes += ignored
    # Whatever happened, the lab must be back (a not-reached drill unwinds after its failure too).
    t2 = time.monotonic()
    problems = settle_until_restored(lab, tag, settle)
    result.timings["settle"] = round(time.monotonic() - t2, 1)
    result.reasons += problems
    if problems or (reached and result.outcome == "yes" and result.reasons):
        result.outcome = "NO"
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def unwind_problems(summary: dict[str, Any]) -> list[str]:
    """What a drill's own summary says it failed to put back."""
    out = []
    if (summary.get("restore") or {}).get("failures"):
        out.append(f"the drill's unwind failed: {summary['restore']['failures']}")
    if summary.get("baseline_diff"):
        out.append(f"the drill reported a baseline diff: {summary['baseline_diff']}")
    return out


def settle_until_restored(lab: SharedLab, tag: str, settle: float) -> list[str]:
    """Read the lab from outside until it is as it was before the cell (the drill's last changes take
    their modeled time to settle), for at most `settle` seconds; what still differs then, each line a
    problem, and the cell's processes killed so the next cell starts clean."""
    assert lab.observer is not None and lab.pristine is not None, "the shared lab is not running"
    observer, pristine = lab.observer, lab.pristine
    deadline = time.monotonic() + settle
    problems = observer.problems(pristine, tag)
    while problems and time.monotonic() < deadline:
        time.sleep(2.0)
        problems = observer.problems(pristine, tag)
    if problems:
        kill_tagged(tag)
    return [f"after {settle:.0f}s: {p}" for p in problems]


def _drill_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill_cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def _summary(reports: Path) -> dict[str, Any] | None:
    path = reports / "evidence" / "latest" / "summary.json"
    try:
        return json.loads(path.resolve().read_text())
    except (OSError, ValueError):
        return None


def _last_error(output: Path) -> str:
    """The most telling line of a drill's output: its first failure or its last line."""
    lines = [ln for ln in _tail(output, 400).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("E   ", "FAILED", "ERROR")) or "refused to start" in ln:
            return ln.strip()[:300]
    return (lines[-1].strip() if lines else "(no output)")[:300]


# -- the matrix ------------------------------------------------------------------------------------
def run_matrix(cells: Iterable[Cell], root: Path | None = None, retries: int = 1, log: Log = print,
               lab: SharedLab | None = None, keep: bool = False, system: System = SYSTEMS["cloudfront"],
               alarms: bool = True) -> list[CellResult]:
    """Run `cells` one after another against one lab; a "not reached" cell is retried `retries` times.
    `alarms=False`: the system's target without its alarms (SharedLab)."""
    cells = list(cells)
    own_root = root is None
    root = Path(root or tempfile.mkdtemp(prefix="dr-drill-abort-matrix-"))
    own_lab = lab is None
    lab = lab or SharedLab(root, log=log, keep=keep, system=system, alarms=alarms)
    results: list[CellResult] = []
    try:
        if own_lab:
            lab.start()
        for n, cell in enumerate(cells, start=1):
            attempt = 0
            while True:
                attempt += 1
                log(f"[{n}/{len(cells)}] {cell.label} (attempt {attempt}) …")
                res = run_cell(lab, cell, root / f"cell{n}-{cell.step}-{cell.signal}-{attempt}", log=log)
                res.attempts = attempt
                log(f"[{n}/{len(cells)}] {cell.label}: {res.outcome} in {res.seconds:.0f}s "
                    f"{_timings(res)}" + "".join(f"\n    - {r}" for r in res.reasons))
                if res.outcome == "NO" and n < len(cells):
                    lab.restart()  # the next cells need a clean lab to mean anything
                if res.outcome != "not reached" or attempt > retries:
                    break
            results.append(res)
    finally:
        if own_lab:
            lab.stop()
        if own_root and not keep and all(r.outcome == "yes" for r in results) and len(results) == len(cells):
            shutil.rmtree(root, ignore_errors=True)
    return results


def _timings(res: CellResult) -> str:
    t = res.timings
    parts = [f"{k.replace('_', ' ')} {v:.0f}s" for k, v in t.items()]
    return f"({', '.join(parts)})" if parts else ""


def format_matrix(results: list[CellResult], steps: list[DrillStep] | None = None, width: int = 64) -> str:
    """The table step × signal → yes / NO / not reached, then the reasons for anything but yes."""
    steps = steps or drill_steps()
    by_index = {s.index: s for s in steps}
    signals = [s for s in SIGNAL_NAMES if any(r.cell.signal == s for r in results)]
    rows: dict[tuple[int, float], dict[str, CellResult]] = {}
    for r in results:
        rows.setdefault((r.cell.step, r.cell.delay), {})[r.cell.signal] = r
    head = f"{'step':<{width}}" + "".join(f"  {COLUMN[s]:<22}" for s in signals)
    lines = [head, "-" * len(head)]
    for (idx, delay), cells in sorted(rows.items()):
        st = by_index.get(idx)
        name = f"{idx:>2} P{st.phase} {st.keyword} {st.text}" if st else str(idx)
        if delay:
            name = f"{name[: width - 9]} (+{delay:g}s)"
        name = name if len(name) <= width else name[: width - 1] + "…"
        row = f"{name:<{width}}"
        for s in signals:
            got = cells.get(s)
            text = "-" if got is None else f"{got.outcome} ({got.seconds:.0f}s{', try ' + str(got.attempts) if got.attempts > 1 else ''})"
            row += f"  {text:<22}"
        lines.append(row)
    bad = [r for r in results if r.outcome != "yes"]
    if bad:
        lines.append("")
        lines.append("not restored / not reached:")
        for r in bad:
            lines.append(f"  {r.cell.label}: {r.outcome}")
            lines += [f"    - {x}" for x in r.reasons]
            if r.workdir is not None:
                lines.append(f"    (drill output: {r.workdir / 'drill.log'})")
    notes = [(r, n) for r in results for n in r.notes]
    if notes:
        lines.append("")
        lines.append("notes:")
        lines += [f"  {r.cell.label}: {n}" for r, n in notes]
    total = sum(r.seconds for r in results)
    counts = Counter(r.outcome for r in results)
    lines.append("")
    lines.append(f"{len(results)} cell(s): {counts.get('yes', 0)} restored, {counts.get('NO', 0)} NOT restored, "
                 f"{counts.get('not reached', 0)} not reached; {total / 60:.1f} min of drills")
    return "\n".join(lines)


def parse_cells(steps: str | None, signals: str | None, delay: float = 0.0, n_steps: int | None = None) -> list[Cell]:
    """--steps "3,12@5,20-22" × --signals "SIGINT,SIGKILL" (defaults: every step, every signal)."""
    n_steps = n_steps or len(drill_steps())
    chosen: list[tuple[int, float]] = []
    for part in (steps.split(",") if steps else [f"1-{n_steps}"]):
        part = part.strip()
        if not part:
            continue
        at, _, d = part.partition("@")
        step_delay = float(d.rstrip("s")) if d else delay
        lo, _, hi = at.partition("-")
        for i in range(int(lo), int(hi or lo) + 1):
            if not 1 <= i <= n_steps:
                raise ValueError(f"step {i} does not exist: the drill has steps 1..{n_steps}")
            chosen.append((i, step_delay))
    sigs = [s.strip().upper() for s in (signals.split(",") if signals else SIGNAL_NAMES) if s.strip()]
    sigs = [s if s.startswith("SIG") else f"SIG{s}" for s in sigs]
    for s in sigs:
        if s not in SIGNALS:
            raise ValueError(f"unknown signal {s!r}: SIGINT, SIGTERM or SIGKILL (SIGKILL is followed by drill unwind)")
    return [Cell(i, s, d) for i, d in chosen for s in sigs]
