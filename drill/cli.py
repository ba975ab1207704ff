"""`drill`: what is not a test run. `pytest -m drill` runs drills; this runs the rest.

  drill lab up [--time-scale N]                 start the lab alone, print its site URL; Ctrl-C stops it
  drill probe URL --duration S --out FILE       probe any site; JSON summary on the last line
  drill verify BUNDLE_DIR                       check an evidence bundle against its manifest.json
  drill report [--results DIR] [--out DIR]      the Allure HTML report, offline, one file (Allure 2, Java)
  drill unwind LEDGER [--target T]              undo what a killed drill left (its persisted ledger), release its lock
  drill unlock [--target T] [--break]           who holds a target's drill lock; break a stale one

Subcommands import drivers and the lab lazily, so the core stays free of SDK imports.
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drill.config import Target


def _lab_up(args: argparse.Namespace) -> int:
    from drill.config import read_raw, resolve_path
    from lab.client import LabProcess

    scale = args.time_scale or float(read_raw(resolve_path("lab")).get("time_scale", 30))
    lab = LabProcess(scale, workdir=args.workdir, watch_parent=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"starting the lab (time scale {scale:g}) in {lab.workdir} …", flush=True)
    try:
        ep = lab.start()
        print(f"site:        {ep['site_url']}")
        print(f"ALB:         {ep['alb_url']}")
        print(f"maintenance: {ep['blob_web_url']}")
        print(f"AWS API:     {ep['aws_endpoint']}  (moto; credentials in {lab.workdir / 'endpoints.json'})")
        print(f"events:      {ep['events_path']}")
        print("Ctrl-C stops the lab.", flush=True)
        stop.wait()
    finally:
        print("stopping the lab …", flush=True)
        lab.stop()
    return 0


def _probe(args: argparse.Namespace) -> int:
    from drill.config import load_target
    from drivers.probe import run_standalone

    rules = None
    if args.target:
        t = load_target(args.target)
        rules = t.probe.rules
    summary = run_standalone(
        args.url, args.duration, Path(args.out), rate_per_second=args.rate,
        users=args.users, timeout_seconds=args.timeout, rules=rules,
    )
    print(json.dumps(summary, default=str))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from drill.bundle import MANIFEST_NAME, load_manifest, verify

    bundle = Path(args.bundle)
    problems = verify(bundle)
    for line in problems:
        print(line)
    if problems:
        print(f"drill verify: {bundle} is NOT intact: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    files, _ = load_manifest(bundle)
    print(f"intact: {len(files or {})} file(s) match {bundle / MANIFEST_NAME} (sha256)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from drill.allure_meta import ReportError, generate_report

    results, out = Path(args.results), Path(args.out)
    summary = environment = None
    latest = Path(args.evidence)
    try:  # environment/executor for results a drill did not annotate (kept when they are there)
        summary = json.loads((latest / "summary.json").read_text(encoding="utf-8"))
        environment = json.loads((latest / "environment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    try:
        index = generate_report(results, out, summary=summary, environment=environment)
    except ReportError as e:
        print(f"drill report: {e}", file=sys.stderr)
        return 1
    print(f"report: {index}")
    return 0


def _unwind(args: argparse.Namespace) -> int:
    """Carry out what a killed drill left in its persisted ledger, newest first."""
    from drill.config import load_target
    from drill.ledger import Ledger
    from drivers.actions import executor

    ledger_path = Path(args.ledger)
    # A run's work directory with no ledger yet: the drill was killed before recording its first change.
    killed_before_first_change = ledger_path.is_dir() and RUN_ID.match(ledger_path.name) is not None
    if ledger_path.is_dir():
        ledger_path = ledger_path / "ledger.json"
    if not ledger_path.exists() and not killed_before_first_change:
        print(f"drill: error: no ledger at {ledger_path}", file=sys.stderr)
        return 2
    endpoints = None
    if args.lab_endpoints:
        endpoints = json.loads(Path(args.lab_endpoints).read_text())
    target = load_target(args.target, endpoints)
    if target.wants_lab and endpoints is None:
        print("drill: error: a lab target needs --lab-endpoints (the running lab's endpoints.json)", file=sys.stderr)
        return 2
    ledger = Ledger.load(ledger_path) if ledger_path.exists() else Ledger()
    todo = ledger.outstanding()
    print(f"{len(todo)} outstanding change(s) in {ledger_path}" + ("" if ledger_path.exists() else " (none recorded)"))
    for e in reversed(todo):
        print(f"  undo #{e.id}: {e.inverse.description}")
    failures = ledger.unwind(executor(target, busy_timeout=target.scaled(900.0) + 30.0))
    for entry in todo:
        if entry.note:  # settled by its container's inverse (e.g. removed with the failover stack)
            print(f"  #{entry.id}: {entry.note}")
    for entry, err in failures:
        print(f"FAILED #{entry.id} {entry.inverse.description}: {err}", file=sys.stderr)
    print(f"unwound {len(todo) - len(failures)} of {len(todo)}; {len(failures)} failure(s)")
    _release_lock_of(target, ledger_path.parent.name, unwound=not failures)
    return 1 if failures else 0


# reports/work/<run-id>/ledger.json: the run id names the drill whose lock a killed drill left held.
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def _release_lock_of(target: Target, run_id: str, unwound: bool) -> None:
    """After unwinding a killed drill, release the drill lock it left held (its lease never expires).

    Only that run's lock, and only once everything was put back: a lock held by another run is left
    alone, and a target that is not back keeps its lock so that no drill snapshots it as a baseline.
    """
    from drivers.safety import DrillLock

    if target.azure is None:
        return
    if not RUN_ID.match(run_id):
        print(f"drill lock: left alone (the ledger is not in a run directory reports/work/<run-id>/: {run_id!r})")
        return
    name = target.name
    try:
        lock = DrillLock(target)
        if not unwound:
            holder = lock.holder()
            if holder is not None and holder.run_id == run_id:
                print(f"drill lock: kept (held by run {run_id}): the unwind failed, so the target is not back; "
                      f"once it is, drill unlock --target {name} --break")
            return
        found, holder = lock.release_if_held_by(run_id)
    except Exception as e:  # the unwind's outcome stands; the lock can still be broken by hand
        print(f"drill lock: could not be checked ({type(e).__name__}: {e}); see drill unlock --target {name}")
        return
    if found == "released":
        print(f"drill lock: released (held by run {run_id}, {holder.who} since {holder.since})")  # type: ignore[union-attr]
    elif found == "other":
        print(f"drill lock: held by another run ({holder.run_id}, {holder.who} since {holder.since}): left alone")  # type: ignore[union-attr]
    elif found == "anonymous":
        print(f"drill lock: leased but naming no holder: left alone (drill unlock --target {name} --break)")
    else:
        print("drill lock: not held")


def _unlock(args: argparse.Namespace) -> int:
    """Show who holds a target's drill lock; with --break, break a stale one (a killed drill's)."""
    from drill.config import load_target
    from drivers.safety import DrillLock

    endpoints = json.loads(Path(args.lab_endpoints).read_text()) if args.lab_endpoints else None
    lock = DrillLock(load_target(args.target, endpoints))
    holder = lock.holder()
    print(f"held by {holder.who} since {holder.since} (run {holder.run_id})" if holder else "not held")
    if args.break_lock:
        lock.break_lock()
        print("lock broken")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drill", description="dr-drill: disaster-recovery drill harness")
    sub = p.add_subparsers(dest="cmd", required=True)

    lab = sub.add_parser("lab", help="the embedded lab").add_subparsers(dest="lab_cmd", required=True)
    up = lab.add_parser("up", help="start the lab alone and print its public site URL (Ctrl-C stops it)")
    up.add_argument("--time-scale", type=float, default=None, help="default: targets/lab.yaml's")
    up.add_argument("--workdir", type=Path, default=None)
    up.set_defaults(func=_lab_up)

    pr = sub.add_parser("probe", help="probe a site standalone: one JSON line per request, summary on stdout")
    pr.add_argument("url")
    pr.add_argument("--duration", type=float, required=True, help="seconds")
    pr.add_argument("--out", required=True, help="timeline file (JSONL)")
    pr.add_argument("--rate", type=float, default=10.0, help="requests per second (default 10)")
    pr.add_argument("--users", type=int, default=4, help="concurrent probe users (default 4)")
    pr.add_argument("--timeout", type=float, default=2.0, help="request timeout, seconds (default 2)")
    pr.add_argument("--target", default=None, help="use this target file's classification rules")
    pr.set_defaults(func=_probe)

    ve = sub.add_parser("verify", help="check an evidence bundle against its manifest.json (exit 0: intact)")
    ve.add_argument("bundle", metavar="BUNDLE_DIR", help="e.g. reports/evidence/latest")
    ve.set_defaults(func=_verify)

    rp = sub.add_parser("report", help="generate the Allure HTML report offline (one index.html)")
    rp.add_argument("--results", default="reports/allure-results", help="Allure results (default: %(default)s)")
    rp.add_argument("--out", default="reports/allure-report", help="report directory (default: %(default)s)")
    rp.add_argument("--evidence", default="reports/evidence/latest",
                    help="bundle whose summary fills in environment/executor when the results lack them (default: %(default)s)")
    rp.set_defaults(func=_report)
    uw = sub.add_parser("unwind", help="undo what a killed drill left, from its persisted rollback ledger")
    uw.add_argument("ledger", help="reports/work/<run-id>/ledger.json (or that directory); the run's drill lock is released "
                                  "once everything is undone")
    uw.add_argument("--target", default="lab", help="the target the drill ran against (default: lab)")
    uw.add_argument("--lab-endpoints", default=None, help="the running lab's endpoints.json (lab targets)")
    uw.set_defaults(func=_unwind)

    ul = sub.add_parser("unlock", help="show (and with --break, break) a target's drill lock")
    ul.add_argument("--target", default="lab")
    ul.add_argument("--lab-endpoints", default=None, help="the running lab's endpoints.json (lab targets)")
    ul.add_argument("--break", dest="break_lock", action="store_true", help="break a stale lock")
    ul.set_defaults(func=_unlock)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one clear line for operators; tracebacks are for tests
        print(f"drill: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
