"""drill.rpo: the loss window of the pre-fault backup, the schedule's worst case, measurement errors."""
from __future__ import annotations

import pytest

from drill.rpo import BackupTimes, assess, newest_completed_before, worst_case_loss

# A backup every 10 s, each taking 0.4 s to dump and upload; Last-Modified + 1 s resolution.
SCHEDULE = [BackupTimes(f"b{k}", 100.0 + 10 * k, 100.0 + 10 * k + 0.4 + 1.0) for k in range(6)]


def test_only_backups_listed_before_the_fault_are_eligible() -> None:
    listed = {"b0", "b1", "b2"}  # b3.. completed after the fault: they do not exist in the disaster
    assert newest_completed_before(SCHEDULE, listed).name == "b2"
    assert newest_completed_before(SCHEDULE, set()) is None


def test_the_worst_case_is_interval_plus_backup_time() -> None:
    assert worst_case_loss(SCHEDULE) == pytest.approx(10 + 1.4)
    assert worst_case_loss(SCHEDULE[:1]) is None
    # A missed backup widens it: what a fault during the gap would have lost.
    assert worst_case_loss([SCHEDULE[0], SCHEDULE[2]]) == pytest.approx(20 + 1.4)


def test_loss_window_vs_target_and_the_bound() -> None:
    r = assess(127.5, SCHEDULE[2], 10.0, SCHEDULE, None)
    assert r["rpo_seconds"] == pytest.approx(7.5) and r["passed"] and r["error"] is None
    assert r["worst_case_seconds"] == pytest.approx(11.4) and r["worst_case_within_target"] is False
    assert r["rpo_by_canary_seconds"] is None
    # A fault just before b3 completed: b2 is the newest eligible, and the window is over the target.
    late = assess(130.3, SCHEDULE[2], 10.0, SCHEDULE, 119.9)
    assert late["rpo_seconds"] == pytest.approx(10.3) and not late["passed"] and late["error"] is None
    assert late["rpo_by_canary_seconds"] == pytest.approx(10.4)


def test_a_negative_rpo_is_an_error_never_clamped() -> None:
    r = assess(125.0, SCHEDULE[3], 10.0, SCHEDULE, None)  # b3 started at 130, after the fault
    assert r["rpo_seconds"] == pytest.approx(-5.0) and not r["passed"] and "negative RPO" in r["error"]


def test_a_canary_newer_than_the_backup_is_an_error() -> None:
    r = assess(127.5, SCHEDULE[2], 10.0, SCHEDULE, 125.0)  # b2 completed by 121.4
    assert not r["passed"] and "not that backup's" in r["error"]
