"""What every user saw, not one machine: the probe's timeline per vantage. Core module: stdlib only.

A vantage is a place users reach the site from (drill.config.VantageConfig); each sample carries
its vantage, and drill.timeline's rules apply to one vantage's samples at a time. Across vantages:

* **A phase's RTO per vantage**: from the phase's start to the first request *sent* that begins a
  sustained run of the expected class (drill.timeline.first_sustained_sample), on the master's clock
  (a remote worker's samples were corrected by drill.clocks; the correction's uncertainty is the
  RTO's). Each vantage ends in one of three states:
  - `measured`: it got there; if a probe gap preceded it, the gap's length is reported
    (`unobserved_before_seconds`): the true RTO may be shorter by up to that much;
  - `not reached`: its probe observed the site to the end of the wait and never saw the class;
  - `unobserved`: its samples stopped (the worker was killed, or lost its master) before it saw the
    class: nothing is known, and nothing is assumed — never counted as recovered.
* **The verdict** is on the worst vantage (`verdict_on: worst`) or a percentile (`pNN`, nearest rank
  over every vantage, a vantage that is not measured counting as never): unknown is never good.
* **The spread** is the first vantage's RTO to the last one's, over the measured ones. It means
  something only beyond the measurement's resolution: one probe interval (a vantage samples every
  interval, so two vantages that switched at the same instant can differ by up to that much) plus
  the two vantages' clock uncertainties.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from drill import timeline as tl

MEASURED, NOT_REACHED, UNOBSERVED = "measured", "not reached", "unobserved"
# Seconds past the longest silence still observed after which a vantage whose samples have stopped
# is taken as gone (its worker's batches arrive every 0.2 s: drivers/probe_locustfile.py).
DELIVERY_SLACK = 1.0


def split(samples: Iterable[tl.Sample], names: Sequence[str] = ()) -> dict[str, list[tl.Sample]]:
    """Samples per vantage (sorted by `seen`): the declared `names` first, in order, then any other seen."""
    out: dict[str, list[tl.Sample]] = {n: [] for n in names}
    for s in samples:
        out.setdefault(s.vantage, []).append(s)
    return {k: tl.sort_samples(v) for k, v in out.items()}


def alive(samples: Sequence[tl.Sample], now: float, max_gap: float) -> bool:
    """The vantage's samples still arrive: its last one is not older than `max_gap` + delivery."""
    return bool(samples) and now - samples[-1].seen <= max_gap + DELIVERY_SLACK


@dataclass(frozen=True)
class VantageRto:
    vantage: str
    state: str  # MEASURED, NOT_REACHED or UNOBSERVED
    rto_seconds: float | None
    reached_mono: float | None  # the sample's send instant (master clock)
    reached_t: float | None  # the same on the wall clock
    latency_ms: float | None
    edge: str | None  # the edge location that answered the reaching sample (or the last one)
    clock_uncertainty: float
    unobserved_before_seconds: float  # probe gaps between the start and the reaching sample
    last_sample_mono: float | None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("rto_seconds", "latency_ms", "clock_uncertainty", "unobserved_before_seconds"):
            if isinstance(d[k], float):
                d[k] = round(d[k], 6 if k == "clock_uncertainty" else 3)
        d["clock_uncertainty_seconds"] = d.pop("clock_uncertainty")
        return d


def phase_rtos(
    by_vantage: dict[str, list[tl.Sample]],
    cls: str,
    after: float,
    sustain: float,
    min_samples: int,
    max_gap: float,
    now: float,
) -> list[VantageRto]:
    """Each vantage's RTO for `cls` after `after` (monotonic), judged at `now` (the end of the wait)."""
    out = []
    for name, samples in by_vantage.items():
        reached = tl.first_sustained_sample(samples, cls, after, sustain, min_samples, max_gap)
        last = samples[-1] if samples else None
        if reached is not None:
            window = [s for s in samples if after <= s.mono <= reached.mono]
            gaps = tl.unobserved(window, max_gap, start=after, end=reached.mono)
            out.append(VantageRto(
                name, MEASURED, reached.mono - after, reached.mono, reached.t, reached.latency_ms, reached.edge,
                reached.clock_uncertainty, sum((g.duration for g in gaps), 0.0), last.mono if last else None,
            ))
            continue
        state = NOT_REACHED if alive(samples, now, max_gap) else UNOBSERVED
        out.append(VantageRto(name, state, None, None, None, None, last.edge if last else None,
                              last.clock_uncertainty if last else 0.0, 0.0, last.mono if last else None))
    return out


