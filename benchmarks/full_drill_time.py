#!/usr/bin/env python3
"""Benchmark: wall time of the full three-phase drill against a fresh lab (goal: ≤ 180 s here).

Runs `pytest -m drill` as an operator would (lab start and stop included) and prints the wall
time, the phases' measured RTOs, what users saw, and the baseline diff. Prints; not a test.

  python benchmarks/full_drill_time.py [--runs 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 180.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="dr-drill-bench-") as tmp:
        for i in range(1, args.runs + 1):
            reports = Path(tmp) / f"run{i}"
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-m", "drill", "-p", "no:cacheprovider",
                 f"--reports-dir={reports}", f"--alluredir={reports / 'allure-results'}"],
                cwd=REPO, env=dict(os.environ, TMPDIR=tmp), capture_output=True, text=True, timeout=900,
            )
            wall = time.monotonic() - t0
            s = json.loads(((reports / "evidence" / "latest").resolve() / "summary.json").read_text())
            good = proc.returncode == 0 and wall <= GOAL and not s["baseline_diff"]
            ok &= good
            print(f"run {i}: exit {proc.returncode}, wall {wall:.1f}s (goal ≤ {GOAL:.0f}s), verdict {s['verdict']}")
            for p in s["phases"]:
                print(f"  {p['name']:<12} RTO {p['rto_seconds']}s / {p['rto_target_seconds']}s  "
                      f"(real-world ≈ {p['rto_real_equivalent_seconds']}s / {p['rto_target_real_seconds']}s)")
            print(f"  users saw: {' → '.join(t['class'] for t in s['transitions'])}")
            print(f"  downtime {s['downtime_seconds']}s, degraded {s['degraded_seconds']}s, on Azure {s['azure_seconds']}s, "
                  f"RPO {s['rpo_seconds']}s, baseline diff {s['baseline_diff'] or 'none'}")
            print(f"  {'PASS' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
