"""Interrupted drills put everything back: Ctrl-C/SIGTERM unwind at once; SIGKILL via `drill unwind`.

The lab runs apart from the drill (as `drill lab up` does) so that a killed drill leaves it up.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from lab.client import LabProcess

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    lab = LabProcess(30.0, workdir=tmp_path_factory.mktemp("lab"), watch_parent=True)
    try:
        endpoints = lab.start()
        yield endpoints, lab.workdir / "endpoints.json"
    finally:
        lab.stop()


def eks(endpoints: dict[str, Any]) -> Any:
    return boto3.client("eks", region_name=endpoints["region"], endpoint_url=endpoints["aws_endpoint"],
                        aws_access_key_id=endpoints["aws_access_key_id"],
                        aws_secret_access_key=endpoints["aws_secret_access_key"])


def web_scaling(endpoints: dict[str, Any]) -> dict[str, int]:
    return eks(endpoints).describe_nodegroup(clusterName="blue-eks", nodegroupName="blue-web-ng")["nodegroup"]["scalingConfig"]


def start_drill(tmp_path: Path, endpoints_file: Path) -> tuple[subprocess.Popen[str], Path]:
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", f"--reports-dir={reports}",
         f"--alluredir={reports / 'allure-results'}", f"--lab-endpoints={endpoints_file}", "steps/cloudfront/test_phase1.py"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return proc, reports


def wait_for_fault(reports: Path, timeout: float = 60) -> Path:
    """The ledger once the node group change is applied (the fault is in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ledger in (reports / "work").glob("*/ledger.json"):
            try:
                entries = json.loads(ledger.read_text())["entries"]
            except (json.JSONDecodeError, OSError):
                continue
            if any(e["change"]["op"] == "aws.eks.set_scaling" and e["state"] == "applied" for e in entries):
                return ledger
        time.sleep(0.1)
    raise TimeoutError("the drill never applied its fault")


def site_back_on_aws(endpoints: dict[str, Any], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(endpoints["site_url"], timeout=2)
            if "PetClinic :: a Spring Framework demonstration" in r.text:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_after_the_fault_unwinds_and_restores(running_lab: tuple[dict[str, Any], Path], tmp_path: Path, sig: int) -> None:
    endpoints, endpoints_file = running_lab
    before = web_scaling(endpoints)
    proc, reports = start_drill(tmp_path, endpoints_file)
    try:
        wait_for_fault(reports)
        assert web_scaling(endpoints)["desiredSize"] == 0
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    summary = json.loads(((reports / "evidence" / "latest").resolve() / "summary.json").read_text())
    assert summary["verdict"] == "failed"
    assert summary["restore"]["failures"] == [] and summary["baseline_diff"] == [], out[-3000:]
    assert web_scaling(endpoints) == before
    assert site_back_on_aws(endpoints)


def test_sigkill_then_drill_unwind_restores(running_lab: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    endpoints, endpoints_file = running_lab
    before = web_scaling(endpoints)
    proc, reports = start_drill(tmp_path, endpoints_file)
    try:
        ledger = wait_for_fault(reports)
        proc.kill()  # no handler runs: nothing is undone
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert web_scaling(endpoints)["desiredSize"] == 0, "a SIGKILLed drill cannot have undone anything"
    out = unwind(ledger, endpoints_file, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restore node group blue-web-ng" in out.stdout
    # The killed drill's lease never expires: unwinding that run releases it (the next drill may start).
    assert f"drill lock: released (held by run {ledger.parent.name}" in out.stdout, out.stdout
    assert lock_of(endpoints).holder() is None
    assert web_scaling(endpoints) == before
    assert site_back_on_aws(endpoints)
    # Idempotent: a second unwind has nothing left to do.
    again = unwind(ledger, endpoints_file)
    assert again.returncode == 0 and "0 outstanding change(s)" in again.stdout
    assert "drill lock: not held" in again.stdout


def lock_of(endpoints: dict[str, Any]) -> Any:
    from drill.config import load_target
    from drivers.safety import DrillLock

    return DrillLock(load_target("lab", endpoints))


def unwind(ledger_or_run_dir: Path, endpoints_file: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drill_cli", "unwind", str(ledger_or_run_dir), "--target", "lab",
         "--lab-endpoints", str(endpoints_file)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def test_drill_unwind_releases_only_the_lock_of_the_run_it_unwinds(running_lab: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    from drill.ledger import Action, Ledger

    endpoints, endpoints_file = running_lab
    killed, other = "20260101T000000Z-aaaaaa", "20260101T000000Z-bbbbbb"
    lock_of(endpoints).acquire(killed)  # as a drill killed with its lease held (the lease object is lost)
    try:
        # Another run's unwind leaves the lock alone; a run killed before its first change has no
        # ledger.json yet, and its directory still unwinds (nothing to undo).
        (tmp_path / "work" / other).mkdir(parents=True)
        out = unwind(tmp_path / "work" / other, endpoints_file)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "0 outstanding change(s)" in out.stdout and f"held by another run ({killed}" in out.stdout, out.stdout
        assert lock_of(endpoints).holder().run_id == killed
        # The killed run's own unwind keeps its lock while the target is not back (an inverse failed) …
        ledger = Ledger(tmp_path / "work" / killed / "ledger.json")
        entry = ledger.record(Action("db.create_table", {"table": "x"}, "create a table"),
                              Action("db.drop_table", {"secret_id": "none", "table": "not a name"}, "drop a table"))
        ledger.applied(entry)
        out = unwind(tmp_path / "work" / killed, endpoints_file)
        assert out.returncode == 1 and f"drill lock: kept (held by run {killed})" in out.stdout, out.stdout + out.stderr
        assert lock_of(endpoints).holder().run_id == killed
        # … and releases it once everything is undone.
        ledger.path.unlink()  # (as if it had been undone by hand)
        out = unwind(tmp_path / "work" / killed, endpoints_file)
        assert out.returncode == 0 and f"drill lock: released (held by run {killed}" in out.stdout, out.stdout + out.stderr
        assert lock_of(endpoints).holder() is None
        nxt = lock_of(endpoints)
        nxt.acquire("20260101T000001Z-cccccc")  # the next drill may start
        nxt.release()
    finally:
        if lock_of(endpoints).holder() is not None:
            lock_of(endpoints).break_lock()
