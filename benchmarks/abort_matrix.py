#!/usr/bin/env python3
"""The abort matrix: interrupt the full drill at every step with every signal; is the lab back?

For each cell (step × SIGINT / SIGTERM / SIGKILL followed by `drill unwind`) a full drill runs
against one shared lab and is interrupted at that step (tests/lab/abort_at.py); then the lab must
be exactly as before the first drill: control plane (the drill's own baseline snapshot), no failover
resource, CloudFront deployed, users on PetClinic from AWS, the drill lock free, no process left.
Prints the table step × signal → yes / NO / not reached, and why for anything but yes. A cell
that is "not reached" (the drill failed earlier, e.g. a timing objective missed on a busy machine)
is retried once. Exit 0 only if every cell is yes.

The whole matrix is 33 steps × 3 signals ≈ 2 min each: hours. Pick cells with:

  python benchmarks/abort_matrix.py --list                      # the numbered steps
  python benchmarks/abort_matrix.py                             # everything
  python benchmarks/abort_matrix.py --steps 3,12@5,20-22 --signals SIGINT,SIGKILL
      (12@5: 5 s into step 12, to land inside a long step; --delay S sets it for all steps)
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "lab"), str(REPO)]

from abort_at import drill_steps  # noqa: E402
from abort_matrix_lib import SYSTEMS, format_matrix, parse_cells, run_matrix  # noqa: E402


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    # SIGTERM (a CI cancel, `kill`) stops the matrix like Ctrl-C: the running drill is interrupted
    # and waited for, and the lab is stopped — nothing of ours is left running.
    signal.signal(signal.SIGTERM, _stop)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default=None, help='e.g. "3,12@5,20-22" (default: every step, 1-29)')
    ap.add_argument("--signals", default=None, help='e.g. "SIGINT,SIGKILL" (default: SIGINT,SIGTERM,SIGKILL)')
    ap.add_argument("--delay", type=float, default=0.0, help="seconds into each step (default 0: just before it runs)")
    ap.add_argument("--retries", type=int, default=1, help="retries of a not-reached cell (default 1)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep every cell's drill output, reports and lab here")
    ap.add_argument("--list", action="store_true", help="list the drill's steps and exit")
    ap.add_argument("--system", choices=sorted(SYSTEMS), default="cloudfront",
                    help="whose drill: features/<system>/ against its lab target (default: cloudfront)")
    args = ap.parse_args()
    os.environ["DRILL_ABORT_SYSTEM"] = args.system  # the step numbering (tests/lab/abort_at.py)
    steps = drill_steps()
    if args.list:
        for s in steps:
            print(s)
        return 0
    try:
        cells = parse_cells(args.steps, args.signals, args.delay, len(steps))
    except ValueError as e:
        ap.error(str(e))
    print(f"abort matrix: {len(cells)} cell(s), sequential, one lab", flush=True)
    t0 = time.monotonic()
    try:
        results = run_matrix(cells, root=args.workdir, retries=args.retries, keep=args.workdir is not None,
                             log=lambda line: print(line, flush=True), system=SYSTEMS[args.system])
    except KeyboardInterrupt as e:
        print(f"abort matrix stopped ({str(e) or 'Ctrl-C'}): the running drill was interrupted and the lab stopped", flush=True)
        return 130
    wall = time.monotonic() - t0
    print()
    print(format_matrix(results, steps))
    print(f"wall time {wall / 60:.1f} min (lab start and stop included)")
    return 0 if results and all(r.outcome == "yes" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
