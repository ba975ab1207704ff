"""`drill`: what is not a test run. `pytest -m drill` runs drills; this runs the rest.

  drill lab up [--time-scale N]                 start the lab alone, print its site URL; Ctrl-C stops it
  drill probe URL --duration S --out FILE       probe any site; JSON summary on the last line
        [--vantage NAME] [--connect-to HOST:PORT]   as that vantage (samples carry its name), through that address
  drill probe-worker --master HOST:PORT --vantage NAME
                                                a probe worker for a drill's remote vantage (runs until the drill ends)
  drill verify BUNDLE_DIR [--key PUB]           check an evidence bundle: manifest, statement, signature
  drill history [DIR] [--verify] [--key PUB]    every drill of a target: table, chart, regressions; the hash chain
  drill keygen --out KEY                        a new Ed25519 signing key (KEY) and its public half (KEY.pub)
  drill report [--results DIR] [--out DIR]      the Allure HTML report, offline, one file (Allure 2, Java)
  drill unwind LEDGER [--target T]              undo what a killed drill left (its persisted ledger), release its lock
  drill unlock [--target T] [--break]           who holds a target's drill lock; break a stale one

Subcommands import drivers and the lab lazily: `drill verify` and `drill history` load no SDK (drill_cli/__init__.py).
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    try:
        summary = run_standalone(
            args.url, args.duration, Path(args.out), rate_per_second=args.rate,
            users=args.users, timeout_seconds=args.timeout, rules=rules,
            vantage=args.vantage, connect_to=args.connect_to,
        )
    except ValueError as e:
        print(f"drill probe: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, default=str))
    return 0


def _probe_worker(args: argparse.Namespace) -> int:
    """Become a Locust worker of a drill's probe master, for one of its target's vantages."""
    from drivers.probe import run_worker

    try:
        run_worker(args.master, args.vantage)  # replaces this process; returns only on bad input
    except (ValueError, OSError) as e:
        print(f"drill probe-worker: {e}", file=sys.stderr)
    return 2


def _verify(args: argparse.Namespace) -> int:
    """Manifest (every file, every field), then the attestation: statement subjects and signature."""
    from drill.attestation import SigningKeyError, check, keyid, load_public_key
    from drill.bundle import MANIFEST_NAME, load_manifest, read_manifest, verify

    bundle = Path(args.bundle)
    key = None
    if args.key:
        try:
            key = load_public_key(Path(args.key))
        except SigningKeyError as e:
            print(f"drill verify: --key {e}", file=sys.stderr)
            return 2
    problems = verify(bundle)
    manifest, _ = read_manifest(bundle) if bundle.is_dir() else (None, [])
    att = check(bundle, key) if manifest is not None else None
    legacy = manifest is not None and manifest.version < 2 and att is not None and att.problems[:1] == [
        "attestation: missing (attestation.json)"]
    if att is not None and not (legacy and key is None):
        problems += att.problems
    for line in problems:
        print(line)
    if problems:
        failed = sorted({p.split(":", 1)[0] for p in problems})
        print(f"drill verify: {bundle} is NOT intact: {len(problems)} problem(s) (checks failed: {', '.join(failed)})",
              file=sys.stderr)
        return 1
    files, _ = load_manifest(bundle)
    if legacy:
        print(f"intact: {len(files or {})} file(s) match {bundle / MANIFEST_NAME} (sha256)")
        print("unsigned: sealed before signed statements (manifest version 1): digests only")
        return 0
    print(f"intact: {len(files or {})} file(s) match {bundle / MANIFEST_NAME} (sha256); the statement's subjects match")
    assert att is not None
    if att.signed == "valid":
        assert key is not None  # "valid" means verified with the given key (attestation.check)
        print(f"signature: valid (Ed25519, key {keyid(key)})")
    elif att.signed == "not checked":
        print(f"signature: present (keyid {', '.join(att.keyids)}), not checked: pass --key PUB to check it")
    else:
        print("unsigned: sealed without a signing key (evidence.signing_key in the target signs bundles)")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    """A new Ed25519 key pair: the private key 0600 (never in the repository or evidence), the public beside it."""
    import os

    from drill.attestation import generate, keyid, public_key_from_pem

    out = Path(args.out)
    pub = out.with_name(out.name + ".pub")
    for p in (out, pub):
        if p.exists() and not args.force:
            print(f"drill keygen: {p} exists (--force replaces it)", file=sys.stderr)
            return 2
    private, public = generate()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    os.chmod(out, 0o600)
    pub.write_bytes(public)
    print(f"private key: {out} (0600: keep it in a secret store; give it to drills as evidence.signing_key: ${{env:NAME}})")
    print(f"public key:  {pub} (give it to auditors: drill verify BUNDLE --key {pub.name})")
    print(f"keyid:       {keyid(public_key_from_pem(public, str(pub)))}")
    return 0


def _history(args: argparse.Namespace) -> int:
    """Every drill of each target under DIR: table (or JSON/CSV), chart, regressions, staleness; --verify: the chain."""
    from drill import chain, history
    from drill.attestation import SigningKeyError, check, load_public_key

    root = Path(args.dir)
    if not root.is_dir():
        print(f"drill history: no such directory: {root}", file=sys.stderr)
        return 2
    key = None
    if args.key:
        try:
            key = load_public_key(Path(args.key))
        except SigningKeyError as e:
            print(f"drill history: --key {e}", file=sys.stderr)
            return 2
    sig_problems: dict[str, list[str]] = {}
    if key is not None:
        for s in chain.discover(root, args.target, check=False):
            found = [p for p in check(s.path, key).problems]
            if found:
                sig_problems[s.run_id] = found
    status = 0
    targets = [args.target] if args.target else sorted({s.target for s in chain.discover(root, check=False)})
    if args.verify:
        for rep in chain.verify_chains(root, args.target, start=args.start, signature_problems=sig_problems):
            print(chain.describe(rep))
            for p in rep.problems:
                print(f"  {p}")
            if not rep.ok:
                status = 1
        if not targets:
            print(f"drill history: no sealed drill run under {root}")
        return status
    if not targets:
        print(f"drill history: no sealed drill run under {root}", file=sys.stderr)
        return 1
    for target in targets:
        t = _thresholds(target, args)
        runs = history.load(root, target, sig_problems)
        regs = history.regressions(runs, t)
        stale = history.staleness(runs, t)
        if args.format == "json":
            print(history.as_json(target, runs, regs, stale, t))
        elif args.format == "csv":
            sys.stdout.write(history.as_csv(runs, regs))
        else:
            print(f"dr-drill history: target {target}, {len(runs)} run(s) in {root} (seconds are wall clock, measured/target)")
            for line in history.table_lines(runs, regs, stale, t):
                print(line)
        if not args.no_chart:
            from drill.history_chart import render_history

            out = Path(args.chart.replace("{target}", target)) if args.chart else root.parent / "history" / f"{target}.png"
            render_history(runs, regs, out, title=f"dr-drill history: {target} ({len(runs)} runs)")
            print(f"chart: {out}", file=sys.stderr if args.format != "table" else sys.stdout)
    return status


def _thresholds(target: str, args: argparse.Namespace) -> Any:
    """Thresholds from the target file's `evidence:` section when it exists here, else the defaults."""
    from drill.config import ConfigError, load_target
    from drill.history import Thresholds

    try:
        t = Thresholds.from_config(load_target(target).evidence)
    except (ConfigError, OSError):
        t = Thresholds()
    if args.stale_after_days is not None:
        t = Thresholds(t.ratio, t.floor_seconds, t.window, args.stale_after_days, t.passing_phases)
    return t


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
    except Exception as e:  # noqa: BLE001 — the unwind's outcome stands; the lock can still be broken by hand
        print(f"drill lock: could not be checked ({type(e).__name__}: {e}); see drill unlock --target {name}")
        return
    if found == "released":
        assert holder is not None  # what was released was held
        print(f"drill lock: released (held by run {run_id}, {holder.who} since {holder.since})")
    elif found == "other":
        assert holder is not None
        print(f"drill lock: held by another run ({holder.run_id}, {holder.who} since {holder.since}): left alone")
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
    pr.add_argument("--vantage", default="default", help="the vantage name every sample carries (default: default)")
    pr.add_argument("--connect-to", default=None, metavar="HOST:PORT",
                    help="send the requests to this address, keeping the URL's host name (as curl --connect-to): "
                         "e.g. one CDN edge location")
    pr.set_defaults(func=_probe)

    pw = sub.add_parser("probe-worker", help="a probe worker for a drill's remote vantage: joins the drill's probe master")
    pw.add_argument("--master", required=True, metavar="HOST:PORT",
                    help="the drill's probe master (the target's probe.master bind address or host name, and port)")
    pw.add_argument("--vantage", required=True, metavar="NAME",
                    help="a vantage of the drill's target (probe.vantages[].name); the master sends the rest")
    pw.set_defaults(func=_probe_worker)

    ve = sub.add_parser("verify", help="check an evidence bundle: manifest, signed statement, signature (exit 0: intact)")
    ve.add_argument("bundle", metavar="BUNDLE_DIR", help="e.g. reports/evidence/latest")
    ve.add_argument("--key", metavar="PUB", default=None,
                    help="the signer's Ed25519 public key (PEM): the signature must verify with it")
    ve.set_defaults(func=_verify)

    hi = sub.add_parser("history", help="every drill of a target: table, chart, regressions, days since the last pass")
    hi.add_argument("dir", nargs="?", default="reports/evidence", help="evidence directory, or an auditor's copy (default: %(default)s)")
    hi.add_argument("--target", default=None, help="one target (default: every target found)")
    hi.add_argument("--format", choices=("table", "json", "csv"), default="table")
    hi.add_argument("--chart", default=None, help="PNG path ({target} is replaced; default: <dir>/../history/<target>.png)")
    hi.add_argument("--no-chart", action="store_true", help="no PNG")
    hi.add_argument("--stale-after-days", type=float, default=None, help="override the target's evidence.stale_after_days")
    hi.add_argument("--verify", action="store_true",
                    help="check the hash chain instead: every run intact, no run missing, no link broken (exit 1 if not)")
    hi.add_argument("--key", metavar="PUB", default=None, help="with --verify: every run's signature must verify with this key")
    hi.add_argument("--start", metavar="RUN_ID", default=None,
                    help="with --verify: the first run of a partial copy (its previous run may be absent)")
    hi.set_defaults(func=_history)

    kg = sub.add_parser("keygen", help="a new Ed25519 key pair for signing evidence")
    kg.add_argument("--out", required=True, help="private key path (PEM, 0600); the public key goes to OUT.pub")
    kg.add_argument("--force", action="store_true", help="replace existing files")
    kg.set_defaults(func=_keygen)

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
    except Exception as e:  # noqa: BLE001 — one clear line for operators; tracebacks are for tests
        print(f"drill: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
