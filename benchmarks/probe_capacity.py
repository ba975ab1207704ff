"""How much can one probe worker do, and what does the master/worker path cost in timing?

For 1, 2 and 4 local workers (one vantage each, drivers.probe.ProbeFleet: a Locust master and its
workers, samples back over Locust's custom messages), each vantage probing its own local "edge
location" (a small HTTP server) at --rate requests/s:

* sustained requests/s per worker over a --window-second window (samples on the master's timeline);
* CPU per worker (user + system, its process and children) as a share of one core, and per 100 req/s;
* the master's CPU share;
* timing: every edge location switches from PetClinic to 503 at its own known instant (staggered by
  0.5 s); each vantage's RTO (the first request sent that begins a sustained run of errors, on the
  master's clock, drill.vantages.phase_rtos) minus its location's switch is the error the whole path
  adds (pacing, the worker's clock correction, delivery); goal: within one probe interval (± 5 ms:
  a request is answered a moment after it is sent, and Locust's pacing jitters by a millisecond). The
  workers' estimated clock offsets (true offset 0: one host) and their uncertainties are printed too.

Goals: ≥ 50 req/s per worker using < 10 % of a core; RTO error within one probe interval per vantage.

    python benchmarks/probe_capacity.py [--workers 1 2 4] [--rate 50] [--window 10]

Exits 1 if a goal is missed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill import vantages as vt
from drivers.probe import ProbeFleet, Vantage
from lab.scripted_site import ScriptedSite

GOAL_RATE, GOAL_CORE_SHARE = 50.0, 0.10
SUSTAIN, MIN_SAMPLES = 0.5, 3
TOLERANCE = 0.005  # seconds: request handling and pacing jitter around one probe interval


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total
    except psutil.Error:
        return 0.0


def run(n: int, rate: float, window: float, users: int) -> list[dict[str, float | str]]:
    locations = [ScriptedSite(pop=f"LOC{i + 1}") for i in range(n)]  # PetClinic until down_at, then 503
    names = [f"v{i + 1}" for i in range(n)]
    rows: list[dict[str, float | str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fleet = ProbeFleet(f"http://{locations[0].address}/", Path(tmp) / "timeline.jsonl",
                               [Vantage(name, connect_to=loc.address) for name, loc in zip(names, locations, strict=True)],
                               rate_per_second=rate, users=users, timeout_seconds=2.0)
            with fleet:
                time.sleep(2.0)  # past the start-up and the quick clock pings
                pids = {name: fleet.worker_pid(name) for name in names}
                cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
                master0 = cpu_seconds(fleet.pid)
                t0 = time.monotonic()
                time.sleep(window)
                t1 = time.monotonic()
                cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
                master1 = cpu_seconds(fleet.pid)
                # Each location switches at its own instant; every vantage sees its own.
                switch0 = time.monotonic() + 0.5
                for i, loc in enumerate(locations):
                    loc.down_at = switch0 + 0.5 * i
                time.sleep(0.5 * n + SUSTAIN + 2.0)
                status = fleet.status()
                by = vt.split(fleet.samples(), names)
                rtos = {r.vantage: r for r in vt.phase_rtos(by, "error", switch0, SUSTAIN, MIN_SAMPLES, fleet.max_gap,
                                                            time.monotonic())}
            clocks = {w["vantage"]: w.get("clock") or {} for w in status.get("workers", [])}
            for i, name in enumerate(names):
                in_window = [s for s in by[name] if t0 <= s.mono < t1]
                achieved = len(in_window) / (t1 - t0)
                share = (cpu1[name] - cpu0[name]) / (t1 - t0)
                r = rtos[name]
                truth = 0.5 * i
                rows.append({
                    "workers": n, "vantage": name, "req_per_s": achieved, "core_share": share,
                    "cpu_per_100": share * 100.0 / achieved if achieved else float("nan"),
                    "master_share": (master1 - master0) / (t1 - t0),
                    "rto_error": (r.rto_seconds - truth) if r.rto_seconds is not None else float("nan"),
                    "offset": float(clocks.get(name, {}).get("offset_seconds", float("nan"))),
                    "uncertainty": float(clocks.get(name, {}).get("uncertainty_seconds", float("nan"))),
                })
    finally:
        for loc in locations:
            loc.stop()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--rate", type=float, default=GOAL_RATE, help="requests/s per worker (vantage)")
    ap.add_argument("--users", type=int, default=4, help="Locust users per worker")
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured at steady state")
    args = ap.parse_args()
    interval = 1.0 / args.rate
    print(f"probe capacity: {args.rate:g} req/s asked per worker, {args.users} users each, {args.window:g} s window, "
          f"probe interval {interval * 1000:.0f} ms; {psutil.cpu_count()} CPUs, load {psutil.getloadavg()[0]:.2f}")
    print(f"{'workers':>7} {'vantage':>7} {'req/s':>7} {'% core':>7} {'%core/100rps':>12} {'master %':>8} "
          f"{'RTO err ms':>10} {'offset ms':>9} {'± ms':>6}  ok")
    failed = False
    for n in args.workers:
        for row in run(n, args.rate, args.window, args.users):
            ok = (float(row["req_per_s"]) >= min(GOAL_RATE, args.rate) * 0.95 and float(row["core_share"]) < GOAL_CORE_SHARE
                  and -TOLERANCE <= float(row["rto_error"]) <= interval + TOLERANCE)
            failed |= not ok
            print(f"{row['workers']:>7} {row['vantage']:>7} {row['req_per_s']:>7.1f} {100 * float(row['core_share']):>7.1f} "
                  f"{100 * float(row['cpu_per_100']):>12.1f} {100 * float(row['master_share']):>8.1f} "
                  f"{1000 * float(row['rto_error']):>10.1f} {1000 * float(row['offset']):>9.2f} "
                  f"{1000 * float(row['uncertainty']):>6.2f}  {'yes' if ok else 'NO'}")
    print("goals: ≥ 50 req/s per worker at < 10 % of a core; 0 ≤ RTO error ≤ one probe interval (± 5 ms)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
