"""The lab's CloudWatch alarms through the production SDK: seeded as the design has them, a state change
goes into DescribeAlarmHistory and out through SNS — to the chat stand-in over HTTP (SNS's delivery
shape: SubscriptionConfirmation first, then Notification JSON) and to the drill's receipts queue."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from drivers.cloudwatch import parse_receipt
from lab.client import LabProcess

pytestmark = [pytest.mark.lab]


@pytest.fixture(scope="module")
def lab() -> Iterator[dict[str, Any]]:
    proc = LabProcess(30.0)
    try:
        yield proc.start()
    finally:
        proc.stop()


def client(e: dict[str, Any], service: str) -> Any:
    return boto3.client(service, region_name=e["region"], endpoint_url=e["aws_endpoint"],
                        aws_access_key_id=e["aws_access_key_id"], aws_secret_access_key=e["aws_secret_access_key"])


def test_the_designs_alarms_are_seeded_with_actions_and_evaluated(lab: dict[str, Any]) -> None:
    cw = client(lab, "cloudwatch")
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms()["MetricAlarms"]}
    assert {"unhealthy-hosts", "alb-5xx-errors-high", "node-count-low", "rds-cpu-high"} <= set(alarms)
    five = alarms["alb-5xx-errors-high"]
    assert (five["Namespace"], five["MetricName"], five["Statistic"], five["Period"], five["Threshold"],
            five["ComparisonOperator"], five["TreatMissingData"]) == (
        "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum", 300, 10.0, "GreaterThanOrEqualToThreshold", "notBreaching")
    for a in alarms.values():
        assert a["ActionsEnabled"] and a["AlarmActions"] == [lab["alarm_topic_arn"]] == a["OKActions"]
        assert a["StateValue"] == "OK", (a["AlarmName"], a["StateReason"])  # evaluated: no longer INSUFFICIENT_DATA


def test_a_state_change_is_in_the_history_and_delivered_to_chat_and_the_receipts_queue(lab: dict[str, Any]) -> None:
    cw, sqs = client(lab, "cloudwatch"), client(lab, "sqs")
    since = time.time()
    cw.set_alarm_state(AlarmName="rds-cpu-high", StateValue="ALARM", StateReason="lab test: forced")

    # History: the StateUpdate with old and new state, then the SNS action.
    deadline = time.monotonic() + 10
    while True:
        items = cw.describe_alarm_history(AlarmName="rds-cpu-high", ScanBy="TimestampAscending",
                                          StartDate=since - 1)["AlarmHistoryItems"]
        if any(i["HistoryItemType"] == "Action" for i in items) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    updates = [json.loads(i["HistoryData"]) for i in items if i["HistoryItemType"] == "StateUpdate"]
    forced = [u for u in updates if u["newState"].get("stateReason") == "lab test: forced"]
    assert len(forced) == 1 and forced[0]["oldState"]["stateValue"] == "OK" and forced[0]["newState"]["stateValue"] == "ALARM"
    assert any(i["HistoryItemType"] == "Action" and "Successfully executed action" in i["HistorySummary"] for i in items)

    # The chat stand-in: the subscription was confirmed before anything else, then the notification.
    deadline = time.monotonic() + 10
    while True:
        messages = httpx.get(lab["chat_messages_url"], timeout=5).json()
        notes = [m for m in messages if m["type"] == "Notification" and (m.get("alarm") or {}).get("AlarmName") == "rds-cpu-high"
                 and m["alarm"]["NewStateValue"] == "ALARM" and m["received_at"] >= since]
        if notes or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert notes, messages
    kinds = [m["type"] for m in messages]
    assert kinds[:2] == ["SubscriptionConfirmation", "confirmed"], kinds
    note = notes[0]
    assert note["headers"]["x-amz-sns-message-type"] == "Notification"
    assert note["headers"]["x-amz-sns-topic-arn"] == lab["alarm_topic_arn"]
    assert note["body"]["Subject"] == 'ALARM: "rds-cpu-high" in Asia Pacific (Seoul)'
    assert note["alarm"]["OldStateValue"] == "OK" and note["alarm"]["NewStateReason"] == "lab test: forced"

    # The receipts queue (subscribed beside the chat): what the drill reads as "notified".
    deadline, receipt = time.monotonic() + 10, None
    while receipt is None and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=lab["alarm_receipts_queue_url"], MaxNumberOfMessages=10,
                                     AttributeNames=["SentTimestamp"]).get("Messages", []):
            r = parse_receipt(m)
            if r is not None and r.alarm == "rds-cpu-high" and r.state == "ALARM" and r.delivered_at >= since - 1:
                receipt = r
    assert receipt is not None and receipt.changed_at is not None and since - 1 <= receipt.changed_at <= receipt.delivered_at + 1

    # The lab evaluates it again at the next (scaled) minute: CPU is low, so it is OK again, as CloudWatch would.
    deadline = time.monotonic() + 10
    while cw.describe_alarms(AlarmNames=["rds-cpu-high"])["MetricAlarms"][0]["StateValue"] != "OK":
        assert time.monotonic() < deadline, "rds-cpu-high was not evaluated back to OK"
        time.sleep(0.2)
