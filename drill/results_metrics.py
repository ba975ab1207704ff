"""A drill's figures as Prometheus samples: what the team's monitoring gets from each drill.

Named as Prometheus's conventions ask (*Metric and label naming*): one `dr_drill_` prefix, base
units in the name (`_seconds`), booleans as 0/1 gauges, an `_info` metric carrying the run id and
verdict as labels with the value 1 (so the run id never multiplies every series), phases and alarms
as labels. Values are what the drill measured on its target (wall seconds; `dr_drill_time_scale`
says how fast the target plays time: 1 in production). A figure not measured is left out, never 0.
No SDK imports: drivers.monitoring turns these into prometheus-client gauges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Sample:
    name: str
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def samples(summary: dict[str, Any]) -> list[Sample]:
    s = summary
    out = [
        Sample("dr_drill_info", "The drill run: its id, target and verdict (value 1).", 1.0,
               {"run_id": str(s["run_id"]), "verdict": str(s["verdict"])}),
        Sample("dr_drill_passed", "1 if the drill passed (every objective met, everything put back), else 0.",
               1.0 if s["verdict"] == "passed" else 0.0),
        Sample("dr_drill_time_scale", "How much faster than real time the target plays (1 in production).",
               float(s.get("time_scale") or 1.0)),
        Sample("dr_drill_duration_seconds", "Wall-clock duration of the drill.", float(s.get("duration_seconds") or 0.0)),
        Sample("dr_drill_downtime_seconds", "Time users got errors during the drill.", float(s.get("downtime_seconds") or 0.0)),
    ]
    finished = s.get("finished_at")
    if finished:
        out.append(Sample("dr_drill_last_run_timestamp_seconds", "When the drill finished (Unix time).",
                          datetime.fromisoformat(str(finished).replace("Z", "+00:00")).timestamp()))
    for ph in s.get("phases") or []:
        labels = {"phase": str(ph["name"])}
        if ph.get("rto_seconds") is not None:
            out.append(Sample("dr_drill_phase_rto_seconds", "Measured recovery time of the phase.", float(ph["rto_seconds"]), labels))
        out.append(Sample("dr_drill_phase_rto_target_seconds", "The phase's recovery time objective.",
                          float(ph["rto_target_seconds"]), labels))
        out.append(Sample("dr_drill_phase_passed", "1 if the phase met its objective, else 0.", 1.0 if ph["passed"] else 0.0, labels))
    if s.get("rpo_seconds") is not None:
        out.append(Sample("dr_drill_rpo_seconds", "Measured data-loss window of the restore.", float(s["rpo_seconds"])))
    if s.get("rpo_target_seconds") is not None:
        out.append(Sample("dr_drill_rpo_target_seconds", "The recovery point objective.", float(s["rpo_target_seconds"])))
    alarms = s.get("alarms") or {}
    if alarms.get("detection_objective_seconds") is not None:
        out.append(Sample("dr_drill_alarm_detection_target_seconds", "The detection objective: fault to alarm and notification.",
                          float(alarms["detection_objective_seconds"])))
    for phase, dets in (alarms.get("phases") or {}).items():
        for d in dets:
            labels = {"phase": str(phase), "alarm": str(d["alarm"])}
            if d.get("detection_seconds") is not None:
                out.append(Sample("dr_drill_alarm_detection_seconds", "Fault to the alarm entering ALARM.",
                                  float(d["detection_seconds"]), labels))
            if d.get("notification_seconds") is not None:
                out.append(Sample("dr_drill_alarm_notification_seconds", "Fault to the alarm's notification delivered.",
                                  float(d["notification_seconds"]), labels))
    if alarms.get("clear_objective_seconds") is not None:
        out.append(Sample("dr_drill_alarm_clear_target_seconds", "The objective for alarms to be OK again after failback.",
                          float(alarms["clear_objective_seconds"])))
    for c in alarms.get("clear") or []:
        if c.get("clear_seconds") is not None:
            out.append(Sample("dr_drill_alarm_clear_seconds", "Failback to the alarm back to OK (negative: it cleared before).",
                              float(c["clear_seconds"]), {"alarm": str(c["alarm"])}))
    return out
