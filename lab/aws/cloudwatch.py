"""CloudWatch alarms in the lab: what moto stores, corrected to what CloudWatch does with it.

moto keeps alarms and metric data but never evaluates an alarm (lab.alarm_eval does, through
`set_state` here), starts every alarm `OK`, has no DescribeAlarmHistory and runs no action when a
state changes. Corrected, per the CloudWatch User Guide (*Using Amazon CloudWatch alarms*:
"Metric alarm states", "Alarm actions") and API Reference (PutMetricAlarm, SetAlarmState,
DescribeAlarmHistory):
- a new alarm is `INSUFFICIENT_DATA` ("Unchecked: Initial alarm creation") until evaluated;
- every state change — the evaluator's or SetAlarmState's — is a `StateUpdate` history item
  ("Alarm updated from OK to ALARM", HistoryData JSON with oldState/newState and their reasons);
  creating or updating an alarm is a `ConfigurationUpdate` item;
- a state change runs the alarm's actions for the new state (AlarmActions, OKActions,
  InsufficientDataActions) when ActionsEnabled: each SNS topic is sent the CloudWatch alarm
  notification JSON (AlarmName, NewStateValue, NewStateReason, StateChangeTime, Trigger, …), and an
  `Action` history item says so. SetAlarmState runs them too ("When the updated state differs from
  the previous value, the action configured for the appropriate state is invoked");
- DescribeAlarmHistory answers AlarmName, HistoryItemType, StartDate, EndDate, ScanBy and
  MaxRecords/NextToken as the API does.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.core.responses import ActionResult

REGION_NAMES = {"ap-northeast-2": "Asia Pacific (Seoul)", "us-east-1": "US East (N. Virginia)"}
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")

# Publishes (topic ARN, subject, message) to SNS in-process; set by install().
Publisher = Callable[[str, str, str], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_ms(dt: datetime) -> str:
    """CloudWatch's timestamp form in HistoryData and notifications: 2025-12-01T10:15:00.123+0000."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


class AlarmHistory:
    """History items per alarm name, newest last (CloudWatch keeps 30 days: a lab lives less)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def add(self, alarm: Any, item_type: str, summary: str, data: dict[str, Any], at: datetime | None = None) -> None:
        item = {"AlarmName": alarm.name, "AlarmType": "MetricAlarm", "Timestamp": at or utcnow(),
                "HistoryItemType": item_type, "HistorySummary": summary, "HistoryData": json.dumps(data)}
        with self._lock:
            self._items.append(item)

    def query(self, name: str | None, item_type: str | None, start: datetime | None, end: datetime | None,
              newest_first: bool) -> list[dict[str, Any]]:
        with self._lock:
            items = [i for i in self._items if (name is None or i["AlarmName"] == name)
                     and (item_type is None or i["HistoryItemType"] == item_type)
                     and (start is None or i["Timestamp"] >= start) and (end is None or i["Timestamp"] <= end)]
        return list(reversed(items)) if newest_first else items


class Alarms:
    """The lab's CloudWatch alarm behaviour around moto's alarm objects."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.history = AlarmHistory()
        self.publish: Publisher | None = None
        self._lock = threading.RLock()

    def backend(self) -> Any:
        return cw_models.cloudwatch_backends[self.account_id][self.region]

    def set_state(self, alarm: Any, state: str, reason: str, reason_data: dict[str, Any] | str | None = None) -> bool:
        """Change `alarm`'s state as CloudWatch does: history, then actions. False if unchanged."""
        if state not in STATES:
            raise ValueError(f"unknown alarm state {state!r}")
        data = reason_data if isinstance(reason_data, str) or reason_data is None else json.dumps(reason_data)
        with self._lock:
            old, old_reason = alarm.state_value, alarm.state_reason
            if old == state:
                return False
            now = utcnow()
            alarm.state_value, alarm.state_reason, alarm.state_reason_data = state, reason, data or "{}"
            alarm.state_updated_timestamp = now
            self.history.add(alarm, "StateUpdate", f"Alarm updated from {old} to {state}", {
                "version": "1.0",
                "oldState": {"stateValue": old, "stateReason": old_reason},
                "newState": {"stateValue": state, "stateReason": reason,
                             **({"stateReasonData": json.loads(data)} if data else {})},
            }, at=now)
            self._run_actions(alarm, old, now)
            return True

    def _run_actions(self, alarm: Any, old: str, at: datetime) -> None:
        if not alarm.actions_enabled or self.publish is None:
            return
        actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
                   "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[alarm.state_value] or []
        for arn in actions:
            if not str(arn).startswith("arn:aws:sns:"):
                continue  # Auto Scaling / EC2 / SSM actions: nothing in the lab acts on them
            subject = f'{alarm.state_value}: "{alarm.name}" in {REGION_NAMES.get(self.region, self.region)}'
            try:
                self.publish(arn, subject[:100], json.dumps(notification(alarm, old, at, self.account_id, self.region)))
                self.history.add(alarm, "Action", f"Successfully executed action {arn}",
                                 {"actionState": "Succeeded", "stateUpdateTimestamp": int(at.timestamp() * 1000),
                                  "notificationResource": arn, "publishedMessage": {"subject": subject}})
            except Exception as e:  # noqa: BLE001 — a failed action is history too, as in CloudWatch
                self.history.add(alarm, "Action", f"Failed to execute action {arn}",
                                 {"actionState": "Failed", "notificationResource": arn, "error": repr(e)})


