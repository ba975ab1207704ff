"""drivers.probe.ProbeFleet against real local HTTP servers: a Locust master, workers per vantage, real requests.

What is pinned: every sample carries its vantage and comes back through the master (Locust's own
channel) onto one timeline; a vantage with `connect_to` reaches the site through that address and
records the edge location that answered; a worker on a host with other clocks has its samples put
on the master's clock within the estimated uncertainty (checked against the instant the server
changed its answer); a remote worker joins with `drill probe-worker`; an undeclared vantage is
refused; a killed worker leaves its vantage unobserved, never up, while the others go on.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from drill import vantages as vt
from drivers.probe import ProbeFleet, Vantage, worker_argv, worker_env
from lab.scripted_site import ScriptedSite

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
RATE = 20.0


@pytest.fixture
def sites() -> Iterator[list[ScriptedSite]]:
    # Two "edge locations", each PetClinic until its `down_at` (monotonic), then 503, naming itself.
    made = [ScriptedSite(host="127.0.0.1", pop="ICN-TEST"), ScriptedSite(host="127.0.0.11", pop="NRT-TEST")]
    yield made
    for s in made:
        s.stop()


@pytest.fixture(autouse=True)
def no_leftover_locust() -> Iterator[None]:
    yield
    me = psutil.Process()
    left = [p for p in me.children(recursive=True) if "locust" in " ".join(p.cmdline()) or "skewed" in " ".join(p.cmdline())]
    for p in left:
        p.kill()
    assert not left, f"probe processes left behind: {[p.pid for p in left]}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def test_local_vantages_each_reach_the_site_their_way_and_report_through_the_master(sites, tmp_path: Path) -> None:
    icn, nrt = sites
    fleet = ProbeFleet(f"http://127.0.0.1:{icn.server_address[1]}/", tmp_path / "timeline.jsonl",
                       [Vantage("seoul"), Vantage("tokyo", connect_to=nrt.address)], rate_per_second=RATE, users=2)
    with fleet:
        time.sleep(2.0)
        status = fleet.status()
    by = vt.split(fleet.samples(), ["seoul", "tokyo"])
    assert {s.edge for s in by["seoul"]} == {"ICN-TEST"} and {s.edge for s in by["tokyo"]} == {"NRT-TEST"}
    for name, samples in by.items():
        assert len(samples) >= RATE * 2.0 * 0.6, f"{name}: {len(samples)} samples in 2 s at {RATE}/s"
        assert {s.cls for s in samples} == {"aws"}
    # One clock on this host: the estimated offset must contain 0 within its uncertainty.
    workers = {w["vantage"]: w for w in status["workers"]}
    assert set(workers) == {"seoul", "tokyo"}
    for w in workers.values():
        clock = w["clock"]
        assert clock["exchanges"] >= 3 and abs(clock["offset_seconds"]) <= clock["uncertainty_seconds"] + 1e-6
        assert w["holds_vantage"] and w["state"] == "running"
    # Users are kept per worker (Locust itself keeps only a total).
    assert not fleet.running()


def test_a_vantage_resolving_through_its_own_caching_resolver_reports_the_address_through_the_master(
        sites, tmp_path: Path) -> None:
    from lab.dns import DnsServer

    _, nrt = sites
    host, port = nrt.server_address[:2]
    dns = DnsServer(lambda name: [(str(host), 60)] if name == "www.example.test" else None).start()
    try:
        fleet = ProbeFleet(f"http://www.example.test:{port}/", tmp_path / "timeline.jsonl",
                           [Vantage("seoul", resolver={"nameserver": dns.nameserver, "time_scale": 30.0, "honour_ttl": True})],
                           rate_per_second=RATE, users=2)
        with fleet:
            time.sleep(1.5)
    finally:
        dns.stop()
    samples = fleet.samples()
    assert samples and {s.cls for s in samples} == {"aws"}, {s.cls for s in samples}
    # The worker's samples crossed the master–worker channel with the address that served them.
    assert {s.address for s in samples} == {str(host)} and {s.vantage for s in samples} == {"seoul"}


def test_a_worker_with_other_clocks_is_put_on_the_masters_clock(sites, tmp_path: Path) -> None:
    icn, _ = sites
    port = _free_port()
    fleet = ProbeFleet(f"http://127.0.0.1:{icn.server_address[1]}/", tmp_path / "timeline.jsonl",
                       [Vantage("here"), Vantage("far", worker="remote")], rate_per_second=RATE, users=2, port=port,
                       join_timeout=30)
    # The "remote host": its monotonic clock 1000 s ahead, its wall clock 37 s behind.
    env = dict(worker_env("far"), SKEW_MONO="1000", SKEW_WALL="-37", PYTHONPATH=str(REPO))
    argv = worker_argv("127.0.0.1", port)
    far = subprocess.Popen([sys.executable, str(REPO / "tests/unit/skewed_clock_worker.py"), *argv[3:]], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with fleet:
            time.sleep(1.5)
            switch_mono, switch_wall = time.monotonic(), time.time()
            icn.down_at = switch_mono
            time.sleep(1.5)
            status = fleet.status()
    finally:
        far.kill()
        far.wait()
    clock = {w["vantage"]: w for w in status["workers"]}["far"]
    assert clock["clock"]["offset_seconds"] == pytest.approx(1000, abs=0.01)
    assert clock["wall_clock"]["offset_seconds"] == pytest.approx(-37, abs=0.01)
    samples = vt.split(fleet.samples(), ["here", "far"])["far"]
    assert samples and all(s.clock_offset == pytest.approx(-1000, abs=0.01) for s in samples)
    # Ground truth: the server turned 503 at switch_mono on this (the master's) clock. A request sent
    # clearly before it (answered before it) got PetClinic, one sent clearly after got the error.
    for s in samples:
        slack = s.clock_uncertainty + 0.005
        if s.seen < switch_mono - slack:
            assert s.cls == "aws", s
        elif s.mono > switch_mono + slack:
            assert s.cls == "error", s
        assert abs((s.t - s.mono) - (switch_wall - switch_mono)) < 0.05  # the wall clock too
    assert any(s.cls == "aws" for s in samples) and any(s.cls == "error" for s in samples)


def test_a_remote_worker_joins_with_drill_probe_worker_and_an_undeclared_one_is_refused(sites, tmp_path: Path) -> None:
    icn, nrt = sites
    port = _free_port()
    fleet = ProbeFleet(f"http://127.0.0.1:{icn.server_address[1]}/", tmp_path / "timeline.jsonl",
                       [Vantage("tokyo", worker="remote", where="a runner in Tokyo", connect_to=nrt.address)],
                       rate_per_second=RATE, users=2, port=port, join_timeout=30)
    drill = [sys.executable, "-m", "drill_cli"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    remote = subprocess.Popen([*drill, "probe-worker", "--master", f"127.0.0.1:{port}", "--vantage", "tokyo"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with fleet:
            stranger = subprocess.run([*drill, "probe-worker", "--master", f"127.0.0.1:{port}", "--vantage", "lisbon"],
                                      cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
            time.sleep(1.0)
            status = fleet.status()
            samples = fleet.samples()
        remote.wait(timeout=30)  # the master's quit reaches it: it ends with the drill
    finally:
        if remote.poll() is None:
            remote.kill()
    assert stranger.returncode == 2 and "not declared" in stranger.stderr and "lisbon" in stranger.stderr
    assert [r["vantage"] for r in status["refused"]] == ["lisbon"]
    assert {s.vantage for s in samples} == {"tokyo"} and {s.edge for s in samples} == {"NRT-TEST"}


def _drill_run(site_url: str, tokyo: str, port: int, tmp_path: Path) -> Any:
    """A DrillRun on lab-vantages' probe settings: seoul local (the site address), tokyo remote (via `tokyo`)."""
    from drill.config import placeholder_value, read_raw, resolve_path, substitute, validate
    from drill.evidence import Masker
    from steps.runtime import DrillRun

    raw = read_raw(resolve_path("lab-vantages"))
    raw.pop("stop", None)  # no stop condition may signal this test's own process
    raw["site"]["url"] = site_url
    raw["probe"].update(rate_per_second=RATE, users=2, master={"port": port, "join_timeout_seconds": 30}, vantages=[
        {"name": "seoul"}, {"name": "tokyo", "worker": "remote", "where": "another host", "connect_to": tokyo}])
    target = validate(substitute(raw, placeholder_value), "lab-vantages (test)")
    return DrillRun(target, tmp_path / "reports", Masker())


