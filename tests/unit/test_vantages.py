"""drill.vantages and drill.clocks on synthetic data: per-vantage RTOs, the verdict, the spread, clock offsets."""
from __future__ import annotations

import random

import pytest

from drill import vantages as vt
from drill.clocks import PHI, ClockFilter, Exchange
from drill.timeline import Sample

STEP, GAP, SUSTAIN, MIN = 0.1, 0.5, 0.5, 3


def run(vantage: str, *phases: tuple[str, float, float], edge: str | None = None, unc: float = 0.0) -> list[Sample]:
    """Samples every STEP from `start` to `stop` (exclusive) per (class, start, stop)."""
    out = []
    for cls, start, stop in phases:
        n = round((stop - start) / STEP)
        out += [Sample(t=1e9 + start + i * STEP, mono=round(start + i * STEP, 6), status=200, latency_ms=0.0, cls=cls,
                       vantage=vantage, edge=edge, clock_uncertainty=unc) for i in range(n)]
    return out


def by(*runs: list[Sample]) -> dict[str, list[Sample]]:
    return vt.split([s for r in runs for s in r])


def rtos(samples: dict[str, list[Sample]], now: float = 20.0) -> list[vt.VantageRto]:
    return vt.phase_rtos(samples, "maintenance", 1.0, SUSTAIN, MIN, GAP, now)


def test_split_keeps_declared_order_first_and_each_vantage_sorted() -> None:
    a, b = run("a", ("aws", 0, 1)), run("b", ("aws", 0, 1))
    mixed = [x for pair in zip(reversed(b), a, strict=True) for x in pair]
    out = vt.split(mixed, ["b", "a", "c"])
    assert list(out) == ["b", "a", "c"] and out["a"] == a and out["b"] == b and out["c"] == []


def test_each_vantage_has_its_own_rto_and_the_verdict_is_the_worst() -> None:
    samples = by(run("seoul", ("aws", 0, 3), ("maintenance", 3, 20), edge="ICN"),
                 run("tokyo", ("aws", 0, 5), ("maintenance", 5, 20), edge="NRT"),
                 run("sg", ("aws", 0, 4), ("maintenance", 4, 20), edge="SIN"))
    got = {r.vantage: r for r in rtos(samples)}
    assert {k: r.state for k, r in got.items()} == {"seoul": vt.MEASURED, "tokyo": vt.MEASURED, "sg": vt.MEASURED}
    assert {k: r.rto_seconds for k, r in got.items()} == pytest.approx({"seoul": 2.0, "tokyo": 4.0, "sg": 3.0})
    value, pick = vt.verdict(list(got.values()), "worst")
    assert value == pytest.approx(4.0) and pick is not None and pick.vantage == "tokyo"
    assert vt.verdict(list(got.values()), "p50")[1].vantage == "sg"
    assert vt.verdict(list(got.values()), "p1")[1].vantage == "seoul"
    sp = vt.spread(list(got.values()), STEP)
    assert (sp.first, sp.last, sp.complete, sp.real) == ("seoul", "tokyo", True, True)
    assert sp.seconds == pytest.approx(2.0)
    text = vt.explain("maintenance", list(got.values()), sp, time_scale=30)
    assert "seoul (edge ICN)" in text and "tokyo (edge NRT)" in text and "spread of 2.00 s (≈ 60 s real)" in text
    assert "different edge locations" in text


@pytest.mark.parametrize("n, p, rank", [(3, "worst", 3), (3, "p100", 3), (3, "p50", 2), (10, "p90", 9), (10, "p95", 10),
                                        (1, "p1", 1), (4, "p25", 1), (4, "p26", 2)])
def test_percentile_is_nearest_rank(n: int, p: str, rank: int) -> None:
    assert vt.percentile_rank(p, n) == rank


def test_a_vantage_that_never_recovers_is_never_in_the_verdict_and_fails_the_worst() -> None:
    samples = by(run("a", ("aws", 0, 2), ("maintenance", 2, 20)), run("b", ("aws", 0, 20)))
    got = rtos(samples)
    assert [r.state for r in got] == [vt.MEASURED, vt.NOT_REACHED]
    assert vt.verdict(got, "worst") == (None, got[1])
    assert vt.verdict(got, "p50")[0] == pytest.approx(1.0)  # nearest rank 1 of 2: the one that recovered
    sp = vt.spread(got, STEP)
    assert sp.seconds is None and not sp.complete
    assert "b never got 'maintenance' while observed" in vt.explain("maintenance", got, sp)


def test_a_vantage_whose_samples_stopped_is_unobserved_not_recovered() -> None:
    samples = by(run("a", ("aws", 0, 2), ("maintenance", 2, 20)), run("b", ("aws", 0, 1.5)))
    got = {r.vantage: r for r in rtos(samples, now=20.0)}
    assert got["b"].state == vt.UNOBSERVED and got["b"].rto_seconds is None
    assert got["b"].last_sample_mono == pytest.approx(1.4)
    value, pick = vt.verdict(list(got.values()), "worst")
    assert value is None and pick is got["b"]
    assert "b was unobserved" in vt.explain("maintenance", list(got.values()), vt.spread(list(got.values()), STEP))
    # Still silent, but judged right after its last sample: it may yet speak (not reached, not unobserved).
    assert {r.vantage: r.state for r in rtos(samples, now=1.6)}["b"] == vt.NOT_REACHED


def test_a_probe_gap_before_the_reaching_sample_is_reported() -> None:
    samples = by(run("a", ("aws", 0, 2), ("maintenance", 4, 20)))
    [r] = rtos(samples)
    assert r.rto_seconds == pytest.approx(3.0)
    # Unobserved from the last aws sample + max_gap to the first maintenance one: the RTO may be shorter.
    assert r.unobserved_before_seconds == pytest.approx(4.0 - (1.9 + GAP))