def percentile_rank(verdict_on: str, n: int) -> int:
    """1-based rank of the verdict's vantage among n sorted best first: worst = n; pNN = ceil(NN/100 × n)."""
    if verdict_on == "worst":
        return n
    p = float(verdict_on[1:])
    return max(1, min(n, math.ceil(p / 100.0 * n)))


def verdict(rtos: Sequence[VantageRto], verdict_on: str) -> tuple[float | None, VantageRto | None]:
    """The phase's RTO across vantages and the vantage it is: None when that vantage never got there
    (or was unobserved: not knowing is never counted as recovered)."""
    if not rtos:
        return None, None
    ranked = sorted(rtos, key=lambda r: math.inf if r.rto_seconds is None else r.rto_seconds)
    pick = ranked[percentile_rank(verdict_on, len(ranked)) - 1]
    return pick.rto_seconds, pick


@dataclass(frozen=True)
class Spread:
    seconds: float | None  # last measured vantage's RTO minus the first's (None: fewer than two measured)
    first: str | None
    last: str | None
    complete: bool  # every vantage measured (else the real spread is at least `seconds`)
    resolution: float  # below this, a spread is not told apart from sampling and clocks

    @property
    def real(self) -> bool:
        return self.seconds is not None and self.seconds > self.resolution

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": None if self.seconds is None else round(self.seconds, 3), "first": self.first,
                "last": self.last, "complete": self.complete, "resolution_seconds": round(self.resolution, 3),
                "beyond_resolution": self.real}


def spread(rtos: Sequence[VantageRto], interval: float) -> Spread:
    measured = sorted((r for r in rtos if r.rto_seconds is not None), key=lambda r: r.rto_seconds or 0.0)
    complete = len(measured) == len(rtos)
    if len(measured) < 2:
        return Spread(None, measured[0].vantage if measured else None, None, complete, interval)
    first, last = measured[0], measured[-1]
    resolution = interval + first.clock_uncertainty + last.clock_uncertainty
    return Spread((last.rto_seconds or 0.0) - (first.rto_seconds or 0.0), first.vantage, last.vantage, complete, resolution)


def _via(r: VantageRto) -> str:
    return f"{r.vantage} (edge {r.edge})" if r.edge else r.vantage


def explain(cls: str, rtos: Sequence[VantageRto], sp: Spread, time_scale: float = 1.0) -> str:
    """The spread in words, from what the samples show (which edge location answered each vantage)."""
    if len(rtos) < 2:
        return "one vantage: no spread to measure"
    by_name = {r.vantage: r for r in rtos}
    missing = [r for r in rtos if r.rto_seconds is None]
    words: list[str] = []
    if sp.seconds is None:
        words.append(f"fewer than two vantages got '{cls}': no spread measured")
    else:
        first, last = by_name[sp.first or ""], by_name[sp.last or ""]
        real = f" (≈ {sp.seconds * time_scale:.0f} s real)" if time_scale != 1 and sp.real else ""
        words.append(f"users at {_via(first)} got '{cls}' first, {first.rto_seconds:.2f} s after the start; at "
                     f"{_via(last)} last, {last.rto_seconds:.2f} s: a spread of {sp.seconds:.2f} s{real}")
        if not sp.real:
            words.append(f"within the measurement's resolution ({sp.resolution:.2f} s: one probe interval plus the "
                         "two vantages' clock uncertainty), so the change reached them at the same time as far as the "
                         "probe can tell")
        else:
            edges = {r.edge for r in rtos if r.rto_seconds is not None and r.edge}
            if len(edges) > 1:
                order = ", ".join(f"{r.edge} {r.rto_seconds:.2f} s" for r in sorted(
                    (r for r in rtos if r.rto_seconds is not None and r.edge), key=lambda r: r.rto_seconds or 0.0))
                words.append(f"beyond the resolution ({sp.resolution:.2f} s). The vantages were answered by different "
                             f"edge locations ({order}): a CDN configuration change reaches each edge location at its "
                             "own time, and CloudFront reports it Deployed only once the last one has it")
            else:
                words.append(f"beyond the resolution ({sp.resolution:.2f} s), through "
                             + (f"the same edge location ({edges.pop()})" if edges else "no edge location the site named")
                             + ": the difference is in the users' own paths (their resolvers' cached DNS answers, "
                             "their networks), not in the CDN's configuration")
    for r in missing:
        if r.state == UNOBSERVED:
            words.append(f"{r.vantage} was unobserved (its samples stopped before it got '{cls}'): nothing is known "
                         "of it, so the spread is at least the one shown and the verdict counts it as never recovered")
        else:
            words.append(f"{r.vantage} never got '{cls}' while observed: it did not recover in the wait")
    return "; ".join(words) + "."


