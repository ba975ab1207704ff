"""Readiness of the goupang system (features/goupang/readiness.feature; `pytest -m readiness
--target=lab-goupang`): the daily snapshot's age against the RPO, its schedule, the record of drills,
and the preflight checks of this system's plan (drill/preflight_goupang.py).

Every other step is one of the shared readiness steps (steps/readiness_steps.py), with the same meaning.
"""
from __future__ import annotations

from pytest_bdd import scenarios, then

from steps.readiness import ReadinessRun

# A star import: pytest-bdd registers each step as a module-level fixture under a generated name.
from steps.readiness_steps import *  # noqa: F403
from steps.readiness_steps import report_all

scenarios("goupang/readiness.feature")


@then("no preflight check finds what the real clouds would refuse in the drill's plan")
def preflight(readiness_run: ReadinessRun) -> None:
    # The same sentence as the CloudFront system's; the checks are the target's system's (ReadinessRun.check_preflight).
    report_all(readiness_run.check_preflight())
