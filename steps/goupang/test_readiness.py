"""Readiness of the goupang system (features/goupang/readiness.feature; `pytest -m readiness
--target=lab-goupang`): the daily snapshot's age against the RPO, its schedule, the record of drills.

Every step is one of the shared readiness steps (steps/readiness_steps.py), with the same meaning.
"""
from __future__ import annotations

from pytest_bdd import scenarios

# A star import: pytest-bdd registers each step as a module-level fixture under a generated name.
from steps.readiness_steps import *  # noqa: F403

scenarios("goupang/readiness.feature")