def phase_detail(rtos: Sequence[VantageRto], verdict_on: str, interval: float, cls: str, time_scale: float,
                 wall: Any = None) -> dict[str, Any]:
    """A phase result's per-vantage part (summary.json phases[].detail)."""
    value, pick = verdict(rtos, verdict_on)
    sp = spread(rtos, interval)
    iso = wall or (lambda t: t)
    return {
        "vantages": [dict(r.as_dict(), reached_at=iso(r.reached_t) if r.reached_t is not None else None) for r in rtos],
        "verdict_on": verdict_on,
        "verdict_vantage": pick.vantage if pick else None,
        "rto_uncertainty_seconds": round(pick.clock_uncertainty, 6) if pick and value is not None else None,
        "spread": sp.as_dict(),
        "explanation": explain(cls, rtos, sp, time_scale),
    }


def vantage_stats(samples: Sequence[tl.Sample], max_gap: float, start: float | None, end: float | None,
                  sustain: float, min_samples: int) -> dict[str, Any]:
    """One vantage's figures over the run: requests, downtime, unobserved time, time by class, states, edges."""
    down, ivs = tl.downtime(samples, max_gap)
    gaps = tl.unobserved(samples, max_gap, start=start, end=end)
    return {
        "requests": len(samples),
        "edges": dict(Counter(s.edge for s in samples if s.edge)),
        "downtime_seconds": round(down, 3),
        "downtime_intervals": [(iv.start, iv.end) for iv in ivs],
        "unobserved_seconds": round(sum((g.duration for g in gaps), 0.0), 3),
        "unobserved_intervals": [(g.start, g.end) for g in gaps],
        "seconds_by_class": {k: round(v, 3) for k, v in tl.class_totals(samples, max_gap).items()},
        "transitions": [(st["class"], st["from"], st["to"]) for st in tl.transitions(samples, max_gap, sustain, min_samples)],
        "first_seen": samples[0].seen if samples else None,
        "last_seen": samples[-1].seen if samples else None,
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Lines for the drill's terminal summary: each phase's RTO per vantage and its spread; per vantage,
    its clock offset and probe gaps. Nothing for a one-vantage drill (its lines say it all)."""
    vantages = [v for v in summary.get("vantages") or [] if isinstance(v, dict)]
    if len(vantages) < 2:
        return []
    out = []
    for ph in summary.get("phases") or []:
        d = (ph.get("detail") or {}) if isinstance(ph, dict) else {}
        per = d.get("vantages") or []
        if not per:
            continue
        each = ", ".join(
            f"{v['vantage']} {v['rto_seconds']:.2f}s" + (f" ({v['edge']})" if v.get("edge") else "")
            if v.get("rto_seconds") is not None else f"{v['vantage']} {v.get('state')}" for v in per)
        sp = d.get("spread") or {}
        spread_words = "no spread" if sp.get("seconds") is None else (
            f"spread {sp['seconds']:.2f}s"
            + ("" if sp.get("beyond_resolution") else f" (within resolution {sp['resolution_seconds']:.2f}s)"))
        unc = d.get("rto_uncertainty_seconds")
        out.append(f"    {ph.get('name')} by vantage: {each}; {spread_words}; verdict on {d.get('verdict_on')}: "
                   f"{d.get('verdict_vantage')}" + (f" ± {unc:.4f}s (clock)" if isinstance(unc, (int, float)) else ""))
        if d.get("explanation") and (sp.get("beyond_resolution") or any(v.get("rto_seconds") is None for v in per)):
            out.append(f"      why: {d['explanation']}")
    clocks = []
    for v in vantages:
        c = v.get("clock") or {}
        where = v.get("worker", "?") + (f", {v['where']}" if v.get("where") else "")
        clock = (f"clock {c['offset_seconds']:+.4f} ± {c['uncertainty_seconds']:.4f}s" if "offset_seconds" in c
                 else "clock unknown")
        gap = f", unobserved {v['unobserved_seconds']:.2f}s" if v.get("unobserved_seconds") else ""
        clocks.append(f"{v['name']} ({where}): {v.get('requests', 0)} requests, downtime {v.get('downtime_seconds', 0):.2f}s"
                      f"{gap}, {clock}")
    out.append(f"  vantages ({len(vantages)}): " + "; ".join(clocks))
    for r in summary.get("probe_refused") or []:
        out.append(f"    probe worker refused: {r.get('vantage')} from {r.get('host')}: {r.get('reason')}")
    return out


def report_tables(summary: dict[str, Any]) -> tuple[list[list[str]], list[str], list[list[str]]] | None:
    """The report's vantage section (drill.checklist): per phase, each vantage's RTO, the spread and the
    verdict vantage; the spreads' explanations; per vantage, where it was, what it saw, its clock.
    None for a one-vantage drill."""
    vantages = [v for v in summary.get("vantages") or [] if isinstance(v, dict)]
    if len(vantages) < 2:
        return None
    names = [str(v.get("name")) for v in vantages]
    phases, why = [], []
    for ph in summary.get("phases") or []:
        d = (ph.get("detail") or {}) if isinstance(ph, dict) else {}
        per = {str(v.get("vantage")): v for v in d.get("vantages") or [] if isinstance(v, dict)}
        if not per:
            continue
        cells = []
        for n in names:
            v = per.get(n) or {}
            rto = v.get("rto_seconds")
            cells.append(f"{rto:.2f} s" + (f" ({v['edge']})" if v.get("edge") else "") if isinstance(rto, (int, float))
                         else str(v.get("state") or "—"))
        sp = d.get("spread") or {}
        spread_text = "—" if sp.get("seconds") is None else (
            f"{sp['seconds']:.2f} s" + ("" if sp.get("beyond_resolution") else f" (within {sp['resolution_seconds']:.2f} s)"))
        phases.append([str(ph.get("name")), *cells, spread_text, f"{d.get('verdict_on')}: {d.get('verdict_vantage')}"])
        if d.get("explanation"):
            why.append(f"{ph.get('name')}: {d['explanation']}")
    each = []
    for v in vantages:
        c = v.get("clock") or {}
        clock = (f"{c['offset_seconds']:+.4f} ± {c['uncertainty_seconds']:.4f} s" if "offset_seconds" in c else "unknown")
        each.append([str(v.get("name")), f"{v.get('worker', '?')}" + (f", {v['where']}" if v.get("where") else ""),
                     ", ".join(f"{k} {n}" for k, n in (v.get("edges") or {}).items()) or "—", str(v.get("requests", 0)),
                     f"{v.get('downtime_seconds', 0):.2f} s", f"{v.get('unobserved_seconds', 0):.2f} s", clock])
    return phases, why, each


REPORT_PHASE_HEAD = ("phase", "spread (first → last)", "verdict on")
REPORT_VANTAGE_HEAD = ("vantage", "worker", "edge locations (requests)", "requests", "downtime", "unobserved", "clock offset")
