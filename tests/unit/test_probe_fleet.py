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
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from drill import vantages as vt
from drill.classify import PETCLINIC_TITLE
from drivers.probe import LOCUSTFILE, ProbeFleet, Vantage, worker_argv, worker_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PETCLINIC = f"<html><head><title>{PETCLINIC_TITLE}</title></head><body>Welcome</body></html>".encode()
RATE = 20.0


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    server: "_Site"

    def do_GET(self) -> None:  # noqa: N802
        status = 200 if time.monotonic() < self.server.down_at else 503
        body = PETCLINIC if status == 200 else b"down"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Amz-Cf-Pop", self.server.pop)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Site(ThreadingHTTPServer):
    """One "edge location": answers PetClinic until `down_at` (monotonic), then 503, naming itself."""

    daemon_threads = True

    def __init__(self, host: str, pop: str) -> None:
        super().__init__((host, 0), _Handler)
        self.pop = pop
        self.down_at = float("inf")
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"{self.server_address[0]}:{self.server_address[1]}"


@pytest.fixture
def sites() -> Iterator[list[_Site]]:
    made = [_Site("127.0.0.1", "ICN-TEST"), _Site("127.0.0.11", "NRT-TEST")]
    yield made
    for s in made:
        s.shutdown()
        s.server_close()


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


def _until(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
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
    drill = [sys.executable, "-m", "drill.cli"]
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


def test_a_killed_worker_is_an_unobserved_gap_and_the_others_go_on(sites, tmp_path: Path) -> None:
    icn, nrt = sites
    fleet = ProbeFleet(f"http://127.0.0.1:{icn.server_address[1]}/", tmp_path / "timeline.jsonl",
                       [Vantage("seoul"), Vantage("tokyo", connect_to=nrt.address)], rate_per_second=RATE, users=2)
    with fleet:
        time.sleep(1.0)
        pid = fleet.worker_pid("tokyo")
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        killed = time.monotonic()
        assert _until(lambda: fleet.gone("tokyo"), 5)  # its process is gone
        missing = lambda: {w["vantage"]: w["state"] for w in fleet.status().get("workers", [])}.get("tokyo") == "missing"  # noqa: E731
        assert _until(missing, 15), "the master never noticed the worker was gone"
        noticed = time.monotonic()
        assert not fleet.gone("seoul")
        time.sleep(1.0)
        end = time.monotonic()
    by = vt.split(fleet.samples(), ["seoul", "tokyo"])
    seoul = by["seoul"]
    assert seoul[-1].seen > noticed + 0.5  # seoul went on past the master losing tokyo,
    assert max(b.seen - a.seen for a, b in zip(seoul, seoul[1:])) < fleet.max_gap  # without a gap of its own
    assert by["tokyo"][-1].mono < killed
    start = min(s.seen for v in by.values() for s in v)
    stats = vt.vantage_stats(by["tokyo"], fleet.max_gap, start, end, 0.5, 3)
    # From its last sample (+ the longest silence still observed) to the end: unobserved, never aws.
    assert stats["unobserved_seconds"] == pytest.approx(end - (by["tokyo"][-1].seen + fleet.max_gap), abs=0.01)
    assert stats["seconds_by_class"]["aws"] <= by["tokyo"][-1].seen + fleet.max_gap - by["tokyo"][0].seen + 1e-6
    rtos = vt.phase_rtos(by, "error", killed, 0.5, 3, fleet.max_gap, end)
    assert {r.vantage: r.state for r in rtos} == {"seoul": vt.NOT_REACHED, "tokyo": vt.UNOBSERVED}
