"""Interrupted drills put everything back: Ctrl-C/SIGTERM unwind at once; SIGKILL via `drill unwind`.

The lab runs apart from the drill (as `drill lab up` does) so that a killed drill leaves it up.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

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
         f"--alluredir={reports / 'allure-results'}", f"--lab-endpoints={endpoints_file}", "steps/test_phase1.py"],
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
    out = subprocess.run(
        [sys.executable, "-m", "drill.cli", "unwind", str(ledger), "--target", "lab", "--lab-endpoints", str(endpoints_file)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restore node group blue-web-ng" in out.stdout
    assert web_scaling(endpoints) == before
    assert site_back_on_aws(endpoints)
    # Idempotent: a second unwind has nothing left to do.
    again = subprocess.run(
        [sys.executable, "-m", "drill.cli", "unwind", str(ledger), "--target", "lab", "--lab-endpoints", str(endpoints_file)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0 and "0 outstanding change(s)" in again.stdout
