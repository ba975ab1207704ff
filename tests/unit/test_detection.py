"""drill.detection (fault → ALARM → notified; restore → OK) and drill.results_metrics, without a lab."""
from __future__ import annotations

import re

from drill.detection import AlarmState, Receipt, Transition, clear, detect, summary
from drill.results_metrics import samples

FAULT = 1_000.0


def tr(alarm: str, at: float, new: str, old: str = "OK") -> Transition:
    return Transition(alarm, at, old, new, f"{old} -> {new}")


def test_detection_takes_the_first_alarm_after_the_fault_and_its_own_notification() -> None:
    transitions = {
        "a": [tr("a", FAULT - 50, "ALARM"), tr("a", FAULT - 40, "OK", "ALARM"), tr("a", FAULT + 3, "ALARM")],
        "b": [tr("b", FAULT + 5, "ALARM")],
        "c": [],
    }
    receipts = [
        Receipt("a", "ALARM", FAULT - 49, changed_at=FAULT - 50),  # the earlier episode's notification
        Receipt("a", "ALARM", FAULT + 3.4, changed_at=FAULT + 3),
        Receipt("b", "OK", FAULT + 6),  # not an ALARM notification
    ]
    a, b, c = detect("phase1", FAULT, ["a", "b", "c"], transitions, receipts, objective_seconds=4.0)
    assert (a.detection_seconds, a.notification_seconds, a.passed) == (3.0, 3.4, True)
    assert (b.detection_seconds, b.notification_seconds, b.complete, b.passed) == (5.0, None, False, False)
    assert (c.fired_at, c.passed) == (None, False)
    late = detect("phase1", FAULT, ["a"], transitions, receipts, objective_seconds=3.2)[0]
    assert not late.passed  # in ALARM in time, but notified 3.4 s after the fault


def test_clearing_is_measured_from_the_restore_and_an_early_clear_is_called_so() -> None:
    fired = detect("phase1", FAULT, ["a", "b", "c"], {
        "a": [tr("a", FAULT + 3, "ALARM")], "b": [tr("b", FAULT + 5, "ALARM")], "c": [tr("c", FAULT + 2, "ALARM")]}, [], 10.0)
    restored = FAULT + 100
    transitions = {
        "a": [tr("a", FAULT + 3, "ALARM"), tr("a", restored + 20, "OK", "ALARM")],
        "b": [tr("b", FAULT + 5, "ALARM"), tr("b", FAULT + 9, "OK", "ALARM")],  # cleared during the outage
        "c": [tr("c", FAULT + 2, "ALARM")],
    }
    states = {n: AlarmState(n, s, "", None, True, ["arn:topic"], []) for n, s in (("a", "OK"), ("b", "OK"), ("c", "ALARM"))}
    a, b, c = clear(restored, fired, transitions, states, objective_seconds=30.0)
    assert (a.clear_seconds, a.cleared_before_restore, a.passed) == (20.0, False, True)
    assert (b.clear_seconds, b.cleared_before_restore, b.passed) == (-91.0, True, True)
    assert (c.clear_seconds, c.state_now, c.passed) == (None, "ALARM", False)
    s = summary({"phase1": fired}, [a, b, c], 10.0, 30.0)
    assert s["passed"] is False and [x["alarm"] for x in s["clear"]] == ["a", "b", "c"]
    assert s["phases"]["phase1"][0]["detection_seconds"] == 3.0


def test_results_follow_prometheus_naming_and_leave_out_what_was_not_measured() -> None:
    s = {
        "run_id": "20261201T000000Z-abcdef", "verdict": "failed", "time_scale": 30.0, "duration_seconds": 150.0,
        "downtime_seconds": 0.0, "finished_at": "2026-12-01T00:02:30+00:00",
        "phases": [{"name": "phase1", "rto_seconds": 1.2, "rto_target_seconds": 6.0, "passed": True},
                   {"name": "phase2-data", "rto_seconds": None, "rto_target_seconds": 30.0, "passed": False}],
        "rpo_seconds": None, "rpo_target_seconds": 10.0,
        "alarms": {"detection_objective_seconds": 20.0, "clear_objective_seconds": 50.0,
                   "phases": {"phase1": [{"alarm": "unhealthy-hosts", "detection_seconds": 4.0, "notification_seconds": None}]},
                   "clear": [{"alarm": "unhealthy-hosts", "clear_seconds": -3.0}]},
    }
    got = samples(s)
    names = {x.name for x in got}
    assert all(re.fullmatch(r"dr_drill_[a-z0-9_]+", n) for n in names)
    assert ("dr_drill_phase_rto_seconds", {"phase": "phase2-data"}) not in [(x.name, x.labels) for x in got]  # not measured
    assert "dr_drill_rpo_seconds" not in names and "dr_drill_alarm_notification_seconds" not in names
    (info,) = [x for x in got if x.name == "dr_drill_info"]
    assert info.value == 1.0 and info.labels == {"run_id": s["run_id"], "verdict": "failed"}
    assert [x.value for x in got if x.name == "dr_drill_passed"] == [0.0]
    assert [(x.labels, x.value) for x in got if x.name == "dr_drill_alarm_detection_seconds"] == [
        ({"phase": "phase1", "alarm": "unhealthy-hosts"}, 4.0)]
