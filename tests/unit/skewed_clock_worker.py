"""A probe worker on a host whose clocks are not the master's: `python skewed_clock_worker.py LOCUST_ARGS…`
runs Locust with time.monotonic() and time.time() reading $SKEW_MONO and $SKEW_WALL seconds off
(tests/unit/test_probe_fleet.py: the master must put its samples back on its own clock)."""
from __future__ import annotations

import os
import sys
import time

_mono, _wall = time.monotonic, time.time
MONO_SKEW, WALL_SKEW = float(os.environ["SKEW_MONO"]), float(os.environ["SKEW_WALL"])
time.monotonic = lambda: _mono() + MONO_SKEW
time.time = lambda: _wall() + WALL_SKEW

from locust.main import main  # noqa: E402  (after the clocks are skewed: Locust reads them through `time`)

sys.argv = ["locust", *sys.argv[1:]]
main()
