#!/usr/bin/env python3
"""Benchmark: the RPO a regional loss would cost, over every instant of the lab's backup cycle.

The drill measures one fault instant. This runs the lab's backup job (cron-aligned, as the
design's `*/5 * * * *`) for a while, takes every backup's start and upload completion from the
event log, and asks, for fault instants spread evenly over the cycles: which backup had completed
before the fault, and how much was lost (fault − that backup's start)? It prints the distribution
of the loss window, how often it exceeds the RPO target (a fault after a backup was due but before
it completed), and the worst case (interval + dump and upload time). Prints; not a test.

  python benchmarks/rpo_window.py [--minutes 2]
  python benchmarks/rpo_window.py --events reports/evidence/latest/lab-events.jsonl
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drill.config import load_target  # noqa: E402
from lab.events import read_events  # noqa: E402


def backups_from(events: list[dict]) -> list[tuple[float, float]]:
    """(dump start, upload completed) of every backup the lab uploaded, in wall-clock seconds."""
    out = [(float(e["started"]), float(e["t"])) for e in events if e.get("event") == "backup uploaded"]
    return sorted(out)


def run_lab(minutes: float, scale: float) -> list[dict]:
    from lab.client import LabProcess

    with tempfile.TemporaryDirectory(prefix="dr-drill-rpo-"):
        proc = LabProcess(scale)
        endpoints = proc.start()
        try:
            time.sleep(minutes * 60)
            return read_events(Path(endpoints["events_path"]))
        finally:
            proc.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2.0, help="how long to let the lab's backup job run")
    ap.add_argument("--events", type=Path, help="a lab-events.jsonl to read instead of running a lab")
    args = ap.parse_args()
    target = load_target("lab")
    scale = target.time_scale
    assert target.objectives.rpo_seconds is not None and target.azure is not None, "the lab target sets both"
    rpo = target.scaled(target.objectives.rpo_seconds)
    interval = target.scaled(target.azure.storage.backup_interval_seconds)
    events = read_events(args.events) if args.events else run_lab(args.minutes, scale)
    backups = backups_from(events)[1:]  # the first stands for the slot before the lab started
    if len(backups) < 3:
        print(f"only {len(backups)} scheduled backups: run longer")
        return 1
    took = [done - start for start, done in backups]
    print(f"RPO target {rpo:.2f}s, backup interval {interval:.2f}s (real-world {rpo * scale:g}s / {interval * scale:g}s); "
          f"{len(backups)} scheduled backups")
    print(f"dump + upload: median {statistics.median(took) * 1000:.0f} ms, max {max(took) * 1000:.0f} ms")
    # Fault instants every millisecond over the observed cycles; the newest backup completed before each.
    losses, step = [], 0.001
    t, k = backups[0][1], 0
    while t < backups[-1][1]:
        while k + 1 < len(backups) and backups[k + 1][1] <= t:
            k += 1
        losses.append(t - backups[k][0])
        t += step
    over = sum(1 for x in losses if x > rpo) / len(losses)
    worst = max(b_done - a_start for (a_start, _), (_, b_done) in itertools.pairwise(backups))
    q = statistics.quantiles(losses, n=100)
    print(f"loss window over {len(losses)} fault instants: min {min(losses):.3f}s, median {q[49]:.3f}s, "
          f"p95 {q[94]:.3f}s, max {max(losses):.3f}s")
    print(f"worst case (interval + dump and upload): {worst:.3f}s = {worst * scale:.0f}s real-world, "
          f"{'within' if worst <= rpo else 'OVER'} the {rpo:.2f}s target")
    print(f"faults whose loss exceeds the RPO target: {over:.2%} (the fault lands after a backup was due, before it "
          f"completed; expected ≈ dump+upload / interval = {statistics.mean(took) / interval:.2%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
