"""Alarms the drill must leave as it found them, and those it need not (steps.baseline.drill_diff); an alarm
already firing before the drill is not evaluated for detection; why a verdict is FAILED (drill.verdict)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from drill.detection import Detection, summary
from drill.verdict import verdict_reasons
from steps.baseline import alarms_not_ok, drill_diff
from steps.runtime import DrillRun


def snap(**alarms: str) -> dict[str, object]:
    return {"eks": {"desired": 2}, "alarms": alarms}


def test_an_alarm_ok_before_and_firing_after_is_a_difference() -> None:
    assert drill_diff(snap(a="OK", b="OK"), snap(a="ALARM", b="OK")) == ["alarms.a: 'OK' → 'ALARM'"]


def test_an_alarm_firing_before_the_drill_is_not_the_drills_to_clear() -> None:
    before = snap(a="ALARM", b="OK")
    assert drill_diff(before, snap(a="OK", b="OK")) == []
    assert drill_diff(before, snap(a="ALARM", b="OK")) == []
    assert alarms_not_ok(before) == {"a": "ALARM"}


def test_other_differences_and_a_missing_alarm_still_count() -> None:
    before = {"eks": {"desired": 2}, "alarms": {"a": "INSUFFICIENT_DATA", "b": "OK"}}
    after = {"eks": {"desired": 0}, "alarms": {"a": "OK"}}
    assert drill_diff(before, after) == ["alarms.b: 'OK' → (missing)", "eks.desired: 2 → 0"]


# -- detection of an alarm already firing before the drill ---------------------------------------------------
def _run(expected: dict[str, list[str]], before: dict[str, str]) -> Any:
    """A DrillRun's stand-in with the fields expected_alarms reads, bound to the real method."""
    run: Any = SimpleNamespace(target=SimpleNamespace(alarms=SimpleNamespace(expected=expected)),
                               alarms_before=before, alarms_not_evaluated=[])
    run.expected_alarms = lambda phase: DrillRun.expected_alarms(run, phase)
    return run


def test_an_expected_alarm_already_firing_is_not_evaluated_and_said_so_once() -> None:
    run = _run({"phase1": ["alb-5xx", "unhealthy-hosts"]}, {"alb-5xx": "ALARM"})
    assert run.expected_alarms("phase1") == ["unhealthy-hosts"]
    assert run.expected_alarms("phase1") == ["unhealthy-hosts"]  # asked again by the watcher and the end of the run
    assert run.alarms_not_evaluated == [{"alarm": "alb-5xx", "phase": "phase1", "state_before": "ALARM",
                                         "why": "ALARM before the drill's first change: no OK → ALARM to measure, nor its clearing"}]
    assert _run({"phase1": ["alb-5xx"]}, {}).expected_alarms("phase1") == ["alb-5xx"]


def test_the_alarms_summary_lists_what_was_not_evaluated_and_judges_only_the_rest() -> None:
    fired = Detection("unhealthy-hosts", "phase1", 100.0, 20.0, fired_at=104.0, notified_at=104.5)
    skipped = [{"alarm": "alb-5xx", "phase": "phase1", "state_before": "ALARM", "why": "…"}]
    s = summary({"phase1": [fired]}, None, 20.0, 50.0, skipped)
    assert s["passed"] and s["not_evaluated"] == skipped
    late = Detection("unhealthy-hosts", "phase1", 100.0, 20.0, fired_at=125.0, notified_at=125.5)
    assert not summary({"phase1": [late]}, None, 20.0, 50.0, skipped)["passed"]


def test_a_failed_verdict_names_why_and_a_passed_one_has_no_reason() -> None:
    passed = {"phases": [{"name": "phase1", "passed": True, "rto_seconds": 1.2, "rto_target_seconds": 6.0}],
              "alarms": {"passed": True}, "restore": {"failures": [], "site_class": "aws"}, "baseline_diff": []}
    assert verdict_reasons(passed) == []
    missed = {**passed, "alarms": {"passed": False, "phases": {"phase1": [{"alarm": "alb-5xx", "passed": False}]},
                                   "clear": [{"alarm": "node-count-low", "passed": False}]}}
    assert verdict_reasons(missed) == ["alarms: alb-5xx (phase1) not alerted in time, node-count-low not back to OK in time"]
    slow = {**passed, "phases": [{"name": "phase1", "passed": False, "rto_seconds": None, "rto_target_seconds": 6.0}]}
    assert verdict_reasons(slow) == ["phase1 RTO never reached / target 6.0s"]
