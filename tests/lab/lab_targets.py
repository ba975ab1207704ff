"""Lab target files for tests that drill something other than detection.

A drill whose target lists the design's `alarms` waits, at its end, for every alarm that fired to clear
(alb-5xx-errors-high: ≈ 40 s in the lab after a Phase 1, the 25-minute clear objective scaled); so does a
baseline read that includes their states. Tests of unwinding, hand-offs and failure paths drop them;
detection and clearing are tested where they are the point (test_alarm_detection.py, test_interrupts.py,
the quick-start drill in CI).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def without_alarms(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw target without the design's alarms and without alarm stop conditions."""
    raw.pop("alarms", None)
    if isinstance(raw.get("stop"), dict):
        raw["stop"].pop("alarms", None)
    return raw


def target_without_alarms(name: str, directory: Path) -> Path:
    """targets/<name>.yaml without alarms, written into `directory`: its path, for --target."""
    raw = without_alarms(yaml.safe_load((REPO / "targets" / f"{name}.yaml").read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-without-alarms.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    return path
