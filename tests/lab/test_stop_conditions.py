"""Stop conditions fire, the drill stops, the ledger unwinds, and the evidence says which fired."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.blob import BlobServiceClient, ContentSettings

from lab.client import LabProcess

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    lab = LabProcess(30.0, workdir=tmp_path_factory.mktemp("lab"), watch_parent=True)
    try:
        yield lab.start(), lab.workdir / "endpoints.json"
    finally:
        lab.stop()


def drill_with(tmp_path: Path, endpoints_file: Path, stop: dict[str, float],
               sigint_ignored: bool = False) -> tuple[subprocess.CompletedProcess[str], dict]:
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    raw["stop"] = stop
    target = tmp_path / "lab-stop.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True))
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", f"--target={target}",
         f"--lab-endpoints={endpoints_file}", f"--reports-dir={reports}", f"--alluredir={reports / 'allure'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        # As a background job of a non-interactive shell (`pytest -m drill &` in a script) starts it.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )
    return proc, json.loads(((reports / "evidence" / "latest").resolve() / "summary.json").read_text())


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["sigint-default", "sigint-inherited-ignored"])
def test_a_phase_longer_than_its_maximum_is_stopped_and_unwound(running_lab: tuple[dict[str, Any], Path], tmp_path: Path,
                                                                 sigint_ignored: bool) -> None:
    _, endpoints_file = running_lab
    # 120 real seconds = 4 s in the lab; Phase 1 needs ~5 s for the nodes to drain.
    proc, summary = drill_with(tmp_path, endpoints_file, {"max_phase_seconds": 120}, sigint_ignored)
    assert proc.returncode != 0
    assert "phase1 ran longer than its maximum 4.0s" in (summary["stopped_by"] or "")
    assert summary["verdict"] == "failed"
    assert summary["restore"]["failures"] == [] and summary["baseline_diff"] == []


def test_errors_beyond_the_budget_stop_the_drill(running_lab: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    endpoints, endpoints_file = running_lab
    svc = BlobServiceClient(endpoints["blob_endpoint"], credential={"account_name": endpoints["storage_account"],
                                                                    "account_key": endpoints["storage_account_key"]})
    page = svc.get_blob_client("$web", "index.html")
    content = page.download_blob().readall()
    page.delete_blob()  # the maintenance page is gone: failing over, users get a 404 = error
    try:
        proc, summary = drill_with(tmp_path, endpoints_file, {"max_error_seconds": 60})
    finally:
        page.upload_blob(content, overwrite=True, content_settings=ContentSettings(content_type="text/html; charset=utf-8"))
    assert proc.returncode != 0
    assert "users got errors for" in (summary["stopped_by"] or ""), summary["stopped_by"]
    assert summary["downtime_seconds"] > 2.0
    assert summary["restore"]["failures"] == [] and summary["baseline_diff"] == []