def test_a_spread_within_the_resolution_is_said_to_be_none() -> None:
    samples = by(run("a", ("aws", 0, 3), ("maintenance", 3, 20), edge="ICN", unc=0.01),
                 run("b", ("aws", 0, 3.1), ("maintenance", 3.1, 20), edge="NRT", unc=0.02))
    got = rtos(samples)
    sp = vt.spread(got, STEP)
    assert sp.seconds == pytest.approx(0.1) and sp.resolution == pytest.approx(STEP + 0.03) and not sp.real
    assert "within the measurement's resolution" in vt.explain("maintenance", got, sp)
    assert vt.explain("maintenance", got[:1], vt.spread(got[:1], STEP)) == "one vantage: no spread to measure"


def test_the_same_edge_location_points_at_the_users_own_paths() -> None:
    samples = by(run("a", ("aws", 0, 3), ("maintenance", 3, 20), edge="ICN"),
                 run("b", ("aws", 0, 6), ("maintenance", 6, 20), edge="ICN"))
    got = rtos(samples)
    assert "same edge location (ICN)" in vt.explain("maintenance", got, vt.spread(got, STEP))


def test_phase_detail_carries_every_vantage_the_verdict_and_its_uncertainty() -> None:
    samples = by(run("a", ("aws", 0, 3), ("maintenance", 3, 20), unc=0.002), run("b", ("aws", 0, 5), ("maintenance", 5, 20), unc=0.004))
    d = vt.phase_detail(rtos(samples), "worst", STEP, "maintenance", 30.0)
    assert [v["vantage"] for v in d["vantages"]] == ["a", "b"] and d["verdict_vantage"] == "b"
    assert d["rto_uncertainty_seconds"] == pytest.approx(0.004)
    assert d["spread"]["seconds"] == pytest.approx(2.0) and d["spread"]["beyond_resolution"]
    assert d["vantages"][0]["clock_uncertainty_seconds"] == pytest.approx(0.002)


def test_vantage_stats_count_a_dead_workers_tail_as_unobserved() -> None:
    alive, dead = run("a", ("aws", 0, 10)), run("b", ("aws", 0, 4))
    stats = vt.vantage_stats(dead, GAP, start=0.0, end=alive[-1].seen, sustain=SUSTAIN, min_samples=MIN)
    assert stats["unobserved_seconds"] == pytest.approx(9.9 - (3.9 + GAP))
    assert stats["seconds_by_class"]["aws"] == pytest.approx(3.9 - 0.0)  # never counted as up after it stopped
    assert stats["requests"] == len(dead) and stats["downtime_seconds"] == 0.0


def test_summary_lines_give_each_vantage_the_spread_why_and_the_clocks_and_nothing_for_one_vantage() -> None:
    samples = by(run("a", ("aws", 0, 3), ("maintenance", 3, 20), edge="ICN", unc=0.002),
                 run("b", ("aws", 0, 6), ("maintenance", 6, 20), edge="NRT", unc=0.004))
    d = vt.phase_detail(rtos(samples), "worst", STEP, "maintenance", 30.0)
    vantages = [{"name": n, "worker": "local", "requests": 10, "downtime_seconds": 0.0, "unobserved_seconds": 0.0,
                 "clock": {"offset_seconds": off, "uncertainty_seconds": 0.002}} for n, off in (("a", 0.0), ("b", 0.0011))]
    lines = vt.summary_lines({"phases": [{"name": "phase1", "detail": d}], "vantages": vantages})
    text = "\n".join(lines)
    assert "phase1 by vantage: a 2.00s (ICN), b 5.00s (NRT); spread 3.00s; verdict on worst: b" in text
    assert "why: " in text and "different edge locations" in text
    assert "b (local): 10 requests, downtime 0.00s, clock +0.0011 ± 0.0020s" in text
    assert vt.summary_lines({"phases": [{"name": "phase1", "detail": d}], "vantages": vantages[:1]}) == []


# -- clocks ----------------------------------------------------------------------------------------
def test_an_exchange_bounds_the_offset_whatever_the_asymmetry() -> None:
    rng = random.Random(7)
    for _ in range(200):
        offset = rng.uniform(-1e4, 1e4)
        t1 = rng.uniform(0, 100)
        there, back, held = rng.uniform(0, 0.05), rng.uniform(0, 0.05), rng.uniform(0, 0.01)
        t2 = t1 + there + offset
        t3 = t2 + held
        t4 = t3 - offset + back
        e = Exchange(t1, t2, t3, t4)
        assert e.delay == pytest.approx(there + back)
        assert abs(e.offset - offset) <= e.delay / 2 + 1e-9


def test_the_filter_keeps_the_minimum_delay_exchange_and_ages_its_bound() -> None:
    f = ClockFilter()
    assert f.estimate() is None
    f.add(Exchange(0.0, 100.02, 100.02, 0.06))  # delay 0.06, offset 100.0 - (0.04 - 0.02)... asymmetric
    f.add(Exchange(1.0, 101.001, 101.001, 1.002))  # delay 0.002: the best
    f.add(Exchange(2.0, 102.03, 102.03, 2.04))
    est = f.estimate(now=11.002)
    assert est is not None and est.delay == pytest.approx(0.002) and est.offset == pytest.approx(100.0)
    assert est.uncertainty == pytest.approx(0.001 + PHI * 10.0)
    assert est.to_master(150.0) == pytest.approx(50.0) and est.exchanges == 3
    f.add(Exchange(5.0, 104.0, 104.0, 4.0))  # t4 < t1: not an exchange of these clocks
    assert f.estimate().exchanges == 3
