"""Property-based tests of drill.timeline: generated timelines against brute-force references.

Timelines are generated with what a real probe produces: evenly paced requests with jitter and
ties, probe gaps, flapping and steady states, uneven latency (so answers arrive out of send order),
and wall-clock steps (NTP). The references below are written literally from the definitions in
drill/timeline.py's docstring, by exhaustive search, not by the module's run-building algorithm.
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drill.timeline import (
    CLASSES,
    Sample,
    class_intervals,
    class_totals,
    downtime,
    first_sustained_sample,
    summarize,
    transitions,
    unobserved,
)

settings.register_profile("timeline", max_examples=100, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("timeline")

T0 = 1_700_000_000.0


def _key_sent(s: Sample) -> tuple[Any, ...]:
    return (s.mono, s.cls, s.seen, s.status, s.latency_ms, s.t, s.error or "")


def _key_seen(s: Sample) -> tuple[Any, ...]:
    return (s.seen, s.mono, s.cls, s.status, s.latency_ms, s.t, s.error or "")


@st.composite
def timelines(draw: st.DrawFn, max_len: int = 40) -> list[Sample]:
    """A probe's samples, in arbitrary (arrival/file) order."""
    n = draw(st.integers(0, max_len))
    switch = draw(st.sampled_from([0.0, 0.05, 0.2, 0.5, 0.9]))  # steady .. flapping
    mono = draw(st.integers(0, 100)) / 10
    wall = T0
    cls = draw(st.sampled_from(CLASSES))
    out = []
    for _ in range(n):
        # Paced at 0.1 s, with jitter (0 gives ties), and sometimes a probe gap.
        step = draw(st.one_of(st.just(10), st.integers(0, 30), st.integers(50, 400)))
        mono = round(mono + step / 100, 2)
        if draw(st.floats(0, 1)) < switch:
            cls = draw(st.sampled_from(CLASSES))
        latency = float(draw(st.one_of(st.just(5), st.integers(0, 400), st.integers(400, 4000))))
        if draw(st.integers(0, 24)) == 0:  # the wall clock steps (either way); mono never does
            wall += draw(st.integers(-3600, 3600))
        out.append(Sample(t=wall + mono, mono=mono, status=503 if cls == "error" else 200, latency_ms=latency, cls=cls))
    return draw(st.permutations(out))


params = st.fixed_dictionaries({
    "sustain": st.sampled_from([0.0, 0.2, 0.5, 1.0, 2.0]),
    "min_samples": st.integers(1, 6),
    "max_gap": st.sampled_from([0.3, 0.5, 1.0, 3.0, math.inf]),
})


# --- brute-force references --------------------------------------------------------------------


def ref_rto(samples: list[Sample], cls: str, after: float, sustain: float, min_samples: int, max_gap: float) -> Sample | None:
    """The first sample, in send order, sent at/after `after`, such that SOME window of consecutive
    samples (send order) starting at it is all `cls`, sent at most max_gap apart, with at least
    min_samples samples spanning at least `sustain` seconds of send instants. Exhaustive: O(n^3)."""
    sent = sorted((s for s in samples if s.mono >= after), key=_key_sent)
    for i in range(len(sent)):
        for j in range(i, len(sent)):
            window = sent[i : j + 1]
            if (all(s.cls == cls for s in window)
                    and all(b.mono - a.mono <= max_gap for a, b in itertools.pairwise(window))
                    and len(window) >= min_samples and window[-1].mono - window[0].mono >= sustain):
                return sent[i]
    return None


def ref_class_at(x: float, ordered: list[Sample], max_gap: float, end: float | None) -> str | None:
    """What users saw at instant x (None = unobserved), from the definition: the class of the last
    answer at or before x, while x is within max_gap of it, and (for the last answer) before `end`."""
    prev_i = None
    for i, s in enumerate(ordered):
        if s.seen <= x:
            prev_i = i
    if prev_i is None:
        return None
    prev = ordered[prev_i]
    if x - prev.seen >= max_gap:
        return None
    if prev_i == len(ordered) - 1 and (end is None or x >= end):
        return None
    return prev.cls


