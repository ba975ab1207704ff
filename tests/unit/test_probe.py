"""drivers.probe against real local HTTP servers: a Locust subprocess, real requests, real JSONL."""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

import drivers.probe as probe_mod
from drill.timeline import first_sustained_sample, load_timeline, summarize, transitions
from drivers.probe import Probe, run_standalone, split_url
from lab.scripted_site import MAINTENANCE, PETCLINIC, Respond, ScriptedSite

pytestmark = pytest.mark.slow

OUTAGE = b"<html><body>503 Service Unavailable - maintenance</body></html>"


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], ScriptedSite]]:
    servers: list[ScriptedSite] = []

    def start(respond: Respond) -> ScriptedSite:
        servers.append(ScriptedSite(respond))
        return servers[-1]

    yield start
    for srv in servers:
        srv.stop()


def _probe_processes(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            env = p.info.get("environ") or {}
            if marker in " ".join(p.info.get("cmdline") or []) or marker in env.get("DRILL_PROBE_CONFIG", ""):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(autouse=True)
def no_leftover_locust(tmp_path: Path) -> Iterator[None]:
    yield
    left = _probe_processes(str(tmp_path))
    for p in left:  # clean up before failing, so one bad test does not poison the others
        p.kill()
    assert not left, f"probe processes left behind: {[p.pid for p in left]}"


def _assert_gone(probe: Probe) -> None:
    assert probe.pid is not None
    assert not probe.running()
    with pytest.raises(ProcessLookupError):
        os.killpg(probe.pid, 0)  # nothing left in its process group


def test_split_url() -> None:
    assert split_url("http://127.0.0.1:8080/") == ("http://127.0.0.1:8080", "/")
    assert split_url("http://127.0.0.1:8080") == ("http://127.0.0.1:8080", "/")
    assert split_url("https://shop.example.com/owners/find?x=1#frag") == ("https://shop.example.com", "/owners/find?x=1")
    with pytest.raises(ValueError):
        split_url("ftp://example.com/")
    with pytest.raises(ValueError):
        split_url("/just/a/path")


def test_steady_petclinic(serve, tmp_path: Path) -> None:
    srv = serve(lambda: (200, PETCLINIC))
    out = tmp_path / "probe.jsonl"
    rate, duration = 20.0, 2.0
    with Probe(srv.url + "/petclinic/?lang=en", out, rate_per_second=rate, users=4) as probe:
        first = probe.samples()
        assert first, "start() returns only once a sample is on disk"
        time.sleep(duration)
    _assert_gone(probe)
    probe.stop()  # idempotent

    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines
    for d in lines:
        assert set(d) == {"t", "mono", "status", "latency_ms", "class", "error", "vantage"}
        assert d["vantage"] == "default"  # one standalone probe: the default vantage
        assert isinstance(d["t"], float) and isinstance(d["mono"], float) and isinstance(d["latency_ms"], float)
        assert isinstance(d["status"], int)
        assert d["latency_ms"] >= 0
        assert abs(d["t"] - time.time()) < 60
        assert (d["status"], d["class"], d["error"]) == (200, "aws", None)
    assert set(srv.paths) == {"/petclinic/?lang=en"}

    samples = load_timeline(out)
    in_window = [s for s in samples if s.seen <= samples[0].seen + duration]
    assert len(in_window) >= 0.5 * rate * duration, f"only {len(in_window)} requests in {duration}s at {rate}/s"
    assert len(samples) <= rate * (duration + 2) + probe.users  # paced, not a load test
    summ = summarize(samples, probe.max_gap)
    assert summ["downtime_seconds"] == 0.0 and summ["unobserved_seconds"] == 0.0
    assert summ["counts"]["aws"] == len(samples)
    assert probe.config_path.exists()


def test_outage_then_maintenance_downtime_matches(serve, tmp_path: Path) -> None:
    schedule: dict[str, float] = {"down": float("inf"), "maint": float("inf")}

    def respond() -> tuple[int, bytes]:
        now = time.monotonic()  # system-wide on Linux: comparable with the probe's `mono`
        if now < schedule["down"]:
            return 200, PETCLINIC
        if now < schedule["maint"]:
            return 503, OUTAGE
        return 200, MAINTENANCE

    srv = serve(respond)
    rate, outage = 20.0, 1.2
    probe = Probe(srv.url + "/", tmp_path / "probe.jsonl", rate_per_second=rate, users=4)
    probe.start()
    try:
        schedule["maint"] = time.monotonic() + 0.8 + outage  # set "maint" first: never a gap in the schedule
        schedule["down"] = schedule["maint"] - outage
        time.sleep(0.8 + outage + 1.2)
    finally:
        probe.stop()
    _assert_gone(probe)

    samples = probe.samples()
    summ = summarize(samples, probe.max_gap)
    assert summ["counts"]["aws"] > 0 and summ["counts"]["error"] > 0 and summ["counts"]["maintenance"] > 0
    assert len(summ["downtime_intervals"]) == 1, summ["downtime_intervals"]
    assert all(s.status == 503 for s in samples if s.cls == "error")
    # Each edge is seen within one probe interval (plus request latency and scheduling jitter).
    slack = probe.interval + max(s.latency_ms for s in samples) / 1000 + 0.03
    assert abs(summ["downtime_seconds"] - outage) <= slack, (summ["downtime_seconds"], outage, slack)
    iv = summ["downtime_intervals"][0]
    assert schedule["down"] <= iv["start"] <= schedule["down"] + slack
    assert schedule["maint"] <= iv["end"] <= schedule["maint"] + slack
    # RTO to the maintenance page, measured from the known switch.
    # (A request sent just before the switch can reach the server after it: RTO is a send instant.)
    first = first_sustained_sample(samples, "maintenance", after=schedule["down"], sustain=0.5, max_gap=probe.max_gap)
    assert first is not None and -first.latency_ms / 1000 <= first.mono - schedule["maint"] <= slack
    assert [x["class"] for x in transitions(samples, probe.max_gap, sustain=0.5)] == ["aws", "error", "maintenance"]


def test_refused_connection_is_status_0_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Probe(f"http://127.0.0.1:{port}/", tmp_path / "probe.jsonl", rate_per_second=20, users=2) as probe:
        time.sleep(0.5)
    _assert_gone(probe)
    samples = probe.samples()
    assert samples
    for smp in samples:
        assert smp.status == 0 and smp.cls == "error"
        assert smp.error and "refused" in smp.error.lower()
    summ = summarize(samples, probe.max_gap)
    assert summ["counts"]["error"] == len(samples)
    assert summ["downtime_seconds"] > 0


def test_start_failure_raises_with_log_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe_mod, "LOCUSTFILE", tmp_path / "missing_locustfile.py")
    probe = Probe("http://127.0.0.1:9/", tmp_path / "probe.jsonl")
    with pytest.raises(RuntimeError, match="before the first sample"):
        probe.start(wait_first_sample=30)
    _assert_gone(probe)


