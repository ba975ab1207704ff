"""The probe's timeline: samples, class intervals, downtime, RTO. Core module: stdlib only.

Rules (the numbers in a drill report mean exactly this):

* Each sample carries its vantage (where the user was: drill.vantages); the functions here take
  one vantage's samples at a time: a timeline is one user's experience.
* The instant of a sample is `seen` = `mono + latency_ms / 1000`: the monotonic instant the user
  had the answer (for a timeout, when the user gave up). Everything is ordered by `seen`; the
  functions sort their input themselves.
* The timeline is piecewise-constant. A sample's class holds from its `seen` until the next
  sample's `seen`, but for at most `max_gap` seconds: if the next sample is further away, the rest
  of the gap, `[seen + max_gap, next.seen)`, is *unobserved* and counted in no class (so a dead
  probe is never reported as downtime, nor as uptime).
* The last sample holds for 0 s, or, given an explicit `end`, until `min(end, seen + max_gap)`.
* Before the first sample nothing is known: with an explicit `start`, `[start, first.seen)` is
  unobserved.
* A *sustained* state of class X is a run of consecutive samples, all of class X, with no gap
  greater than `max_gap` between neighbours, at least `min_samples` samples and at least `sustain`
  seconds from the run's first `seen` to its last `seen`. Any sample of another class ends a run,
  so flapping never sustains. A run still in progress at the end of the timeline counts only if
  it already meets both bounds.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLASSES: tuple[str, ...] = ("aws", "maintenance", "azure", "error")
ERROR = "error"
DEFAULT_VANTAGE = "default"


@dataclass(frozen=True)
class Sample:
    """One probe request as the user saw it."""

    t: float  # wall clock (epoch s) at request start: for humans and cross-host correlation
    mono: float  # time.monotonic() at request start: the timeline's clock
    status: int  # HTTP status of the final response; 0 = no response
    latency_ms: float
    cls: str  # JSON key "class"
    error: str | None = None  # short exception text when there was no response
    vantage: str = DEFAULT_VANTAGE  # where the user was (probe.vantages[].name)
    edge: str | None = None  # the CDN edge location that answered (CloudFront's X-Amz-Cf-Pop), when it said
    # A remote worker's clock, corrected into the master's (drill.clocks): what was added to its own
    # readings, and how far that correction may be off. 0 for a probe on the drill's own host.
    clock_offset: float = 0.0
    clock_uncertainty: float = 0.0

    @property
    def seen(self) -> float:
        """The monotonic instant the user saw the answer."""
        return self.mono + self.latency_ms / 1000.0

    @property
    def wall_seen(self) -> float:
        """`seen` on the wall clock (approximate: wall and monotonic clocks may drift)."""
        return self.t + self.latency_ms / 1000.0


@dataclass(frozen=True)
class Interval:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_dict(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end, "duration": self.duration}


def dump_sample(sample: Sample) -> str:
    """One JSON line (no newline) in the probe's JSONL format."""
    d: dict[str, Any] = {
        "t": sample.t,
        "mono": sample.mono,
        "status": sample.status,
        "latency_ms": sample.latency_ms,
        "class": sample.cls,
        "error": sample.error,
        "vantage": sample.vantage,
    }
    if sample.edge is not None:
        d["edge"] = sample.edge
    if sample.clock_offset or sample.clock_uncertainty:
        d["clock_offset"] = sample.clock_offset
        d["clock_uncertainty"] = sample.clock_uncertainty
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


def parse_sample(line: str) -> Sample:
    """The inverse of dump_sample; raises ValueError/KeyError/TypeError on a bad line."""
    d = json.loads(line)
    if not isinstance(d, dict):
        raise ValueError("sample line is not a JSON object")
    err, edge = d.get("error"), d.get("edge")
    return Sample(
        t=float(d["t"]),
        mono=float(d["mono"]),
        status=int(d["status"]),
        latency_ms=float(d["latency_ms"]),
        cls=str(d["class"]),
        error=None if err is None else str(err),
        vantage=str(d.get("vantage") or DEFAULT_VANTAGE),  # written before vantages: the one probe
        edge=None if edge is None else str(edge),
        clock_offset=float(d.get("clock_offset") or 0.0),
        clock_uncertainty=float(d.get("clock_uncertainty") or 0.0),
    )


