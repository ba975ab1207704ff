#!/usr/bin/env python3
"""Benchmark: is the measured maintenance-page RTO what really happened?

Runs the Phase 1 drill against a fresh lab N times and, for each run, compares the RTO the probe
measured (fault → users see the maintenance page, sustained) with the lab's ground truth (fault →
the instant no target of the ALB accepted a connection any more — the pods evicted at the start of
the nodes' drain — after which the ALB answers every request with a 5xx and CloudFront fails it
over). Also prints the chain behind it from the lab's event log: the EKS update's completion, the
drain's start, the eviction, and the nodes' termination (which the RTO no longer waits for).
Passes when |measured − truth| ≤ one probe interval for every run. Prints its figures; not a test.

  python benchmarks/phase1_accuracy.py [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drill.config import load_target  # noqa: E402
from lab.events import read_events  # noqa: E402


def one_run(i: int, work: Path) -> dict:
    reports = work / f"run{i}"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "phase1", "-p", "no:cacheprovider", "--reports-dir", str(reports),
         f"--alluredir={reports / 'allure-results'}", "steps/cloudfront/test_phase1.py"],
        cwd=REPO, env=dict(os.environ, TMPDIR=str(work)), capture_output=True, text=True, timeout=600,
    )
    run = (reports / "evidence" / "latest").resolve()
    summary = json.loads((run / "summary.json").read_text())
    phase = summary["phases"][0]
    fault = datetime.fromisoformat(phase["fault_at"]).timestamp()
    events = [e for e in read_events(run / "lab-events.jsonl") if e["t"] >= fault]

    def first(name: str) -> float:
        t = [e["t"] for e in events if e["event"] == name]
        return t[0] - fault if t else float("nan")

    return {"exit": proc.returncode, "measured": phase["rto_seconds"], "truth": first("no serving targets"),
            "target": phase["rto_target_seconds"], "update": first("nodegroup update successful"),
            "drain": first("node draining"), "evicted": first("pod evicted"), "terminated": first("node terminated")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    interval = 1.0 / load_target("lab").probe.rate_per_second
    print(f"Phase 1 RTO accuracy vs lab ground truth: {args.runs} runs, probe interval {interval:.3f}s")
    print(f"{'run':>3} {'exit':>4} {'measured':>9} {'truth':>8} {'|error|':>8} {'target':>7}  result"
          f"   (fault → update done / drain / evicted / terminated)")
    ok = True
    with tempfile.TemporaryDirectory(prefix="dr-drill-bench-") as tmp:
        for i in range(1, args.runs + 1):
            r = one_run(i, Path(tmp))
            err = abs(r["measured"] - r["truth"]) if r["measured"] is not None else float("inf")
            good = r["exit"] == 0 and err <= interval
            ok &= good
            measured = float("nan") if r["measured"] is None else r["measured"]
            print(f"{i:>3} {r['exit']:>4} {measured:>9.3f} {r['truth']:>8.3f} {err:>8.3f} {r['target']:>7.2f}  "
                  f"{'PASS' if good else 'FAIL'}     {r['update']:.2f} / {r['drain']:.2f} / {r['evicted']:.2f} / {r['terminated']:.2f} s")
    print(f"result: {'PASS' if ok else 'FAIL'} (criterion: |measured − truth| ≤ {interval:.3f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
