"""Measured figures as JUnit XML properties (`pytest --junitxml=…`), so any CI shows them without Allure.

Each drill scenario's <testcase> gets the figures measured while it ran (`dr-drill.phase1.rto_seconds`,
`….rto_target_seconds`, `….passed`, the real-world equivalents; `dr-drill.rpo_seconds` … in the
scenario that restored the data), and the <testsuite> gets the run's outcome and every figure
(pytest's record_testsuite_property, valid in the default xunit2 family; per-testcase properties
are outside that schema but read by Jenkins, GitLab and most JUnit readers). Core module: stdlib.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PREFIX = "dr-drill"
PHASE_KEYS = ("rto_seconds", "rto_target_seconds", "passed", "rto_real_equivalent_seconds", "rto_target_real_seconds")
RPO_KEYS = ("rpo_seconds", "rpo_target_seconds", "backup_age_seconds")


def _text(value: Any) -> str:
    if value is None:
        return "null"  # not reached / not measured: an explicit value, never a missing property
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def phase_properties(phase: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One phase result (drill.evidence.PhaseResult as a dict) as (name, value) properties."""
    return [(f"{PREFIX}.{phase['name']}.{k}", _text(phase.get(k))) for k in PHASE_KEYS]


def rpo_properties(rpo: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(f"{PREFIX}.{k}", _text(rpo.get(k))) for k in RPO_KEYS] + [(f"{PREFIX}.rpo_passed", _text(rpo.get("passed")))]


def run_properties(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The whole run, for the <testsuite>: outcome, every phase, RPO, downtime."""
    out = [(f"{PREFIX}.{k}", _text(summary.get(k))) for k in ("run_id", "target", "verdict", "time_scale")]
    for p in summary.get("phases") or []:
        out += phase_properties(p)
    if summary.get("rpo") is not None:
        out += rpo_properties(summary["rpo"])
    out += [(f"{PREFIX}.{k}", _text(summary.get(k))) for k in ("downtime_seconds", "unobserved_seconds", "duration_seconds")]
    return out