def test_run_standalone(serve, tmp_path: Path) -> None:
    srv = serve(lambda: (200, MAINTENANCE))
    out = tmp_path / "standalone.jsonl"
    summ = run_standalone(srv.url + "/", duration=1.0, out=out, rate_per_second=10, users=2)
    assert summ["url"] == srv.url + "/" and summ["out"] == str(out.resolve())
    assert summ["requests"] >= 5 and summ["counts"]["maintenance"] == summ["requests"]
    assert summ["downtime_seconds"] == 0.0
    json.dumps(summ)


def test_run_standalone_as_a_vantage_through_another_address(serve, tmp_path: Path) -> None:
    """`drill probe URL --vantage NAME --connect-to HOST:PORT`: the URL's site, reached at that address."""
    named, edge = serve(lambda: (200, MAINTENANCE)), serve(lambda: (200, MAINTENANCE))
    out = tmp_path / "vantage.jsonl"
    summ = run_standalone(named.url + "/", duration=1.0, out=out, rate_per_second=10, users=2, vantage="tokyo",
                          connect_to=f"127.0.0.1:{edge.server_address[1]}")
    assert summ["vantage"] == "tokyo" and summ["requests"] >= 5
    assert named.paths == [] and len(edge.paths) >= 5  # every request went to the address given
    assert {s.vantage for s in load_timeline(out)} == {"tokyo"}
