"""CloudWatch alarms and their notifications, through boto3: read only.

- `Alarms`: the alarms' definitions and states (DescribeAlarms) and their state changes
  (DescribeAlarmHistory, `StateUpdate` items: each one's time, old and new state, reason).
- `Receipts`: the alarms' notifications as SNS delivered them to an SQS queue subscribed to the
  alarm topic (the SNS envelope's Message is CloudWatch's alarm JSON; SQS's `SentTimestamp` is when
  SNS delivered it). Messages are deleted once read: the queue is the drill's own.
"""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from drill.detection import AlarmState, Receipt, Transition
from drivers.aws import Aws


class Alarms:
    def __init__(self, aws: Aws) -> None:
        self.cw = aws.client("cloudwatch")

    def describe(self, names: list[str]) -> dict[str, AlarmState]:
        """The named alarms that exist (absent ones are simply not in the answer)."""
        out: dict[str, AlarmState] = {}
        for i in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            pages = self.cw.get_paginator("describe_alarms").paginate(AlarmNames=names[i:i + 100], AlarmTypes=["MetricAlarm"])
            for page in pages:
                for a in page.get("MetricAlarms", []):
                    out[a["AlarmName"]] = AlarmState(
                        name=a["AlarmName"], state=a["StateValue"], reason=a.get("StateReason", ""),
                        updated_at=_epoch(a.get("StateUpdatedTimestamp")), actions_enabled=bool(a.get("ActionsEnabled")),
                        alarm_actions=list(a.get("AlarmActions") or []), ok_actions=list(a.get("OKActions") or []),
                        definition={k: a.get(k) for k in ("Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods",
                                                          "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData")},
                    )
        return out

    def transitions(self, name: str, since: float) -> list[Transition]:
        """The alarm's state changes from `since` (epoch seconds) on, oldest first."""
        out: list[Transition] = []
        pages = self.cw.get_paginator("describe_alarm_history").paginate(
            AlarmName=name, HistoryItemType="StateUpdate", StartDate=datetime.fromtimestamp(since, UTC),
            ScanBy="TimestampAscending")
        for page in pages:
            for item in page.get("AlarmHistoryItems", []):
                data = json.loads(item.get("HistoryData") or "{}")
                new, old = data.get("newState") or {}, data.get("oldState") or {}
                out.append(Transition(alarm=name, at=_epoch(item["Timestamp"]) or since, old=str(old.get("stateValue", "")),
                                      new=str(new.get("stateValue", "")), reason=str(new.get("stateReason", ""))))
        return sorted(out, key=lambda t: t.at)


class Receipts:
    """Alarm notifications delivered to an SQS queue subscribed to the alarm topic, read as they come."""

    def __init__(self, aws: Aws, queue_url: str) -> None:
        self.sqs = aws.client("sqs")
        self.queue_url = queue_url
        self.seen: list[Receipt] = []
        self._lock = threading.Lock()

    def drain(self) -> list[Receipt]:
        """Read (and delete) what has arrived; every receipt so far, oldest first."""
        with self._lock:
            while True:
                got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               AttributeNames=["SentTimestamp"]).get("Messages", [])
                if not got:
                    break
                for m in got:
                    r = parse_receipt(m)
                    if r is not None:
                        self.seen.append(r)
                for m in got:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            return sorted(self.seen, key=lambda r: r.delivered_at)


def parse_receipt(message: dict[str, Any]) -> Receipt | None:
    """An SQS message holding SNS's envelope of a CloudWatch alarm notification, or None."""
    try:
        envelope = json.loads(message["Body"])
        alarm = json.loads(envelope["Message"]) if isinstance(envelope.get("Message"), str) else envelope
        delivered = int(message.get("Attributes", {}).get("SentTimestamp")) / 1000.0
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(alarm, dict) or "AlarmName" not in alarm or "NewStateValue" not in alarm:
        return None
    changed = _epoch(alarm.get("StateChangeTime"))
    return Receipt(alarm=str(alarm["AlarmName"]), state=str(alarm["NewStateValue"]), delivered_at=delivered,
                   changed_at=changed, subject=str(envelope.get("Subject") or ""))


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value)
    # CloudWatch's notification form: 2025-12-01T10:15:00.123+0000
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
