"""RPO of the disaster the drill rehearses: what a loss of the AWS side at the fault instant costs.

Core module: stdlib only. Instants are epoch seconds (wall clock): backups are stamped by the
backup job's host, faults by the drill's.

* Eligible backups are those that had *completed* (were listed in Blob Storage) before the fault:
  the AWS side, its backup job included, is treated as lost at the fault, so nothing dumped or
  uploaded after it exists in the disaster.
* The loss window (the RPO figure) is `fault − the restored backup's consistency point`. With
  `mysqldump --single-transaction` the consistency point is the snapshot the dump opens as it
  starts, so the dump's start is used: everything committed before it is restored, everything
  after it is lost. (It overstates the loss by the dump's connect time: never kinder.)
* A negative window means a backup stamped after the fault was restored (a selection error, or
  the backup host's clock ahead of the drill's): an error in the measurement, reported as is.
* Worst case of a schedule: a fault just before a backup completes loses everything since the
  previous backup *started*: `max over consecutive backups (completed(k+1) − started(k))` =
  interval + the time a backup takes to dump and upload. With a backup every RPO that is more
  than the RPO, whatever a single drill happened to measure.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackupTimes:
    name: str
    started: float  # the dump's start (its consistency point)
    completed_by: float  # the upload had finished by then (Blob's Last-Modified + its resolution)


def newest_completed_before(backups: Sequence[BackupTimes], listed_before_fault: set[str]) -> BackupTimes | None:
    """The newest (by start) of the backups that were listed, i.e. complete, before the fault."""
    eligible = [b for b in backups if b.name in listed_before_fault]
    return max(eligible, key=lambda b: (b.started, b.name), default=None)


def worst_case_loss(backups: Sequence[BackupTimes]) -> float | None:
    """The longest loss window any fault instant could have met on the observed schedule (None with
    fewer than two backups)."""
    ordered = sorted(backups, key=lambda b: (b.started, b.name))
    pairs = [(b.completed_by - a.started) for a, b in itertools.pairwise(ordered)]
    return max(pairs) if pairs else None


def assess(
    fault_t: float,
    restored: BackupTimes,
    target_seconds: float,
    schedule: Sequence[BackupTimes],
    newest_canary_t: float | None,
) -> dict[str, Any]:
    """The RPO record of a drill: measured window vs target, the schedule's worst case, and errors."""
    window = fault_t - restored.started
    worst = worst_case_loss(schedule)
    error = None
    if window < 0:
        error = (f"negative RPO ({window:.3f}s): backup {restored.name} is stamped after the fault, so it cannot "
                 "have completed before it (a wrong backup was restored, or the backup host's clock is ahead)")
    canary_window = None if newest_canary_t is None else fault_t - newest_canary_t
    if error is None and newest_canary_t is not None and newest_canary_t > restored.completed_by:
        error = (f"a canary written at {newest_canary_t:.3f} was restored from backup {restored.name}, which had "
                 f"completed by {restored.completed_by:.3f}: the restored data is not that backup's")
    return {
        "rpo_seconds": round(window, 3),
        "rpo_target_seconds": round(target_seconds, 3),
        "rpo_by_canary_seconds": None if canary_window is None else round(canary_window, 3),
        "worst_case_seconds": None if worst is None else round(worst, 3),
        "worst_case_within_target": None if worst is None else worst <= target_seconds,
        "error": error,
        "passed": error is None and window <= target_seconds,
    }