def test_a_remote_worker_killed_mid_drill_is_an_unobserved_gap_and_the_drill_goes_on(sites, tmp_path: Path) -> None:
    from steps.runtime import Instant

    icn, nrt = sites
    port = _free_port()
    run = _drill_run(f"http://127.0.0.1:{icn.server_address[1]}/", nrt.address, port, tmp_path)
    # The way an operator starts it on another host: its own process, only the master's address.
    remote = subprocess.Popen([sys.executable, "-m", "drill_cli", "probe-worker", "--master", f"127.0.0.1:{port}",
                               "--vantage", "tokyo"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run.ensure_probe()  # returns once the remote vantage's first sample is on the timeline
        time.sleep(1.0)
        assert {s.edge for s in run.by_vantage()["tokyo"]} == {"NRT-TEST"}
        remote.kill()  # the remote host dies: no goodbye to the master
        remote.wait(timeout=10)
        killed = time.monotonic()
        fault = Instant.now()
        icn.down_at = nrt.down_at = fault.mono + 0.3
        t0 = time.monotonic()
        result = run.measure_rto("phase1", "web tier down", fault, "error", objective_real=300)
        waited = time.monotonic() - t0
        missing = {w["vantage"]: w["state"] for w in run.probe.status().get("workers", [])}.get("tokyo")
        assert run.probe.running() and not run.probe.gone("seoul")  # the drill's probe goes on
        time.sleep(1.0)
        # seoul's last sample read before the summary is made (its end is the newest sample then): the
        # probe goes on sampling, and a read after it could be later than that end (CI 2026-12-02: 0.15 s).
        seoul_last = run.by_vantage()["seoul"][-1].seen
        vantages, _ = run.vantages_summary(run.max_gap)
    finally:
        if run.probe is not None:
            run.probe.stop()
        if remote.poll() is None:
            remote.kill()
    timeout = run.target.scaled(300 + run.target.grace_seconds)
    # The drill did not wait out the phase for a vantage nobody observes any more: once the master lost
    # the worker (missing heartbeats), the phase was judged.
    assert missing == "missing" and waited < timeout - 1.0, (missing, waited, timeout)
    states = {v["vantage"]: v["state"] for v in result.detail["vantages"]}
    assert states == {"seoul": "measured", "tokyo": "unobserved"}
    # Never counted as recovered (nor as down): the verdict on the worst vantage is "not known".
    assert result.rto_seconds is None and not result.passed
    assert "tokyo was unobserved" in result.detail["explanation"]
    # Judged again on the complete timeline (as the drill does at its end): the same verdict, tokyo
    # still unobserved as of the end of the wait, seoul's RTO unchanged.
    run.rejudge_rtos()
    (again,) = run.phases
    assert {v["vantage"]: v["state"] for v in again.detail["vantages"]} == states and again.rto_seconds is None
    assert again.detail["vantages"][0]["rto_seconds"] == result.detail["vantages"][0]["rto_seconds"]
    by = {v["name"]: v for v in vantages}
    tokyo = run.by_vantage()["tokyo"]
    assert tokyo[-1].mono < killed and seoul_last > killed + waited - 0.5  # seoul went on
    # From tokyo's last sample (+ the longest silence still observed) to the end of the run: unobserved.
    assert by["tokyo"]["unobserved_seconds"] >= seoul_last - (tokyo[-1].seen + run.max_gap) - 0.05
    assert by["tokyo"]["seconds_by_class"].get("aws", 0) <= tokyo[-1].seen + run.max_gap - tokyo[0].seen + 1e-6
    # seoul: observed throughout (bar the instants before its first sample: the run starts at the first of any).
    assert by["seoul"]["unobserved_seconds"] < 1.0 / RATE and by["seoul"]["downtime_seconds"] > 0
