"""How accurately does the probe measure a known outage?

Runs drivers.probe.run_standalone against a local server that serves PetClinic, then 503s for
exactly --outage seconds, then the maintenance page, and compares the downtime the probe reports
with the known outage. PASS when |measured - known| <= one probe interval (1 / rate).

    python benchmarks/probe_accuracy.py [--runs 5] [--outage 2.0] [--rate 10] [--users 4]

Exits 1 if any run fails.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.probe import run_standalone
from lab.scripted_site import MAINTENANCE, PETCLINIC, ScriptedSite

OUTAGE = b"<html><body>503 Service Unavailable</body></html>"


class OutageServer(ScriptedSite):
    """Arms its schedule on the first request, so the outage sits inside the probe's run."""

    def __init__(self, lead: float, outage: float) -> None:
        super().__init__(self.scheduled)
        self.lead, self.outage = lead, outage
        self.down_at: float | None = None  # type: ignore[assignment]  # monotonic, system-wide: comparable with the probe's
        self.up_at: float | None = None
        self._lock = threading.Lock()

    def scheduled(self) -> tuple[int, bytes]:
        now = time.monotonic()
        with self._lock:
            if self.down_at is None:
                self.down_at = now + self.lead
                self.up_at = self.down_at + self.outage
        if now < self.down_at:
            return 200, PETCLINIC
        assert self.up_at is not None  # set with down_at above
        if now < self.up_at:
            return 503, OUTAGE
        return 200, MAINTENANCE


def one_run(i: int, out_dir: Path, outage: float, rate: float, users: int, lead: float, tail: float) -> bool:
    # The schedule is armed by a probe request, so without a random phase both edges would fall
    # exactly on probe slots every run; the phase spreads them over the probe interval.
    srv = OutageServer(lead + random.uniform(0.0, 1.0 / rate), outage)
    try:
        summ = run_standalone(
            f"http://127.0.0.1:{srv.server_address[1]}/",
            duration=lead + outage + tail,
            out=out_dir / f"run{i}.jsonl",
            rate_per_second=rate,
            users=users,
        )
    finally:
        srv.stop()
    interval = 1.0 / rate
    measured = summ["downtime_seconds"]
    err = abs(measured - outage)
    ivs = summ["downtime_intervals"]
    edges = ""
    if len(ivs) == 1 and srv.down_at is not None and srv.up_at is not None:
        # How late the probe saw each edge (each is bounded by one interval + latency).
        edges = f"  edge lag: down +{ivs[0]['start'] - srv.down_at:.3f}s, up +{ivs[0]['end'] - srv.up_at:.3f}s"
    ok = err <= interval and len(ivs) == 1
    print(
        f"run {i}: known outage {outage:.3f}s  measured downtime {measured:.3f}s  |error| {err:.3f}s  "
        f"probe interval {interval:.3f}s  requests {summ['requests']}  "
        f"intervals {len(ivs)}{edges}  {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--outage", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--lead", type=float, default=1.0, help="seconds of PetClinic before the outage")
    ap.add_argument("--tail", type=float, default=1.5, help="seconds of maintenance page after it")
    ap.add_argument("--out-dir", type=Path, default=None, help="keep the JSONL files here")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    random.seed(args.seed)

    with tempfile.TemporaryDirectory(prefix="probe-accuracy-") as tmp:
        out_dir = args.out_dir or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        results = [one_run(i + 1, out_dir, args.outage, args.rate, args.users, args.lead, args.tail) for i in range(args.runs)]
    passed = sum(results)
    print(
        f"summary: {passed}/{len(results)} runs within one probe interval ({1.0 / args.rate:.3f}s) "
        f"of a {args.outage:.3f}s outage at {args.rate:g} req/s, {args.users} users: {'PASS' if all(results) else 'FAIL'}"
    )
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