def ref_totals(samples: list[Sample], max_gap: float, end: float | None) -> tuple[dict[str, float], float]:
    """Seconds per class and unobserved seconds over [first seen, max(end, last seen)], by
    evaluating ref_class_at between every pair of breakpoints."""
    ordered = sorted(samples, key=_key_seen)
    totals = {c: 0.0 for c in CLASSES}
    if not ordered:
        return totals, 0.0
    points = {s.seen for s in ordered} | {s.seen + max_gap for s in ordered if math.isfinite(max_gap)}
    if end is not None:
        points.add(end)
    last = max([ordered[-1].seen] + ([end] if end is not None else []))
    cuts = sorted(p for p in points if ordered[0].seen <= p <= last)
    gap = 0.0
    for a, b in itertools.pairwise(cuts):
        c = ref_class_at((a + b) / 2, ordered, max_gap, end)
        if c is None:
            gap += b - a
        else:
            totals[c] += b - a
    return totals, gap


# --- RTO ---------------------------------------------------------------------------------------


@given(timelines(), params, st.sampled_from(CLASSES), st.integers(0, 60))
def test_rto_equals_the_brute_force_reference(samples: list[Sample], p: dict, cls: str, after_ds: int) -> None:
    after = after_ds / 10
    got = first_sustained_sample(samples, cls, after, **p)
    want = ref_rto(samples, cls, after, **p)
    assert got == want
    if got is not None:
        assert got.cls == cls and got.mono >= after and got in samples


@given(timelines(), params, st.sampled_from(CLASSES), st.randoms(use_true_random=False))
def test_rto_depends_only_on_send_instants_and_classes(samples: list[Sample], p: dict, cls: str, rnd: random.Random) -> None:
    """Latency (answers out of send order), the wall clock (steps) and the input order never move the RTO."""
    base = first_sustained_sample(samples, cls, 0.0, **p)
    shaken = [Sample(t=rnd.uniform(0, 2 * T0), mono=s.mono, status=s.status, latency_ms=rnd.uniform(0, 5000), cls=s.cls)
              for s in samples]
    rnd.shuffle(shaken)
    other = first_sustained_sample(shaken, cls, 0.0, **p)
    assert (base is None) == (other is None)
    if base is not None:
        assert other.mono == base.mono


@given(timelines(), params, st.sampled_from(CLASSES), st.integers(0, 60), timelines(max_len=10))
def test_requests_sent_before_the_fault_never_change_the_rto(samples: list[Sample], p: dict, cls: str, after_ds: int,
                                                             extra: list[Sample]) -> None:
    after = after_ds / 10
    before = [Sample(t=s.t, mono=after - 0.01 - s.mono / 100, status=s.status, latency_ms=s.latency_ms, cls=s.cls) for s in extra]
    assert first_sustained_sample(samples + before, cls, after, **p) == first_sustained_sample(samples, cls, after, **p)


@given(timelines(), params, st.sampled_from(CLASSES))
def test_a_stricter_sustain_rule_never_gives_an_earlier_rto(samples: list[Sample], p: dict, cls: str) -> None:
    loose = first_sustained_sample(samples, cls, 0.0, **p)
    strict = first_sustained_sample(samples, cls, 0.0, p["sustain"] + 0.3, p["min_samples"] + 1, p["max_gap"])
    if strict is not None:
        assert loose is not None and loose.mono <= strict.mono


# --- what users experienced: seconds per class, downtime, unobserved -------------------------------


