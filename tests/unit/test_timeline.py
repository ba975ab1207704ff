"""drill.timeline on synthetic timelines: the maths behind RTO and downtime."""
from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from drill.timeline import (
    Interval,
    Sample,
    class_intervals,
    class_totals,
    downtime,
    dump_sample,
    first_sustained_sample,
    load_timeline,
    parse_sample,
    summarize,
    transitions,
    unobserved,
)

STEP = 0.1  # 10 req/s
GAP = 0.5  # max_gap used by most tests
T0 = 1_700_000_000.0  # wall clock of mono == 0


def s(mono: float, cls: str, latency_ms: float = 0.0, status: int | None = None) -> Sample:
    if status is None:
        status = 503 if cls == "error" else 200
    return Sample(t=T0 + mono, mono=mono, status=status, latency_ms=latency_ms, cls=cls)


def series(start: float, *phases: tuple[str, int]) -> list[Sample]:
    """Samples every STEP seconds from `start`: phases of (class, count)."""
    out: list[Sample] = []
    i = 0
    for cls, n in phases:
        for _ in range(n):
            out.append(s(round(start + i * STEP, 6), cls))
            i += 1
    return out


def first_sustained(samples: list[Sample], cls: str, after: float, sustain: float, min_samples: int = 3,
                    max_gap: float = float("inf")) -> float | None:
    """The RTO instant: the send instant of the first sample beginning a sustained run (or None)."""
    found = first_sustained_sample(samples, cls, after, sustain, min_samples, max_gap)
    return None if found is None else found.mono


def ivs(intervals: Iterable[Interval]) -> list[tuple[Any, Any]]:  # pytest.approx pairs
    return [(pytest.approx(iv.start), pytest.approx(iv.end)) for iv in intervals]


# --- samples and JSONL ------------------------------------------------------------------------


def test_seen_is_start_plus_latency() -> None:
    smp = s(10.0, "aws", latency_ms=250.0)
    assert smp.seen == pytest.approx(10.25)
    assert smp.wall_seen == pytest.approx(T0 + 10.25)


def test_dump_uses_class_key_and_round_trips() -> None:
    smp = Sample(t=1.5, mono=2.5, status=0, latency_ms=3.25, cls="error", error="ConnectionRefusedError")
    line = dump_sample(smp)
    assert "\n" not in line
    d = json.loads(line)
    assert d == {"t": 1.5, "mono": 2.5, "status": 0, "latency_ms": 3.25, "class": "error", "error": "ConnectionRefusedError",
                 "vantage": "default"}
    assert parse_sample(line) == smp


def test_a_worker_sample_carries_its_vantage_edge_and_clock_correction() -> None:
    smp = Sample(t=1.5, mono=2.5, status=200, latency_ms=3.0, cls="aws", vantage="tokyo", edge="NRT57-P3",
                 clock_offset=-0.25, clock_uncertainty=0.0004)
    d = json.loads(dump_sample(smp))
    assert (d["vantage"], d["edge"], d["clock_offset"], d["clock_uncertainty"]) == ("tokyo", "NRT57-P3", -0.25, 0.0004)
    assert parse_sample(dump_sample(smp)) == smp


def test_a_sample_of_a_vantage_with_its_own_resolver_carries_the_address_that_served_it() -> None:
    smp = Sample(t=1.5, mono=2.5, status=200, latency_ms=3.0, cls="maintenance", vantage="seoul", address="127.0.0.42")
    d = json.loads(dump_sample(smp))
    assert (d["vantage"], d["address"]) == ("seoul", "127.0.0.42")
    assert parse_sample(dump_sample(smp)) == smp
    assert "address" not in json.loads(dump_sample(Sample(t=1.5, mono=2.5, status=200, latency_ms=3.0, cls="aws")))


def test_a_line_written_before_vantages_is_the_default_vantage() -> None:
    old = '{"t":1.5,"mono":2.5,"status":200,"latency_ms":3.0,"class":"aws","error":null}'
    smp = parse_sample(old)
    assert (smp.vantage, smp.edge, smp.clock_offset, smp.clock_uncertainty) == ("default", None, 0.0, 0.0)


