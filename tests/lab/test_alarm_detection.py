"""Detection measured in a real Phase 1 drill: the design's alarms fire, are notified, and one alarm's
timing agrees with its own evaluation rule against the lab's ground truth.

Uses the session's Phase 1 drill (tests/lab/conftest.py): its summary.json, its report and the lab's
event log in its evidence.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from lab.aws.alarm_seed import alarm_definitions
from lab.events import read_events

pytestmark = [pytest.mark.lab, pytest.mark.slow]
SAMPLE_TICK = 0.2  # lab.monitoring samples 10 times a (scaled) minute: 60 / 30 / 10 s


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_each_expected_alarm_fires_and_is_notified_within_the_detection_objective(phase1_drill: Any) -> None:
    summary = json.loads((phase1_drill.bundle / "summary.json").read_text())
    alarms = summary["alarms"]
    dets = {d["alarm"]: d for d in alarms["phases"]["phase1"]}
    assert set(dets) == {"unhealthy-hosts", "alb-5xx-errors-high", "node-count-low"}
    for d in dets.values():
        assert d["passed"], d
        assert 0 < d["detection_seconds"] <= d["notification_seconds"] <= d["objective_seconds"] == alarms["detection_objective_seconds"]
    # The report lists which alarm fired when.
    report = (phase1_drill.bundle / "report.md").read_text()
    for name in dets:
        assert f"alarm {name} (phase1)" in report and f"phase1 detection — {name} in ALARM after the fault" in report


def test_unhealthy_hosts_fires_within_one_evaluation_period_of_the_first_unhealthy_target(phase1_drill: Any) -> None:
    """unhealthy-hosts: Maximum of UnHealthyHostCount > 0, 1 datapoint of 1 × 60 s. CloudWatch evaluates it
    at the end of every minute over that minute: it must go to ALARM at the first (scaled) minute boundary
    after the ALB first marked a target unhealthy (the lab's event log), never before, and so within one
    period of it (plus one sampling tick)."""
    summary = json.loads((phase1_drill.bundle / "summary.json").read_text())
    scale = float(summary["time_scale"])
    (rule,) = [a for a in alarm_definitions(
        "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:loadbalancer/app/blue-alb/1",
        "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/blue-tg/1",
        "arn:aws:sns:ap-northeast-2:123456789012:blue-alarms") if a["AlarmName"] == "unhealthy-hosts"]
    assert (rule["EvaluationPeriods"], rule["DatapointsToAlarm"], rule["Statistic"]) == (1, 1, "Maximum")
    period = rule["Period"] / scale
    fault = epoch(summary["phases"][0]["fault_at"])
    events = read_events(phase1_drill.bundle / "lab-events.jsonl")
    unhealthy = [e["t"] for e in events if e["source"] == "alb" and e["event"] == "target unhealthy" and e["t"] >= fault]
    assert unhealthy, "the lab never marked an ALB target unhealthy after the fault"
    truth = unhealthy[0]
    (d,) = [d for d in summary["alarms"]["phases"]["phase1"] if d["alarm"] == "unhealthy-hosts"]
    fired = epoch(d["fired_at"])
    assert truth < fired <= truth + period + SAMPLE_TICK + 0.3, (fired - truth, period)
    # At a minute boundary of the lab's (scaled) clock, where CloudWatch evaluates.
    assert min(fired % period, period - fired % period) < 0.25, fired % period
    # The lab's event log and DescribeAlarmHistory (what the drill read) agree on the instant.
    [logged] = [e["t"] for e in events if e["event"] == "alarm ALARM" and e.get("alarm") == "unhealthy-hosts" and e["t"] >= fault][:1]
    assert abs(logged - fired) < 0.1
