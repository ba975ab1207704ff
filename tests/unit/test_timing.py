"""lab.timing.Timings.scaled: durations are divided by the time scale, counts are not."""
from __future__ import annotations

import dataclasses

import pytest

from lab.timing import Timings

DURATIONS = [f.name for f in dataclasses.fields(Timings) if f.name.endswith("_seconds")]
COUNTS = [f.name for f in dataclasses.fields(Timings) if not f.name.endswith("_seconds")]


def test_the_documented_figures_are_the_defaults() -> None:
    """Real-world figures (shared/notes/real-mechanisms.md); the scaled lab depends on them."""
    t = Timings()
    assert 120 <= t.node_drain_seconds <= 180 and 180 <= t.node_boot_seconds <= 300  # 2-3 min, 3-5 min
    assert t.pod_termination_grace_seconds == 30.0  # Kubernetes' default terminationGracePeriodSeconds
    # A pod is evicted near the start of its node's drain, well before the instance terminates.
    assert 0 < t.pod_eviction_seconds < t.node_drain_seconds / 10
    assert 300 <= t.cloudfront_deploy_seconds <= 600  # 5-10 min


def test_alb_health_settings_are_not_lab_constants() -> None:
    """Interval, timeout, thresholds and deregistration delay come from the target group (lab.alb)."""
    names = {f.name for f in dataclasses.fields(Timings)}
    assert not {n for n in names if n.startswith("alb_health") or "threshold" in n or "deregistration" in n}


def test_field_partition_is_what_the_lab_uses() -> None:
    assert "node_drain_seconds" in DURATIONS and "cloudfront_invalidation_seconds" in DURATIONS
    assert "nodegroup_update_seconds" in DURATIONS and "pod_eviction_seconds" in DURATIONS
    assert COUNTS == []


@pytest.mark.parametrize("scale", [1.0, 30.0, 0.5, 7])
def test_scaled_divides_every_duration_and_keeps_thresholds(scale: float) -> None:
    base = Timings()
    scaled = base.scaled(scale)
    for name in DURATIONS:
        assert getattr(scaled, name) == pytest.approx(getattr(base, name) / scale), name
    for name in COUNTS:
        assert getattr(scaled, name) == getattr(base, name), name
        assert isinstance(getattr(scaled, name), int), name


def test_scaled_at_thirty_matches_the_lab_figures() -> None:
    t = Timings().scaled(30)
    assert t.node_drain_seconds == pytest.approx(5.0)
    assert t.node_boot_seconds == pytest.approx(8.0)
    assert t.nodegroup_update_seconds == pytest.approx(1.0)
    assert t.pod_eviction_seconds == pytest.approx(5.0 / 30)
    assert t.cloudfront_deploy_seconds == pytest.approx(15.0)
    assert t.cloudfront_invalidation_seconds == pytest.approx(4.0)


def test_scaled_applies_to_custom_values_and_returns_a_new_object() -> None:
    base = Timings(node_drain_seconds=60.0)
    scaled = base.scaled(4)
    assert scaled is not base and base.node_drain_seconds == 60.0  # frozen original untouched
    assert scaled.node_drain_seconds == 15.0
    # Scaling twice compounds: the lab must scale exactly once.
    assert scaled.scaled(2).node_drain_seconds == pytest.approx(7.5)


@pytest.mark.parametrize("scale", [0, 0.0, -1, -30.0])
def test_scaled_rejects_non_positive_scale(scale: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Timings().scaled(scale)
