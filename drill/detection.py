"""Detection is part of recovery: when the team's alarms fired, were delivered, and cleared.

From an alarm's state changes (its history) and the notifications SNS delivered, for a phase's
fault instant: fault → the alarm entering ALARM (`detection_seconds`) and → its ALARM notification
delivered (`notification_seconds`), each against the detection objective; from the instant the
primary was restored: → the alarm back to OK (`clear_seconds`), against the clear objective. An
alarm that went back to OK *before* the restore — while users were still without the primary —
is reported as such (`cleared_before_restore`): it stopped telling anyone about an outage that
was still going on. All instants are epoch seconds (the alarms' own clock and the drill's wall
clock: NTP-synchronised hosts). No SDK imports: the drivers read, this judges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drill.evidence import iso


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str
    reason: str
    updated_at: float | None
    actions_enabled: bool
    alarm_actions: list[str]
    ok_actions: list[str]
    definition: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    alarm: str
    at: float
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Receipt:
    """An alarm notification as delivered (to the receipts queue subscribed to the alarm topic)."""

    alarm: str
    state: str
    delivered_at: float
    changed_at: float | None = None
    subject: str = ""


@dataclass
class Detection:
    alarm: str
    phase: str
    fault_at: float
    objective_seconds: float
    fired_at: float | None = None
    reason: str | None = None
    notified_at: float | None = None

    @property
    def detection_seconds(self) -> float | None:
        return None if self.fired_at is None else round(self.fired_at - self.fault_at, 3)

    @property
    def notification_seconds(self) -> float | None:
        return None if self.notified_at is None else round(self.notified_at - self.fault_at, 3)

    @property
    def complete(self) -> bool:
        return self.fired_at is not None and self.notified_at is not None

    @property
    def passed(self) -> bool:
        return (self.complete and self.detection_seconds is not None and self.notification_seconds is not None
                and self.detection_seconds <= self.objective_seconds and self.notification_seconds <= self.objective_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"alarm": self.alarm, "phase": self.phase, "fault_at": iso(self.fault_at),
                "fired_at": None if self.fired_at is None else iso(self.fired_at), "detection_seconds": self.detection_seconds,
                "notified_at": None if self.notified_at is None else iso(self.notified_at),
                "notification_seconds": self.notification_seconds, "objective_seconds": round(self.objective_seconds, 3),
                "reason": self.reason, "passed": self.passed}


@dataclass
class Clearing:
    alarm: str
    restored_at: float
    objective_seconds: float
    cleared_at: float | None = None
    state_now: str | None = None

    @property
    def clear_seconds(self) -> float | None:
        return None if self.cleared_at is None else round(self.cleared_at - self.restored_at, 3)

    @property
    def cleared_before_restore(self) -> bool:
        return self.cleared_at is not None and self.cleared_at < self.restored_at

    @property
    def passed(self) -> bool:
        return (self.state_now == "OK" and self.clear_seconds is not None
                and self.clear_seconds <= self.objective_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"alarm": self.alarm, "restored_at": iso(self.restored_at),
                "cleared_at": None if self.cleared_at is None else iso(self.cleared_at), "clear_seconds": self.clear_seconds,
                "cleared_before_restore": self.cleared_before_restore, "state_now": self.state_now,
                "objective_seconds": round(self.objective_seconds, 3), "passed": self.passed}


def detect(phase: str, fault_at: float, expected: list[str], transitions: dict[str, list[Transition]],
           receipts: list[Receipt], objective_seconds: float) -> list[Detection]:
    """Per expected alarm: its first ALARM at or after the fault, and that ALARM's notification."""
    out = []
    for name in expected:
        d = Detection(name, phase, fault_at, objective_seconds)
        fired = next((t for t in transitions.get(name, []) if t.new == "ALARM" and t.at >= fault_at), None)
        if fired is not None:
            d.fired_at, d.reason = fired.at, fired.reason
            note = next((r for r in receipts if r.alarm == name and r.state == "ALARM" and r.delivered_at >= fired.at - 1.0
                         and (r.changed_at is None or r.changed_at >= fault_at)), None)
            if note is not None:
                d.notified_at = max(note.delivered_at, fired.at)
        out.append(d)
    return out


def clear(restored_at: float, fired: list[Detection], transitions: dict[str, list[Transition]],
          states: dict[str, AlarmState], objective_seconds: float) -> list[Clearing]:
    """Per alarm that fired: its first OK after it fired (before or after the restore), and its state now."""
    out = []
    for d in fired:
        c = Clearing(d.alarm, restored_at, objective_seconds, state_now=states[d.alarm].state if d.alarm in states else None)
        if d.fired_at is not None:
            ok = next((t for t in transitions.get(d.alarm, []) if t.new == "OK" and t.at >= d.fired_at), None)
            c.cleared_at = None if ok is None else ok.at
        out.append(c)
    return out


def summary(detections: dict[str, list[Detection]], clearings: list[Clearing] | None,
            detection_objective: float | None, clear_objective: float | None,
            not_evaluated: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """summary.json's `alarms`: every detection by phase, the clearing after failback, and whether all held;
    `not_evaluated`: expected alarms already not OK before the drill (listed, neither passed nor failed)."""
    dets = [d for ds in detections.values() for d in ds]
    passed = all(d.passed for d in dets) and (clearings is None or all(c.passed for c in clearings))
    return {
        "detection_objective_seconds": detection_objective,
        "clear_objective_seconds": clear_objective,
        "phases": {phase: [d.as_dict() for d in ds] for phase, ds in detections.items()},
        "clear": None if clearings is None else [c.as_dict() for c in clearings],
        "not_evaluated": list(not_evaluated or []),
        "passed": passed,
    }


def sentence(d: Detection) -> str:
    """One line for a checklist item: which alarm fired when."""
    if d.fired_at is None:
        return f"{d.alarm}: never entered ALARM after the fault (objective {d.objective_seconds:.1f}s)"
    note = ("its notification was not delivered" if d.notified_at is None
            else f"notified {d.notification_seconds:.2f}s after the fault")
    return (f"{d.alarm}: ALARM {d.detection_seconds:.2f}s after the fault ({iso(d.fired_at)}), {note}"
            f" — objective {d.objective_seconds:.1f}s: {'met' if d.passed else 'MISSED'}")
