#!/usr/bin/env python3
"""The fault matrix: the clouds misbehave during one step of the drill; does it recover, or put everything back?

For each cell (step × fault kind: throttle, 5xx, hang, stale, partial) the drill runs up to the
phase of that step against one shared lab, and the lab's cloud APIs answer that step's calls with
the fault (tests/lab/fault_at.py, lab.faults); then, read from outside the drill, the lab must be
exactly as before (tests/lab/abort_matrix_lib.Observer). Prints step × fault → recovered /
failed-and-restored / NOT restored (and not hit / not reached), and what the drill's evidence said
about the calls that failed. Exit 0 only if no cell is NOT restored.

  python benchmarks/fault_matrix.py                          # the mutating steps × all five kinds
  python benchmarks/fault_matrix.py --steps 4,27 --kinds throttle,hang
  python benchmarks/fault_matrix.py --steps 4 --kinds 5xx --count 50   # beyond every retry budget
  python benchmarks/fault_matrix.py --cells 4:throttle,11:partial,15:5xx:50

Each cell is a drill up to its phase (≈ 1 min for Phase 1, 2 for Phase 2, 3 for Phase 3): run it
under `flock /tmp/dr-drill-heavy.lock` on a shared machine.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "lab"), str(REPO)]

from fault_matrix_lib import format_matrix, parse_cells, run_matrix  # noqa: E402


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default=None, help='e.g. "4,11-12" (default: the mutating steps)')
    ap.add_argument("--kinds", default=None, help='e.g. "throttle,hang" (default: throttle,5xx,hang,stale,partial)')
    ap.add_argument("--cells", default=None, help='e.g. "4:throttle,15:5xx:50" (step:kind[:count]; instead of --steps × --kinds)')
    ap.add_argument("--count", type=int, default=0, help="calls answered with the fault per surface (default: per kind)")
    ap.add_argument("--retries", type=int, default=1, help="retries of a not-reached cell (default 1)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep every cell's drill output, reports and lab here")
    args = ap.parse_args()
    try:
        cells = parse_cells(args.steps, args.kinds, args.count, cells=args.cells)
    except ValueError as e:
        ap.error(str(e))
    print(f"fault matrix: {len(cells)} cell(s), sequential, one lab", flush=True)
    t0 = time.monotonic()
    try:
        results = run_matrix(cells, root=args.workdir, retries=args.retries, keep=args.workdir is not None,
                             log=lambda line: print(line, flush=True))
    except KeyboardInterrupt as e:
        print(f"fault matrix stopped ({str(e) or 'Ctrl-C'}): the running drill was interrupted and the lab stopped", flush=True)
        return 130
    print()
    print(format_matrix(results))
    print(f"wall time {(time.monotonic() - t0) / 60:.1f} min (lab start and stop included)")
    return 0 if results and all(r.outcome != "NOT restored" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