def load_timeline(path: str | Path) -> list[Sample]:
    """Samples of a JSONL file, sorted by `seen`.

    A bad LAST line is dropped: a killed (or still running) probe can leave half a line. A bad
    line anywhere else is real corruption and raises ValueError.
    """
    lines = [ln for ln in Path(path).read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    samples: list[Sample] = []
    for i, line in enumerate(lines):
        try:
            samples.append(parse_sample(line))
        except (ValueError, KeyError, TypeError) as e:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: bad sample on non-empty line {i + 1}: {e}") from e
    return sort_samples(samples)


def sort_samples(samples: Iterable[Sample]) -> list[Sample]:
    # Stable: equal `seen` keep their file order.
    return sorted(samples, key=lambda s: s.seen)


def _segments(samples: Sequence[Sample], max_gap: float, end: float | None) -> list[tuple[str, Interval]]:
    """(class, interval) each sample holds, per the module rules; zero-length ones dropped."""
    ordered = sort_samples(samples)
    out: list[tuple[str, Interval]] = []
    for i, s in enumerate(ordered):
        if i + 1 < len(ordered):
            stop = min(ordered[i + 1].seen, s.seen + max_gap)
        elif end is not None:
            stop = min(end, s.seen + max_gap)
        else:
            stop = s.seen
        if stop > s.seen:
            out.append((s.cls, Interval(s.seen, stop)))
    return out


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda x: x.start):
        if merged and iv.start <= merged[-1].end:
            if iv.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return merged


def class_intervals(samples: Sequence[Sample], cls: str, max_gap: float, end: float | None = None) -> list[Interval]:
    """Merged intervals during which the user saw class `cls`."""
    return _merge(iv for c, iv in _segments(samples, max_gap, end) if c == cls)


def downtime(samples: Sequence[Sample], max_gap: float, end: float | None = None) -> tuple[float, list[Interval]]:
    """Total seconds of class `error`, and its intervals. Unobserved time is not downtime."""
    ivs = class_intervals(samples, ERROR, max_gap, end)
    return sum((iv.duration for iv in ivs), 0.0), ivs


def unobserved(
    samples: Sequence[Sample], max_gap: float, start: float | None = None, end: float | None = None
) -> list[Interval]:
    """Intervals the probe did not cover: gap tails beyond `max_gap`, plus before the first sample
    (from `start`) and after the last one's `max_gap` (until `end`)."""
    ordered = sort_samples(samples)
    if not ordered:
        return [Interval(start, end)] if start is not None and end is not None and end > start else []
    out: list[Interval] = []
    if start is not None and start < ordered[0].seen:
        out.append(Interval(start, ordered[0].seen))
    for a, b in zip(ordered, ordered[1:]):
        if b.seen - a.seen > max_gap:
            out.append(Interval(a.seen + max_gap, b.seen))
    last_cover = ordered[-1].seen + max_gap
    if end is not None and end > last_cover:
        out.append(Interval(last_cover, end))
    return _merge(out)


def class_totals(samples: Sequence[Sample], max_gap: float, end: float | None = None) -> dict[str, float]:
    """Seconds per class; always has the four standard classes, plus any other class seen."""
    totals: dict[str, float] = {c: 0.0 for c in CLASSES}
    for c, iv in _segments(samples, max_gap, end):
        totals[c] = totals.get(c, 0.0) + iv.duration
    for s in samples:
        totals.setdefault(s.cls, 0.0)
    return totals


def _runs(samples: Sequence[Sample], max_gap: float) -> list[list[Sample]]:
    """Maximal runs of consecutive same-class samples with no gap > max_gap inside."""
    runs: list[list[Sample]] = []
    for s in sort_samples(samples):
        if runs and runs[-1][-1].cls == s.cls and s.seen - runs[-1][-1].seen <= max_gap:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


