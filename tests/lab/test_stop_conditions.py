"""Stop conditions fire, the drill stops, the ledger unwinds, and the evidence says which fired."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from azure.storage.blob import BlobServiceClient, ContentSettings

from lab.client import LabProcess
from lab.prometheus import alertmanager

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    lab = LabProcess(30.0, workdir=tmp_path_factory.mktemp("lab"), watch_parent=True)
    try:
        yield lab.start(), lab.workdir / "endpoints.json"
    finally:
        lab.stop()


def drill_with(tmp_path: Path, endpoints_file: Path, stop: dict[str, Any], sigint_ignored: bool = False,
               detection: bool = False) -> tuple[subprocess.CompletedProcess[str], dict]:
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    raw["stop"] = stop
    # Detection is not what most of these tests are about: without `alarms`, the unwind need not wait for
    # the design's alarms to clear (alb-5xx-errors-high takes ≈ 15 scaled minutes after the last 5xx).
    if not detection:
        raw.pop("alarms", None)
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
    latest = reports / "evidence" / "latest"
    # A drill refused before its first change leaves no run behind.
    return proc, json.loads((latest.resolve() / "summary.json").read_text()) if latest.exists() else {}


def test_an_expected_alarm_already_firing_is_not_evaluated_and_the_drill_passes(running_lab: tuple[dict[str, Any], Path],
                                                                               tmp_path: Path) -> None:
    """unhealthy-hosts, an alarm Phase 1's fault must set off, is in ALARM before the drill (a previous
    drill's, still clearing; a real incident): no OK → ALARM of it can be measured. The drill says so and
    judges the other alarms; it does not fail for a detection that could not happen (as it once did, with
    exit status 0 beside a FAILED verdict)."""
    endpoints, endpoints_file = running_lab
    cw = aws(endpoints, "cloudwatch")
    # The other expected alarms must be OK, or they too are not evaluated: first in this module, on a fresh
    # lab, they are; after another test's drill alb-5xx-errors-high takes ≈ 40 s to clear (CI, 2026-12-02).
    for other in ("alb-5xx-errors-high", "node-count-low"):
        wait_state(cw, other, "OK", timeout=120)
    original = {k: v for k, v in cw.describe_alarms(AlarmNames=["unhealthy-hosts"])["MetricAlarms"][0].items() if k in ALARM_KEYS}
    cw.put_metric_alarm(**{**original, "Threshold": -1.0, "TreatMissingData": "ignore"})
    try:
        wait_state(cw, "unhealthy-hosts", "ALARM")
        proc, summary = drill_with(tmp_path, endpoints_file, {}, detection=True)
    finally:
        cw.put_metric_alarm(**original)
        wait_state(cw, "unhealthy-hosts", "OK")
    assert proc.returncode == 0 and summary["verdict"] == "passed", proc.stdout[-3000:]
    alarms = summary["alarms"]
    assert [(x["alarm"], x["phase"], x["state_before"]) for x in alarms["not_evaluated"]] == [("unhealthy-hosts", "phase1", "ALARM")]
    judged = {d["alarm"] for d in alarms["phases"]["phase1"]}
    assert judged and "unhealthy-hosts" not in judged and alarms["passed"]
    assert "alarm unhealthy-hosts" in proc.stdout and "not evaluated: ALARM before the drill's first change" in proc.stdout


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


def aws(endpoints: dict[str, Any], service: str) -> Any:
    return boto3.client(service, region_name=endpoints["region"], endpoint_url=endpoints["aws_endpoint"],
                        aws_access_key_id=endpoints["aws_access_key_id"], aws_secret_access_key=endpoints["aws_secret_access_key"])


def once_phase1_has_struck(endpoints: dict[str, Any], action: Any) -> threading.Thread:
    """Run `action` as soon as the drill has scaled the web node group to 0 (mid-Phase 1), in a thread."""
    eks = aws(endpoints, "eks")

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ng = eks.describe_nodegroup(clusterName="blue-eks", nodegroupName="blue-web-ng")["nodegroup"]
            if ng["scalingConfig"]["desiredSize"] == 0:
                action()
                return
            time.sleep(0.1)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_a_guard_alarm_entering_alarm_mid_phase1_stops_and_unwinds(running_lab: tuple[dict[str, Any], Path],
                                                                      tmp_path: Path) -> None:
    """As an AWS FIS stop condition: the team's rds-cpu-high goes to ALARM (SetAlarmState, CloudWatch's
    own way to test an alarm) once the web tier is down; the drill stops and puts everything back. The
    lab re-evaluates the alarm a (scaled) minute later and puts it back to OK: its history still stops it."""
    endpoints, endpoints_file = running_lab
    cw = aws(endpoints, "cloudwatch")
    assert cw.describe_alarms(AlarmNames=["rds-cpu-high"])["MetricAlarms"][0]["StateValue"] == "OK"
    fired = once_phase1_has_struck(endpoints, lambda: cw.set_alarm_state(
        AlarmName="rds-cpu-high", StateValue="ALARM", StateReason="drill test: the primary database is overloaded"))
    proc, summary = drill_with(tmp_path, endpoints_file, {"alarms": ["rds-cpu-high"], "poll_seconds": 10})
    fired.join(timeout=5)
    assert proc.returncode != 0
    stopped_by = summary["stopped_by"] or ""
    assert "CloudWatch alarm rds-cpu-high" in stopped_by and "drill test: the primary database is overloaded" in stopped_by, stopped_by
    assert summary["verdict"] == "failed"
    assert summary["restore"]["failures"] == [] and summary["baseline_diff"] == [], summary["restore"]
    actions = json.loads(((tmp_path / "reports" / "evidence" / "latest").resolve() / "actions.json").read_text())
    [scaled] = [a for a in actions if a["change"]["op"] == "aws.eks.set_scaling"]
    assert scaled["state"] == "undone"


ALARM_KEYS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "MetricName", "Namespace",
              "Statistic", "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
              "ComparisonOperator", "TreatMissingData")


def wait_state(cw: Any, name: str, state: str, timeout: float = 20, required: bool = True) -> None:
    """Until alarm `name` is in `state`; past `timeout` a failure, or (not `required`: a clean-up) given up."""
    deadline = time.monotonic() + timeout
    while cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] != state:
        if time.monotonic() >= deadline:
            assert not required, f"{name} never became {state}"
            return
        time.sleep(0.2)


def test_a_guard_alarm_already_in_alarm_refuses_the_start(running_lab: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    """FIS does not start an experiment whose stop-condition alarm is in ALARM; neither does the drill.
    The alarm stays in ALARM (ignore missing data, a threshold its metric always crosses) for the run."""
    endpoints, endpoints_file = running_lab
    cw = aws(endpoints, "cloudwatch")
    original = {k: v for k, v in cw.describe_alarms(AlarmNames=["rds-cpu-high"])["MetricAlarms"][0].items() if k in ALARM_KEYS}
    cw.put_metric_alarm(**{**original, "Threshold": -1.0, "TreatMissingData": "ignore"})
    try:
        wait_state(cw, "rds-cpu-high", "ALARM")
        eks = aws(endpoints, "eks")
        before = eks.describe_nodegroup(clusterName="blue-eks", nodegroupName="blue-web-ng")["nodegroup"]["scalingConfig"]
        proc, summary = drill_with(tmp_path, endpoints_file, {"alarms": ["rds-cpu-high"]})
        assert proc.returncode != 0 and summary == {}
        assert "stop condition already in ALARM before the first change: rds-cpu-high" in proc.stdout, proc.stdout[-3000:]
        assert eks.describe_nodegroup(clusterName="blue-eks", nodegroupName="blue-web-ng")["nodegroup"]["scalingConfig"] == before
    finally:
        cw.put_metric_alarm(**original)
        wait_state(cw, "rds-cpu-high", "OK", required=False)


def test_an_alertmanager_alert_firing_mid_phase1_stops_and_unwinds(running_lab: tuple[dict[str, Any], Path],
                                                                    tmp_path: Path) -> None:
    """A real Alertmanager (Debian's): an alert that does not match the drill's labels is firing from the
    start (not a reason to refuse or stop); one that matches fires once the web tier is down."""
    endpoints, endpoints_file = running_lab
    with alertmanager() as am:
        def post(labels: dict[str, str]) -> None:
            r = httpx.post(am + "/api/v2/alerts", json=[{"labels": labels, "annotations": {"summary": "drill test"}}], timeout=5)
            r.raise_for_status()

        post({"alertname": "DiskAlmostFull", "severity": "warning", "team": "petclinic"})
        fired = once_phase1_has_struck(endpoints, lambda: post(
            {"alertname": "PetclinicDatabaseDown", "severity": "critical", "team": "petclinic"}))
        proc, summary = drill_with(tmp_path, endpoints_file, {
            "alertmanager": {"url": am, "matchers": {"severity": "critical", "team": "petclinic"}}, "poll_seconds": 10})
        fired.join(timeout=5)
    assert proc.returncode != 0
    stopped_by = summary["stopped_by"] or ""
    assert "Alertmanager alert PetclinicDatabaseDown" in stopped_by and 'severity="critical"' in stopped_by, stopped_by
    assert "DiskAlmostFull" not in stopped_by
    assert summary["verdict"] == "failed"
    assert summary["restore"]["failures"] == [] and summary["baseline_diff"] == [], summary["restore"]
