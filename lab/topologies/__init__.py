"""Lab topologies: each a per-system assembly of the lab's shared parts (moto, Azurite, MariaDB, the
ARM emulator, the web tier, ...).

A target file names its topology (`lab: {topology: NAME}`); `python -m lab serve --topology NAME`
starts it. Adding a system's lab = a module here with a class taking `LabSettings`, whose `start()`
returns the endpoints document and `stop()` stops everything, plus the parts it lacks.
"""
from __future__ import annotations

import importlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lab.events import EventLog
from lab.timing import Timings

# name -> "module:Class" (imported on use: a topology's parts import moto, azure SDKs, ...)
TOPOLOGIES: dict[str, str] = {
    "cloudfront": "lab.topologies.cloudfront:Lab",
    "goupang": "lab.topologies.goupang:GoupangLab",
}
DEFAULT = "cloudfront"


@dataclass
class LabSettings:
    time_scale: float = 30.0
    workdir: Path | None = None


class Topology(Protocol):
    def start(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...


class Assembly:
    """What every topology does the same way: its workdir, event log and scaled timings, and the parts
    it started, stopped in reverse order — by `stop()`, or at once when `start()` fails half-way, so a
    failed start leaks nothing. A topology implements `_start()` and appends each part it starts to
    `_stack` (or starts it through `_up`)."""

    name = ""

    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings
        self.timings = Timings().scaled(settings.time_scale)
        self.workdir = Path(settings.workdir or tempfile.mkdtemp(prefix="dr-drill-lab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(self.workdir / "events.jsonl")
        self._stack: list[Any] = []  # things to stop, in start order
        self.endpoints: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workdir={str(self.workdir)!r}, time_scale={self.settings.time_scale})"

    def start(self) -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise
        finally:
            self.events.record("lab", "started", topology=self.name, seconds=round(time.monotonic() - t0, 3))

    def _start(self) -> dict[str, Any]:
        raise NotImplementedError

    def _up(self, part: Any) -> Any:
        self._stack.append(part)
        return part

    def stop(self) -> None:
        """Idempotent; keeps stopping the rest when one part fails to stop: nothing may leak."""
        while self._stack:
            part = self._stack.pop()
            try:
                part.stop()
            except Exception as e:  # noqa: BLE001
                self.events.record("lab", "stop error", part=type(part).__name__, error=repr(e))
        self.events.record("lab", "stopped")


def topology(name: str, settings: LabSettings) -> Topology:
    """The lab assembly called `name`, not started."""
    if name not in TOPOLOGIES:
        raise ValueError(f"no lab topology named {name!r} (known: {', '.join(sorted(TOPOLOGIES))})")
    module, _, cls = TOPOLOGIES[name].partition(":")
    return getattr(importlib.import_module(module), cls)(settings)


def write_endpoints(path: Path, endpoints: dict[str, Any]) -> None:
    """Endpoints carry lab credentials: owner-only, written atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(endpoints, indent=2))
    tmp.replace(path)