def notification(alarm: Any, old: str, at: datetime, account_id: str, region: str) -> dict[str, Any]:
    """The JSON CloudWatch sends to an SNS topic when an alarm changes state."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": iso_ms(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": iso_ms(at),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {
            "MetricName": alarm.metric_name, "Namespace": alarm.namespace, "StatisticType": "Statistic",
            "Statistic": (alarm.statistic or "").upper() or None, "Unit": alarm.unit,
            "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
            "Period": int(alarm.period), "EvaluationPeriods": int(alarm.evaluation_periods),
            "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
            "ComparisonOperator": alarm.comparison_operator, "Threshold": float(alarm.threshold),
            "TreatMissingData": alarm.treat_missing_data or "missing", "EvaluateLowSampleCountPercentile": "",
        },
    }


_alarms: Alarms | None = None


def _current() -> Alarms | None:
    """The installed Alarms (read through a call: mypy would keep install()'s narrowing of the global)."""
    return _alarms


def install(alarms: Alarms) -> None:
    """Patch moto's CloudWatch (in this process) to behave as above. Idempotent per process."""
    global _alarms
    first = _alarms is None
    _alarms = alarms
    if not first:
        return

    orig_init = cw_models.Alarm.__init__

    def alarm_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        # A new alarm has not been evaluated: INSUFFICIENT_DATA until its first evaluation.
        self.state_value = "INSUFFICIENT_DATA"
        self.state_reason = "Unchecked: Initial alarm creation"

    cw_models.Alarm.__init__ = alarm_init  # type: ignore[method-assign]

    orig_put = cw_models.CloudWatchBackend.put_metric_alarm

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.alarms.get(name)
        alarm = orig_put(self, name, *args, **kwargs)
        if existing is not None:
            # PutMetricAlarm on an existing alarm updates its configuration, not its state.
            alarm.state_value, alarm.state_reason = existing.state_value, existing.state_reason
            alarm.state_reason_data, alarm.state_updated_timestamp = existing.state_reason_data, existing.state_updated_timestamp
        if _alarms is not None:
            verb = "updated" if existing is not None else "created"
            _alarms.history.add(alarm, "ConfigurationUpdate", f'Alarm "{name}" {verb}',
                                {"type": "Update" if existing is not None else "Create", "version": "1.0"})
        return alarm

    cw_models.CloudWatchBackend.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]

    orig_set = cw_models.CloudWatchBackend.set_alarm_state

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        lab = _current()
        if lab is None or alarm_name not in self.alarms:
            return orig_set(self, alarm_name, reason, reason_data, state_value)  # moto's own errors
        if reason_data is not None:
            json.loads(reason_data)  # moto's InvalidFormat check is in orig_set; keep the shape honest
        if state_value not in STATES:
            return orig_set(self, alarm_name, reason, reason_data, state_value)
        lab.set_state(self.alarms[alarm_name], state_value, reason, reason_data)

    cw_models.CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]

    def describe_alarm_history(self: Any) -> ActionResult:
        name = self._get_param("AlarmName")
        item_type = self._get_param("HistoryItemType")
        start, end = self._get_param("StartDate"), self._get_param("EndDate")
        newest_first = (self._get_param("ScanBy") or "TimestampDescending") == "TimestampDescending"
        limit = int(self._get_param("MaxRecords") or 100)
        offset = int(self._get_param("NextToken") or 0)
        lab = _current()
        items = lab.history.query(name, item_type, _as_dt(start), _as_dt(end), newest_first) if lab is not None else []
        page = items[offset:offset + limit]
        result: dict[str, Any] = {"AlarmHistoryItems": page}
        if offset + limit < len(items):
            result["NextToken"] = str(offset + limit)
        return ActionResult(result)

    cw_responses.CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]


def _as_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
