"""`python -m lab serve`: run the lab in its own process until SIGTERM/SIGINT (or its parent dies)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from lab.topologies import DEFAULT, LabSettings, topology, write_endpoints


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="start the lab and keep it running")
    s.add_argument("--topology", default=DEFAULT, help="which system's lab (lab/topologies/)")
    s.add_argument("--time-scale", type=float, default=30.0)
    s.add_argument("--workdir", type=Path, required=True)
    s.add_argument("--ready-file", type=Path, required=True, help="endpoints JSON written when ready")
    s.add_argument("--parent-pid", type=int, default=0, help="stop when this process is gone")
    args = p.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    lab = topology(args.topology, LabSettings(time_scale=args.time_scale, workdir=args.workdir))
    try:
        endpoints = lab.start()
        endpoints["pid"] = os.getpid()
        write_endpoints(args.ready_file, endpoints)
        while not stop.wait(0.5):
            if args.parent_pid and not _alive(args.parent_pid):
                break  # an orphaned lab would leak processes and ports
    except Exception as e:  # noqa: BLE001 — any start-up failure is the lab process's exit status 1, said on stderr
        print(f"lab failed: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        lab.stop()
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


if __name__ == "__main__":
    raise SystemExit(main())