@given(timelines(), st.sampled_from([0.3, 1.0, 3.0, math.inf]), st.one_of(st.none(), st.integers(0, 40)))
def test_seconds_per_class_and_unobserved_equal_the_pointwise_reference(samples: list[Sample], max_gap: float,
                                                                        end_after_last: int | None) -> None:
    end = None
    if end_after_last is not None and samples:
        end = max(s.seen for s in samples) + end_after_last / 10
    want, want_gap = ref_totals(samples, max_gap, end)
    got = class_totals(samples, max_gap, end)
    for c in CLASSES:
        assert math.isclose(got[c], want[c], abs_tol=1e-6), (c, got, want)
    gaps = unobserved(samples, max_gap, end=end)
    assert math.isclose(sum(iv.duration for iv in gaps), want_gap, abs_tol=1e-6)
    # Downtime is the error class, as merged intervals that are sorted and disjoint.
    total, ivs = downtime(samples, max_gap, end)
    assert math.isclose(total, want["error"], abs_tol=1e-6)
    assert all(a.end < b.start for a, b in itertools.pairwise(ivs)) and all(iv.duration > 0 for iv in ivs)
    for c in CLASSES:
        assert math.isclose(sum(iv.duration for iv in class_intervals(samples, c, max_gap, end)), want[c], abs_tol=1e-6)


@given(timelines(), st.sampled_from([0.3, 1.0, math.inf]), st.randoms(use_true_random=False))
def test_time_accounting_is_conserved_and_order_free(samples: list[Sample], max_gap: float, rnd: random.Random) -> None:
    """Every instant from the first answer to the end is in exactly one class or unobserved; input
    order and wall-clock steps change nothing."""
    end = max((s.seen for s in samples), default=0.0) + 1.0
    summ = summarize(samples, max_gap, end)
    if samples:
        span = end - min(s.seen for s in samples)
        assert math.isclose(sum(summ["seconds"].values()) + summ["unobserved_seconds"], span, abs_tol=1e-6)
    assert summ["requests"] == len(samples) == sum(summ["counts"].values())
    assert math.isclose(summ["downtime_seconds"], summ["seconds"]["error"], abs_tol=1e-6)
    stepped = [Sample(t=s.t + rnd.choice([0.0, -3600.0, 7200.0]), mono=s.mono, status=s.status, latency_ms=s.latency_ms,
                      cls=s.cls) for s in samples]
    rnd.shuffle(stepped)
    other = summarize(stepped, max_gap, end)
    for k in ("requests", "counts", "seconds", "downtime_seconds", "downtime_intervals", "unobserved_seconds"):
        assert other[k] == summ[k], k


# --- sustained states --------------------------------------------------------------------------


@given(timelines(), params, st.randoms(use_true_random=False))
def test_transitions_are_the_sustained_states_the_rto_function_finds(samples: list[Sample], p: dict, rnd: random.Random) -> None:
    states = transitions(samples, p["max_gap"], p["sustain"], p["min_samples"])
    for a, b in itertools.pairwise(states):
        assert a["class"] != b["class"] and a["to"] <= b["from"]  # equal only for requests sent at one instant
    for st_ in states:
        # Each state begins where the RTO function, asked from that instant, finds its class sustained.
        first = first_sustained_sample(samples, st_["class"], st_["from"], **p)
        assert first is not None and first.mono == st_["from"] and first.cls == st_["class"]
        assert st_["to"] >= st_["from"] and st_["samples"] >= p["min_samples"]
    # The first state is the first class sustained at all.
    firsts = [x for x in (first_sustained_sample(samples, c, -math.inf, **p) for c in CLASSES) if x is not None]
    if states:
        assert states[0]["from"] == min(x.mono for x in firsts)
    else:
        assert firsts == []
    # Latency, wall clock and input order change nothing but the wall fields.
    shaken = [Sample(t=rnd.uniform(0, 2 * T0), mono=s.mono, status=s.status, latency_ms=rnd.uniform(0, 5000), cls=s.cls)
              for s in samples]
    rnd.shuffle(shaken)
    strip = lambda xs: [(x["class"], x["from"], x["to"], x["samples"]) for x in xs]  # noqa: E731
    assert strip(transitions(shaken, p["max_gap"], p["sustain"], p["min_samples"])) == strip(states)