def test_load_sorts_by_seen_and_skips_blank_lines(tmp_path: Path) -> None:
    a = s(1.0, "aws", latency_ms=500)  # seen 1.5
    b = s(1.2, "maintenance", latency_ms=0)  # seen 1.2: started later, answered first
    p = tmp_path / "t.jsonl"
    p.write_text(dump_sample(a) + "\n\n" + dump_sample(b) + "\n")
    assert load_timeline(p) == [b, a]


@pytest.mark.parametrize("tail", ['{"t": 1.0, "mono": 3', '{"t":1,"mono":3,"status":200}', "\x00\x00garbage",
                                  '{"t": 1.0, "mono": 3.0, "sta'])
def test_load_tolerates_truncated_last_line(tmp_path: Path, tail: str) -> None:
    good = series(0.0, ("aws", 3))
    p = tmp_path / "t.jsonl"
    p.write_text("".join(dump_sample(x) + "\n" for x in good) + tail)  # killed mid-write: no newline
    assert load_timeline(p) == good


def test_load_accepts_last_line_without_newline(tmp_path: Path) -> None:
    good = series(0.0, ("aws", 2))
    p = tmp_path / "t.jsonl"
    p.write_text(dump_sample(good[0]) + "\n" + dump_sample(good[1]))
    assert load_timeline(p) == good


