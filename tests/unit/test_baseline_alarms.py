"""steps.baseline.drill_diff: alarms the drill must leave as it found them, and those it need not."""
from __future__ import annotations

from steps.baseline import alarms_not_ok, drill_diff


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