def _is_sustained(run: Sequence[Sample], sustain: float, min_samples: int) -> bool:
    return len(run) >= min_samples and run[-1].seen - run[0].seen >= sustain


def first_sustained(
    samples: Sequence[Sample],
    cls: str,
    after: float,
    sustain: float,
    min_samples: int = 3,
    max_gap: float = math.inf,
) -> float | None:
    """`seen` of the first sample at/after `after` that begins a sustained run of `cls`.

    Only samples with `seen >= after` are considered, so a state already in place at `after`
    (the fault had no visible effect) yields the first sample after it. RTO = result - fault.
    """
    considered = [s for s in samples if s.seen >= after]
    for run in _runs(considered, max_gap):
        if run[0].cls == cls and _is_sustained(run, sustain, min_samples):
            return run[0].seen
    return None


def first_sustained_sample(
    samples: Sequence[Sample],
    cls: str,
    after: float,
    sustain: float,
    min_samples: int = 3,
    max_gap: float = math.inf,
) -> Sample | None:
    """The first sample *sent* at/after `after` that begins a sustained run of `cls`.

    For RTO: a request observes the system when it is sent, so RTO = sample.mono - fault. Its
    latency is how long the page then took to load, which is not recovery time (and can be long
    when an origin times out before failover). Requests sent before `after` are not evidence of
    the state after it.
    """
    considered = [s for s in samples if s.mono >= after]
    for run in _runs(considered, max_gap):
        if run[0].cls == cls and _is_sustained(run, sustain, min_samples):
            return run[0]
    return None


def transitions(samples: Sequence[Sample], max_gap: float, sustain: float, min_samples: int = 3) -> list[dict[str, Any]]:
    """The sequence of sustained states, e.g. aws -> maintenance -> azure -> aws.

    Non-sustained runs (flaps, single errors) are left out; consecutive sustained runs of the same
    class (split by a blip or a probe gap) are merged into one state. `from`/`to` are the `seen`
    instants (monotonic) of the state's first and last sample; `wall_from`/`wall_to` the same on
    the wall clock.
    """
    states: list[dict[str, Any]] = []
    for run in _runs(samples, max_gap):
        if not _is_sustained(run, sustain, min_samples):
            continue
        if states and states[-1]["class"] == run[0].cls:
            st = states[-1]
            st["to"], st["wall_to"] = run[-1].seen, run[-1].wall_seen
            st["samples"] += len(run)
        else:
            states.append(
                {
                    "class": run[0].cls,
                    "from": run[0].seen,
                    "to": run[-1].seen,
                    "wall_from": run[0].wall_seen,
                    "wall_to": run[-1].wall_seen,
                    "samples": len(run),
                }
            )
    return states


def summarize(samples: Sequence[Sample], max_gap: float, end: float | None = None) -> dict[str, Any]:
    """Headline figures of a timeline (JSON-serialisable)."""
    ordered = sort_samples(samples)
    counts: dict[str, int] = {c: 0 for c in CLASSES}
    for s in ordered:
        counts[s.cls] = counts.get(s.cls, 0) + 1
    down_s, down_ivs = downtime(ordered, max_gap, end)
    gaps = unobserved(ordered, max_gap, end=end)
    return {
        "requests": len(ordered),
        "counts": counts,
        "seconds": class_totals(ordered, max_gap, end),
        "downtime_seconds": down_s,
        "downtime_intervals": [iv.as_dict() for iv in down_ivs],
        "unobserved_seconds": sum((iv.duration for iv in gaps), 0.0),
        "unobserved_intervals": [iv.as_dict() for iv in gaps],
        "max_gap": max_gap,
        "first_t": min((s.t for s in ordered), default=None),
        "last_t": max((s.t for s in ordered), default=None),
        "first_seen": ordered[0].seen if ordered else None,
        "last_seen": ordered[-1].seen if ordered else None,
    }