def test_load_rejects_garbage_in_the_middle(tmp_path: Path) -> None:
    good = series(0.0, ("aws", 2))
    p = tmp_path / "t.jsonl"
    p.write_text(dump_sample(good[0]) + "\n{not json\n" + dump_sample(good[1]) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        load_timeline(p)


def test_load_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text("")
    assert load_timeline(p) == []


# --- no requests / single sample ----------------------------------------------------------------


def test_no_requests() -> None:
    assert class_intervals([], "aws", GAP) == []
    assert downtime([], GAP, end=10.0) == (0.0, [])
    assert unobserved([], GAP) == []
    assert ivs(unobserved([], GAP, start=1.0, end=4.0)) == [(1.0, 4.0)]
    assert class_totals([], GAP) == {"aws": 0.0, "maintenance": 0.0, "azure": 0.0, "error": 0.0}
    assert first_sustained([], "aws", after=0.0, sustain=0.0, min_samples=1) is None
    assert transitions([], GAP, sustain=1.0) == []
    summ = summarize([], GAP)
    assert summ["requests"] == 0
    assert summ["downtime_seconds"] == 0.0
    assert summ["first_t"] is None and summ["last_t"] is None
    json.dumps(summ)


def test_single_sample() -> None:
    one = [s(5.0, "error")]
    # The last sample holds for 0 s ...
    assert downtime(one, GAP) == (0.0, [])
    # ... or until an explicit end, capped by max_gap.
    assert downtime(one, GAP, end=5.2)[0] == pytest.approx(0.2)
    total, intervals = downtime(one, GAP, end=9.0)
    assert total == pytest.approx(GAP)
    assert ivs(intervals) == [(5.0, 5.5)]
    assert ivs(unobserved(one, GAP, start=4.0, end=9.0)) == [(4.0, 5.0), (5.5, 9.0)]
    assert first_sustained(one, "error", after=0.0, sustain=0.0, min_samples=1) == 5.0
    assert first_sustained(one, "error", after=0.0, sustain=0.0) is None  # min_samples=3
    summ = summarize(one, GAP)
    assert summ["requests"] == 1 and summ["counts"]["error"] == 1


# --- intervals, downtime, gaps -------------------------------------------------------------------


def test_clean_aws_to_maintenance_switch() -> None:
    # aws at 0.0..1.9, maintenance from 2.0 (sample 20) to 3.9.
    tl = series(0.0, ("aws", 20), ("maintenance", 20))
    fault = 1.95
    t = first_sustained(tl, "maintenance", after=fault, sustain=1.0, max_gap=GAP)
    assert t == pytest.approx(2.0)  # exact to the sample
    assert t - fault == pytest.approx(0.05)  # RTO
    assert ivs(class_intervals(tl, "aws", GAP)) == [(0.0, 2.0)]
    assert ivs(class_intervals(tl, "maintenance", GAP)) == [(2.0, 3.9)]
    assert downtime(tl, GAP) == (0.0, [])
    assert unobserved(tl, GAP) == []
    totals = class_totals(tl, GAP)
    assert totals["aws"] == pytest.approx(2.0) and totals["maintenance"] == pytest.approx(1.9)
    assert [(x["class"], x["samples"]) for x in transitions(tl, GAP, sustain=1.0)] == [("aws", 20), ("maintenance", 20)]


def test_state_already_in_place_at_fault_gives_first_sample_after() -> None:
    tl = series(0.0, ("aws", 50))
    assert first_sustained(tl, "aws", after=1.05, sustain=1.0, max_gap=GAP) == pytest.approx(1.1)


def test_error_intervals_at_start_middle_end() -> None:
    tl = series(0.0, ("error", 5), ("aws", 10), ("error", 3), ("aws", 10), ("error", 4))
    # samples: error 0.0-0.4, aws 0.5-1.4, error 1.5-1.7, aws 1.8-2.7, error 2.8-3.1
    total, intervals = downtime(tl, GAP)
    assert ivs(intervals) == [(0.0, 0.5), (1.5, 1.8), (2.8, 3.1)]  # last error holds 0 s after its seen
    assert total == pytest.approx(0.5 + 0.3 + 0.3)
    total_end, intervals_end = downtime(tl, GAP, end=3.3)
    assert ivs(intervals_end)[-1] == (2.8, 3.3)
    assert total_end == pytest.approx(0.5 + 0.3 + 0.5)
    # max_gap caps the last sample too.
    assert ivs(downtime(tl, GAP, end=100.0)[1])[-1] == (2.8, 3.1 + GAP)


def test_probe_gap_is_unobserved_not_downtime() -> None:
    # aws until 0.9, probe dead for 5 s, then error samples, then aws again.
    tl = series(0.0, ("aws", 10)) + [s(5.9 + i * STEP, "error") for i in range(5)] + [s(6.4 + i * STEP, "aws") for i in range(5)]
    gaps = unobserved(tl, GAP)
    assert ivs(gaps) == [(0.9 + GAP, 5.9)]
    total, intervals = downtime(tl, GAP)
    assert ivs(intervals) == [(5.9, 6.4)]
    assert total == pytest.approx(0.5)
    totals = class_totals(tl, GAP)
    assert totals["aws"] == pytest.approx(0.9 + GAP + 0.4)  # the aws sample at 0.9 holds for max_gap only
    summ = summarize(tl, GAP)
    assert summ["unobserved_seconds"] == pytest.approx(5.0 - GAP)
    assert summ["downtime_seconds"] == pytest.approx(0.5)
    # Conservation: observed + unobserved covers the whole span.
    span = tl[-1].seen - tl[0].seen
    assert sum(totals.values()) + summ["unobserved_seconds"] == pytest.approx(span)


def test_gap_breaks_a_run() -> None:
    tl = [s(0.0, "aws"), s(0.1, "aws"), s(2.0, "aws"), s(2.1, "aws")]
    assert first_sustained(tl, "aws", after=0.0, sustain=1.0, min_samples=3, max_gap=GAP) is None
    assert first_sustained(tl, "aws", after=0.0, sustain=1.0, min_samples=3) == 0.0  # no gap limit by default
    # class_intervals splits at the unobserved part.
    assert ivs(class_intervals(tl, "aws", GAP)) == [(0.0, 0.1 + GAP), (2.0, 2.1)]


def test_latency_shifts_seen() -> None:
    # A request started at 1.0 that took 800 ms: the user saw the error at 1.8, not 1.0.
    tl = [s(0.0, "aws"), s(0.5, "aws"), s(1.0, "error", latency_ms=800), s(1.9, "aws"), s(2.4, "aws")]
    total, intervals = downtime(tl, max_gap=1.0)
    assert ivs(intervals) == [(1.8, 1.9)]
    assert total == pytest.approx(0.1)
    # aws@0.5 holds for max_gap only: nothing was seen between 1.5 and the slow answer at 1.8.
    assert ivs(class_intervals(tl, "aws", max_gap=1.0)) == [(0.0, 1.5), (1.9, 2.4)]
    assert ivs(unobserved(tl, max_gap=1.0)) == [(1.5, 1.8)]


def test_latency_reorders_samples() -> None:
    # Started first but answered last: ordering is by seen, not by start.
    slow = s(1.0, "error", latency_ms=1500)  # seen 2.5
    tl = [s(0.0, "aws"), slow, s(1.1, "aws"), s(2.0, "aws"), s(3.0, "aws")]
    assert ivs(downtime(tl, max_gap=1.0)[1]) == [(2.5, 3.0)]


def test_unsorted_input_gives_same_results() -> None:
    tl = series(0.0, ("aws", 10), ("error", 7), ("maintenance", 15), ("azure", 12))
    shuffled = tl[:]
    random.Random(42).shuffle(shuffled)
    assert shuffled != tl
    assert downtime(shuffled, GAP) == downtime(tl, GAP)
    assert class_totals(shuffled, GAP) == class_totals(tl, GAP)
    assert unobserved(shuffled, GAP, start=-1.0, end=10.0) == unobserved(tl, GAP, start=-1.0, end=10.0)
    for cls in ("aws", "maintenance", "azure"):
        assert class_intervals(shuffled, cls, GAP) == class_intervals(tl, cls, GAP)
        assert first_sustained(shuffled, cls, 0.0, 0.5, max_gap=GAP) == first_sustained(tl, cls, 0.0, 0.5, max_gap=GAP)
    assert transitions(shuffled, GAP, 0.5) == transitions(tl, GAP, 0.5)
    assert summarize(shuffled, GAP) == summarize(tl, GAP)


# --- sustained states ------------------------------------------------------------------------------


def test_flapping_never_sustains() -> None:
    tl = [s(i * STEP, "aws" if i % 2 == 0 else "maintenance") for i in range(100)]
    for cls in ("aws", "maintenance"):
        assert first_sustained(tl, cls, after=0.0, sustain=0.5, max_gap=GAP) is None
    assert transitions(tl, GAP, sustain=0.5) == []
    # Slower flapping (runs of 2) is still not sustained with min_samples=3.
    tl2 = [s(i * STEP, "aws" if (i // 2) % 2 == 0 else "maintenance") for i in range(100)]
    assert first_sustained(tl2, "maintenance", after=0.0, sustain=0.1, max_gap=GAP) is None


def test_flapping_then_sustained() -> None:
    flap = [s(i * STEP, "maintenance" if i % 2 else "azure") for i in range(20)]  # 0.0 .. 1.9
    steady = [s(2.0 + i * STEP, "azure") for i in range(15)]  # 2.0 .. 3.4
    tl = flap + steady
    assert first_sustained(tl, "azure", after=0.0, sustain=1.0, max_gap=GAP) == pytest.approx(2.0)
    # The steady run includes the last flap's azure? No: 1.9 is maintenance, so the run starts at 2.0.
    assert [x["class"] for x in transitions(tl, GAP, sustain=1.0)] == ["azure"]


def test_single_foreign_sample_breaks_a_run() -> None:
    tl = series(0.0, ("azure", 8), ("error", 1), ("azure", 8))  # azure 0.0-0.7, error 0.8, azure 0.9-1.6
    assert first_sustained(tl, "azure", after=0.0, sustain=1.0, max_gap=GAP) is None
    assert first_sustained(tl, "azure", after=0.0, sustain=0.7, max_gap=GAP) == pytest.approx(0.0)
    assert first_sustained(tl, "azure", after=0.05, sustain=0.7, max_gap=GAP) == pytest.approx(0.9)


def test_run_in_progress_at_end_counts_only_if_bounds_met() -> None:
    tl = series(0.0, ("aws", 10), ("maintenance", 6))  # maintenance 1.0 .. 1.5
    assert first_sustained(tl, "maintenance", after=0.0, sustain=0.5, max_gap=GAP) == pytest.approx(1.0)
    assert first_sustained(tl, "maintenance", after=0.0, sustain=0.6, max_gap=GAP) is None  # too short so far
    assert first_sustained(tl, "maintenance", after=0.0, sustain=0.1, min_samples=7, max_gap=GAP) is None  # too few
    assert first_sustained(tl, "maintenance", after=0.0, sustain=0.1, min_samples=6, max_gap=GAP) == pytest.approx(1.0)


def test_sustain_counts_from_first_to_last_seen() -> None:
    tl = series(0.0, ("aws", 11))  # 0.0 .. 1.0
    assert first_sustained(tl, "aws", after=0.0, sustain=1.0, max_gap=GAP) == 0.0
    assert first_sustained(tl, "aws", after=0.0, sustain=1.01, max_gap=GAP) is None


def test_transitions_full_drill_path() -> None:
    tl = series(
        0.0,
        ("aws", 20),
        ("error", 3),
        ("maintenance", 30),
        ("azure", 2),  # a flap, not sustained: the two maintenance runs around it merge
        ("maintenance", 12),
        ("azure", 40),
        ("error", 1),  # a blip inside Azure: both Azure runs are sustained and merge
        ("azure", 20),
        ("aws", 25),
    )
    path = transitions(tl, GAP, sustain=1.0, min_samples=3)
    assert [x["class"] for x in path] == ["aws", "maintenance", "azure", "aws"]
    maint = path[1]
    assert maint["from"] == pytest.approx(2.3) and maint["to"] == pytest.approx(6.6)
    assert maint["samples"] == 42
    azure = path[2]
    assert azure["samples"] == 60
    assert azure["wall_from"] == pytest.approx(T0 + azure["from"])
    assert first_sustained(tl, "azure", after=2.0, sustain=1.0, max_gap=GAP) == pytest.approx(azure["from"])


def test_summarize_fields() -> None:
    tl = series(0.0, ("aws", 10), ("error", 5), ("maintenance", 10))
    summ = summarize(tl, GAP, end=2.6)
    assert summ["requests"] == 25
    assert summ["counts"] == {"aws": 10, "maintenance": 10, "azure": 0, "error": 5}
    assert summ["seconds"]["error"] == pytest.approx(0.5)
    assert summ["seconds"]["maintenance"] == pytest.approx(1.1)  # last sample held until end=2.6
    assert summ["downtime_seconds"] == pytest.approx(0.5)
    assert summ["downtime_intervals"] == [{"start": pytest.approx(1.0), "end": pytest.approx(1.5), "duration": pytest.approx(0.5)}]
    assert summ["unobserved_seconds"] == 0.0
    assert summ["first_t"] == pytest.approx(T0) and summ["last_t"] == pytest.approx(T0 + 2.4)
    assert summ["max_gap"] == GAP
    json.dumps(summ)


def test_first_sustained_sample_uses_send_instant_and_ignores_requests_sent_before() -> None:
    slow_before = Sample(t=0, mono=9.95, status=200, latency_ms=200, cls="maintenance")  # sent before the fault
    after = [Sample(t=0, mono=10.0 + 0.1 * i, status=200, latency_ms=50, cls="maintenance") for i in range(5)]
    s = first_sustained_sample([slow_before, *after], "maintenance", after=10.0, sustain=0.3, min_samples=3)
    assert s is not None and s.mono == 10.0
    assert first_sustained_sample(after, "aws", after=10.0, sustain=0.3) is None
