"""Stop conditions on the team's own signals (`stop.alarms`, `stop.alertmanager`), as AWS FIS has them.

AWS FIS (User Guide, *Stop conditions for AWS FIS*): a stop condition is a CloudWatch alarm; "if a
stop condition is triggered (the alarm enters the ALARM state) during an experiment, AWS FIS
stops the experiment", and an experiment whose stop-condition alarm is already in ALARM does not
start. Here the same for the drill, plus Alertmanager alerts (Gremlin and Steadybit halt on
monitors the same way): before the first change every guard alarm must exist and not be in ALARM,
and nothing matching may fire; during the drill, the watchdog (steps.runtime) asks `fired` at
`stop.poll_seconds` and stops and unwinds on the first answer. A guard alarm's history is read as
well as its state, so an alarm that entered ALARM and left it between two looks still stops it.
"""
from __future__ import annotations

from drill.config import Target
from drill.evidence import iso
from drivers.aws import Aws
from drivers.safety import Refused


def check_before_start(target: Target, aws: Aws) -> list[str]:
    """Refuse to start when a guard signal is missing or already firing; notes of what was checked."""
    stop, notes = target.stop, []
    if stop.alarms:
        from drivers.cloudwatch import Alarms

        states = Alarms(aws).describe(list(stop.alarms))
        missing = [a for a in stop.alarms if a not in states]
        if missing:
            raise Refused(f"stop.alarms: no CloudWatch alarm named {', '.join(missing)}: a stop condition that "
                          "cannot fire protects nothing")
        firing = [f"{a} ({states[a].reason})" for a in stop.alarms if states[a].state == "ALARM"]
        if firing:
            raise Refused(f"stop condition already in ALARM before the first change: {'; '.join(firing)} (stop.alarms)")
        notes.append(f"stop conditions: CloudWatch alarms {', '.join(stop.alarms)} "
                     f"({', '.join(f'{a} {states[a].state}' for a in stop.alarms)})")
    if stop.alertmanager is not None:
        from drivers.alertmanager import firing as alerts

        try:
            now = alerts(stop.alertmanager.url, stop.alertmanager.matchers)
        except Exception as e:  # noqa: BLE001 — unreachable or not an Alertmanager: the condition could never fire
            raise Refused(f"stop.alertmanager: {stop.alertmanager.url} does not answer its v2 API: {type(e).__name__}: {e}") from None
        if now:
            raise Refused(f"stop condition already firing before the first change: {_alert(now[0])} (stop.alertmanager)")
        notes.append(f"stop conditions: Alertmanager {stop.alertmanager.url} alerts matching {stop.alertmanager.matchers}")
    return notes


def fired(target: Target, aws: Aws, since: float) -> str | None:
    """Why the drill must stop now (the first guard signal found firing since `since`), else None."""
    stop = target.stop
    if stop.alarms:
        from drivers.cloudwatch import Alarms

        alarms = Alarms(aws)
        states = alarms.describe(list(stop.alarms))
        for name in stop.alarms:
            st = states.get(name)
            if st is not None and st.state == "ALARM":
                return f"stop condition: CloudWatch alarm {name} is in ALARM: {st.reason} (stop.alarms)"
            entered = next((t for t in alarms.transitions(name, since) if t.new == "ALARM"), None)
            if entered is not None:
                return (f"stop condition: CloudWatch alarm {name} entered ALARM at {iso(entered.at)}: {entered.reason} "
                        "(stop.alarms)")
    if stop.alertmanager is not None:
        from drivers.alertmanager import firing as alerts

        now = alerts(stop.alertmanager.url, stop.alertmanager.matchers)
        if now:
            return f"stop condition: Alertmanager alert {_alert(now[0])} is firing (stop.alertmanager)"
    return None


def _alert(a: object) -> str:
    labels = getattr(a, "labels", {})
    name = labels.get("alertname", "(no alertname)")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "alertname")
    return f"{name}{{{rest}}} since {getattr(a, 'starts_at', '?')}"
