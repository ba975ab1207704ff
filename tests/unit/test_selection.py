"""`pytest -m drill` does not import the harness's own tests (drill/selection.py, conftest.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drill.selection import SCENARIO_MARKERS, selects_scenarios_only

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("expr", "only"), [
    ("drill", True), ("drill and phase2", True), ("readiness", True), ("drill or readiness", True),
    ("phase1", True), ("drill and not slow", True), ("(drill and phase2) or (readiness and lab)", True),
    # An item of tests/ could match: collect everything.
    ("", False), ("not drill and not readiness", False), ("lab", False), ("drill or lab", False),
    ("not drill", False), ("slow and not lab", False), ("drill or not slow", False), ("not (drill and phase2)", False),
    # Not parsable here: pytest reports it; nothing is skipped on a guess.
    ("drill and (", False),
])
def test_an_expression_selects_scenarios_only_when_no_other_item_can_match(expr: str, only: bool) -> None:
    assert selects_scenarios_only(expr) is only


def test_no_harness_test_carries_a_scenario_marker() -> None:
    """The rule's premise: scenario markers are on scenarios only (steps/), never under tests/."""
    marks = "|".join(sorted(SCENARIO_MARKERS))
    pattern = re.compile(rf"mark\.({marks})\b")
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in (REPO / "tests").rglob("*.py") for m in pattern.finditer(p.read_text())]
    assert found == []


@pytest.mark.slow
def test_a_drill_collects_the_same_scenarios_without_importing_the_tests() -> None:
    def collect(*args: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *args],
                              cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return [line for line in proc.stdout.splitlines() if "::" in line]

    drill = collect("-m", "drill")
    assert drill and all(line.startswith("steps/") for line in drill)
    assert drill == collect("-m", "drill", "steps")
    # The default run (the harness's tests) still collects tests/.
    assert any(line.startswith("tests/unit/test_selection.py::") for line in collect("tests/unit/test_selection.py"))
