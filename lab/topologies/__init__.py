"""Lab topologies: each a per-system assembly of the lab's shared parts (moto, Azurite, MariaDB, the
ARM emulator, the web tier, ...).

A target file names its topology (`lab: {topology: NAME}`); `python -m lab serve --topology NAME`
starts it. Adding a system's lab = a module here with a class taking `LabSettings`, whose `start()`
returns the endpoints document and `stop()` stops everything, plus the parts it lacks.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
