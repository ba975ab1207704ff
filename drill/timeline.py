"""The probe's timeline: samples, class intervals, downtime, RTO. Core module: stdlib only.

Rules (the numbers in a drill report mean exactly this):

* Each sample carries its vantage (where the user was: drill.vantages); the functions here take
  one vantage's samples at a time: a timeline is one user's experience.
* A sample has two instants. `mono` is when the request was *sent*: the instant it observed the
  system. `seen` = `mono + latency_ms / 1000` is when the user had the answer (for a timeout, when
  the user gave up). With uneven latency the two orders differ: a slow request sent first can be
  answered last.
* What users experienced (class intervals, downtime, unobserved time, seconds per class) is
  ordered by `seen`. The timeline is piecewise-constant: a sample's class holds from its `seen`
  until the next sample's `seen`, but for at most `max_gap` seconds: if the next sample is further
  away, the rest of the gap, `[seen + max_gap, next.seen)`, is *unobserved* and counted in no class
  (so a dead probe is never reported as downtime, nor as uptime). The last sample holds for 0 s,
  or, given an explicit `end`, until `min(end, seen + max_gap)`. Before the first sample nothing
  is known: with an explicit `start`, `[start, first.seen)` is unobserved.
* The state of the system (sustained states, transitions, RTO) is ordered by `mono`, the instant
  each request observed it. A *sustained* state of class X is a run of consecutive samples in send
  order, all of class X, no two neighbours sent more than `max_gap` apart, with at least
  `min_samples` samples and at least `sustain` seconds from the run's first send to its last. Any
  sample of another class sent in between ends a run, so flapping never sustains. A run still in
  progress at the end of the timeline counts only if it already meets both bounds.
* RTO = the send instant of the first sample, sent at/after the fault, that begins a sustained run
  of the expected class: the earliest-sent sample of that run (`first_sustained_sample`). It
  depends on send instants and classes only, never on latency or the wall clock.
* Ties (equal instants) are broken by the sample's other fields, so the results never depend on
  the order of the input (file order, arrival order).
* `t` (the wall clock) is for humans and cross-host correlation only: it may step (NTP), so no
  duration is ever computed from it.
"""
from __future__ import annotations

import itertools
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
    address: str | None = None  # the server address the request went to (a probe that resolves names itself)

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
    if sample.address is not None:
        d["address"] = sample.address
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
        address=None if d.get("address") is None else str(d["address"]),
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


def _fields(s: Sample) -> tuple[Any, ...]:
    return (s.cls, s.status, s.latency_ms, s.t, s.error or "", s.vantage, s.edge or "")


def sort_samples(samples: Iterable[Sample]) -> list[Sample]:
    """By `seen` (when users had the answer); ties broken by the other fields, never by input order."""
    return sorted(samples, key=lambda s: (s.seen, s.mono, *_fields(s)))


def sort_sent(samples: Iterable[Sample]) -> list[Sample]:
    """By `mono` (when each request observed the system); ties broken by class first, so that
    latency never reorders requests sent at the same instant."""
    return sorted(samples, key=lambda s: (s.mono, s.cls, s.seen, *_fields(s)))


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
    for a, b in itertools.pairwise(ordered):
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
    """Maximal runs, in send order, of consecutive same-class samples sent at most max_gap apart."""
    runs: list[list[Sample]] = []
    for s in sort_sent(samples):
        if runs and runs[-1][-1].cls == s.cls and s.mono - runs[-1][-1].mono <= max_gap:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


def _is_sustained(run: Sequence[Sample], sustain: float, min_samples: int) -> bool:
    return len(run) >= min_samples and run[-1].mono - run[0].mono >= sustain


def first_sustained_sample(
    samples: Sequence[Sample],
    cls: str,
    after: float,
    sustain: float,
    min_samples: int = 3,
    max_gap: float = math.inf,
) -> Sample | None:
    """The first sample *sent* at/after `after` that begins a sustained run of `cls`: the RTO.

    A request observes the system when it is sent, so RTO = sample.mono - fault. Its latency is
    how long the page then took to load, which is not recovery time (and can be long when an
    origin times out before failover). Requests sent before `after` are not evidence of the state
    after it, so a state already in place at `after` yields the first sample sent after it.

    The answer is final only for a complete timeline: a request still in flight (sent, not yet
    answered) can later join or break a run. The drill re-evaluates every RTO on the complete
    timeline at the end of the run (steps.runtime).
    """
    considered = [s for s in samples if s.mono >= after]
    for run in _runs(considered, max_gap):
        if run[0].cls == cls and _is_sustained(run, sustain, min_samples):
            return run[0]  # runs are in send order: run[0] is the earliest-sent sample of the run
    return None


def transitions(samples: Sequence[Sample], max_gap: float, sustain: float, min_samples: int = 3) -> list[dict[str, Any]]:
    """The sequence of sustained states, e.g. aws -> maintenance -> azure -> aws.

    Built from the same send-order runs as the RTO. Non-sustained runs (flaps, single errors) are
    left out; consecutive sustained runs of the same class (split by a blip or a probe gap) are
    merged into one state. `from`/`to` are the send instants (monotonic) of the state's first and
    last sample; `wall_from`/`wall_to` the same on the wall clock (as the probe recorded it).
    """
    states: list[dict[str, Any]] = []
    for run in _runs(samples, max_gap):
        if not _is_sustained(run, sustain, min_samples):
            continue
        if states and states[-1]["class"] == run[0].cls:
            st = states[-1]
            st["to"], st["wall_to"] = run[-1].mono, run[-1].t
            st["samples"] += len(run)
        else:
            states.append(
                {
                    "class": run[0].cls,
                    "from": run[0].mono,
                    "to": run[-1].mono,
                    "wall_from": run[0].t,
                    "wall_to": run[-1].t,
                    "samples": len(run),
                }
            )
    return states


def summarize(samples: Sequence[Sample], max_gap: float, end: float | None = None) -> dict[str, Any]:
    """Headline figures of a timeline (JSON-serialisable)."""
    ordered = sort_samples(samples)
    sent = sort_sent(samples)
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
        # The wall clock of the first and last request sent (not min/max of `t`: the clock may step).
        "first_t": sent[0].t if sent else None,
        "last_t": sent[-1].t if sent else None,
        "first_seen": ordered[0].seen if ordered else None,
        "last_seen": ordered[-1].seen if ordered else None,
    }
