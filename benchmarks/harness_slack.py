#!/usr/bin/env python3
"""Benchmark: how much of each measured RTO is the harness's, not the clouds'.

For each phase: the measured RTO, the lab's modeled critical path for that phase (the chain of
modeled cloud operations it waited for, from the lab's event log: lab/critical_path.py — the lower
bound the clouds themselves impose), and the slack = RTO − modeled: polling, sequencing, waits, the
restore and real process start-up. Goal: slack ≤ 5 % of each phase's RTO. The named gaps between
the chain's links say where the slack went. Prints its figures; not a test.

  flock /tmp/dr-drill-heavy.lock python benchmarks/harness_slack.py [--runs 1]
  python benchmarks/harness_slack.py --bundle reports/evidence/latest      # a drill already run
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.05


def drill(work: Path) -> tuple[int, Path]:
    reports = work / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "drill", "-p", "no:cacheprovider", f"--reports-dir={reports}",
         f"--alluredir={reports / 'allure-results'}"],
        cwd=REPO, env=dict(os.environ, TMPDIR=str(work)), capture_output=True, text=True, timeout=900,
    )
    return proc.returncode, (reports / "evidence" / "latest").resolve()


def table(bundle: Path) -> bool:
    s = json.loads((bundle / "summary.json").read_text())
    print(f"run {s['run_id']}: verdict {s['verdict']}, time scale {s['time_scale']:g}")
    print(f"  {'phase':<12}{'RTO s':>8}{'modeled s':>11}{'slack s':>9}{'slack':>8}  goal ≤ {GOAL:.0%}")
    ok = True
    for p in s["phases"]:
        d = p.get("detail") or {}
        if p.get("rto_seconds") is None or "modeled_seconds" not in d:
            print(f"  {p['name']:<12}{'—':>8}  no split: {d.get('real_world_unknown', 'not reached')}")
            ok = False
            continue
        rto, modeled, slack = p["rto_seconds"], d["modeled_seconds"], d["unscaled_seconds"]
        share = slack / rto if rto else 0.0
        good = share <= GOAL
        ok &= good
        print(f"  {p['name']:<12}{rto:>8.2f}{modeled:>11.2f}{slack:>9.2f}{share:>8.1%}  {'ok' if good else 'OVER'}")
        for g in sorted(d.get("unscaled_gaps") or [], key=lambda g: -g["seconds"])[:3]:
            print(f"  {'':<12}  {g['seconds']:6.2f}s before {g['before']}")
        for late in d.get("modeled_after_reached") or []:
            print(f"  {'':<12}  note: users had the page before '{late}' ended (the lab served early)")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--bundle", type=Path, help="an evidence bundle of a drill already run (no new run)")
    args = ap.parse_args()
    print("Harness slack: measured RTO vs the lab's modeled critical path (lab/critical_path.py)")
    if args.bundle:
        return 0 if table(args.bundle.resolve()) else 1
    ok = True
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="dr-drill-slack-") as tmp:
            code, bundle = drill(Path(tmp))
            if code != 0:
                print(f"run {i + 1}: the drill exited {code}")
                ok = False
            ok &= table(bundle)
    print(f"result: {'every phase within' if ok else 'NOT every phase within'} the {GOAL:.0%} slack goal")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
