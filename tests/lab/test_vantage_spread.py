"""Users behind different CloudFront edge locations recover at different times, and the probe sees it.

Three vantages (targets/lab-vantages.yaml: one Locust worker each, each through its own edge location
of the lab) probe the site while the production driver changes the distribution: the default
behavior goes straight to the maintenance origin. The lab schedules when the change reaches each
edge location within the modeled deploy window and records it (event "edge locations scheduled":
the ground truth); each vantage's RTO, measured as the drill measures a phase's (drill.vantages),
must match its edge location's arrival within one probe interval, and so must the spread.

Cost: one deploy window for the change and one for putting it back (≈ 2 × 15 s at the lab's time
scale), on the session's shared lab; no drill.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest

from drill import vantages as vt
from drill.config import load_target
from drivers.aws import Aws, CloudFront
from drivers.probe import ProbeFleet, Vantage
from lab import topology as T
from lab.events import read_events
from lab.timing import Timings

pytestmark = pytest.mark.lab

# A request is read by the edge a moment after it is sent (its `mono`): one sent just before a
# location got the change may already be answered with it.
HANDLING = 0.05


def _scheduled(events_path: Path, etag: str) -> dict[str, Any]:
    events = [e for e in read_events(events_path) if e["event"] == "edge locations scheduled" and e.get("etag") == etag]
    assert len(events) == 1, f"the lab scheduled the change {etag} {len(events)} times"
    return events[0]


def test_each_vantage_recovers_when_its_edge_location_gets_the_change(lab: dict[str, Any], tmp_path: Path) -> None:
    target = load_target("lab-vantages", lab)
    p = target.probe
    assert [v.connect_to for v in p.vantages] == [lab["edge_locations"][loc] for loc, _ in T.EDGE_LOCATIONS]
    edge_of = {v.name: loc for v, (loc, _) in zip(p.vantages, T.EDGE_LOCATIONS, strict=True)}
    drv = CloudFront(Aws(target.aws))
    dist = target.aws.cloudfront.distribution_id
    deploy = Timings().scaled(float(lab["time_scale"])).cloudfront_deploy_seconds
    interval = 1.0 / p.rate_per_second

    original, etag0 = drv.config(dist)
    assert drv.status(dist) == "Deployed"
    to_maintenance = copy.deepcopy(original)
    to_maintenance["DefaultCacheBehavior"]["TargetOriginId"] = T.SECONDARY_ORIGIN
    fleet = ProbeFleet(target.site.url, tmp_path / "timeline.jsonl",
                       [Vantage(v.name, v.worker, v.where, v.connect_to) for v in p.vantages],
                       rate_per_second=p.rate_per_second, users=p.users, timeout_seconds=p.timeout_seconds,
                       rules=p.rules, log_dir=tmp_path)
    try:
        with fleet:
            deadline = time.monotonic() + 30
            names = [v.name for v in p.vantages]
            while not all(vt.alive(s, time.monotonic(), fleet.max_gap) for s in vt.split(fleet.samples(), names).values()):
                assert time.monotonic() < deadline, "not every vantage's worker reported within 30 s"
                time.sleep(0.2)
            time.sleep(p.sustain_seconds)
            assert {s.cls for s in fleet.samples()} == {"aws"}
            change = time.monotonic()
            etag1 = drv.cf.update_distribution(
                Id=dist, IfMatch=etag0, DistributionConfig=to_maintenance)["ETag"]
            drv.wait_deployed(dist, timeout=deploy * 3, poll=0.5)
            time.sleep(p.sustain_seconds + 1.0)
            rtos = vt.phase_rtos(vt.split(fleet.samples(), names), "maintenance", change,
                                 p.sustain_seconds, p.min_samples, fleet.max_gap, time.monotonic())
    finally:
        current, etag = drv.config(dist)
        if current != original:
            drv.cf.update_distribution(Id=dist, IfMatch=etag, DistributionConfig=original)
        drv.wait_deployed(dist, timeout=deploy * 3, poll=0.5)

    truth = {loc: at["mono"] - change for loc, at in _scheduled(Path(lab["events_path"]), etag1)["locations"].items()}
    assert max(truth.values()) <= deploy + 1.0
    measured = {r.vantage: r for r in rtos}
    for name, r in measured.items():
        assert r.state == vt.MEASURED and r.rto_seconds is not None, r
        assert r.edge == edge_of[name], r  # answered by its own edge location
        # The first request sent after the change arrived there got it; none sent clearly before did.
        err = r.rto_seconds - truth[edge_of[name]]
        assert -HANDLING <= err <= interval + HANDLING, (name, r.rto_seconds, truth[edge_of[name]])
    sp = vt.spread(rtos, interval)
    truth_spread = max(truth.values()) - min(truth.values())
    assert truth_spread > 2 * interval  # the lab's locations really got it at different times
    assert sp.seconds is not None and sp.real and sp.complete
    assert abs(sp.seconds - truth_spread) <= interval + 2 * HANDLING, (sp, truth)
    assert (edge_of[sp.first or ""], edge_of[sp.last or ""]) == (min(truth, key=truth.__getitem__), max(truth, key=truth.__getitem__))
    assert "different edge locations" in vt.explain("maintenance", rtos, sp)
