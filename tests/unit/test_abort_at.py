"""The abort matrix's plugin (tests/lab/abort_at.py) on the real features with stub steps, no lab.

The matrix trusts its marker: a cell is "yes" only if the signal went at that step, and "not
reached" if the drill failed earlier. This checks the numbering across the three features, the
signal at (and inside) the step, and that an earlier failure stops the run without firing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))

from abort_at import drill_steps, parse_spec  # noqa: E402

STUB_STEPS = r'''
import os, time
from pytest_bdd import given, parsers, scenarios, then, when

for name in ("phase1_web_tier_down.feature", "phase2_failover_to_azure.feature", "phase3_failback_to_aws.feature"):
    scenarios(os.path.join({features!r}, name))

FAIL = os.environ.get("STUB_FAIL", "")
SLOW = dict(kv.split("=") for kv in os.environ.get("STUB_SLOW", "").split(",") if kv)


@given(parsers.re(r"(?P<text>.*)"))
@when(parsers.re(r"(?P<text>.*)"))
@then(parsers.re(r"(?P<text>.*)"))
def any_step(text):
    for prefix, seconds in SLOW.items():
        if text.startswith(prefix):
            time.sleep(float(seconds))
    assert not (FAIL and text.startswith(FAIL)), "stub failure"
'''


def run(tmp_path: Path, spec: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict | None, list[dict]]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_stub_drill.py").write_text(STUB_STEPS.format(features=str(REPO / "features" / "cloudfront")))
    marker, steplog = tmp_path / "marker.json", tmp_path / "steps.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "abort_at", "-p", "no:allure_pytest_bdd",
         "--rootdir", str(tmp_path), str(tmp_path / "test_stub_drill.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "lab"), str(REPO)]),
             "DRILL_ABORT_AT": spec, "DRILL_ABORT_MARKER": str(marker), "DRILL_ABORT_STEPLOG": str(steplog), **env},
    )
    fired = json.loads(marker.read_text()) if marker.exists() else None
    log = [json.loads(line) for line in steplog.read_text().splitlines()] if steplog.exists() else []
    return proc, fired, log


def test_the_drill_has_33_steps_numbered_across_the_phases() -> None:
    steps = drill_steps()
    assert len(steps) == 33 and [s.index for s in steps] == list(range(1, 34))
    assert [s.phase for s in steps] == [1] * 9 + [2] * 15 + [3] * 9
    assert steps[0].text == "PetClinic is served from AWS" and steps[24].text == "PetClinic is served from Azure after Phase 2"
    assert parse_spec("12:sigint:3") == (12, "SIGINT", 3.0) and parse_spec("26:SIGKILL") == (26, "SIGKILL", 0.0)
    for bad in ("12", "12:SIGHUP", "0:SIGINT", "3:SIGINT:-1"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_the_signal_goes_just_before_the_step_runs(tmp_path: Path) -> None:
    proc, fired, log = run(tmp_path, "11:SIGINT")
    assert proc.returncode == 2, proc.stdout[-2000:]  # interrupted
    assert fired["reached"] and fired["step"] == 11 and fired["in_step"] == 11 and not fired["step_finished"]
    assert fired["phase"] == 2 and fired["text"].endswith("the newest backup completed before the fault is on the backup schedule")
    assert [e["step"] for e in log if e["event"] == "end"] == list(range(1, 11))  # 11 started, never ended
    assert log[-1] == {**log[-1], "event": "start", "step": 11}


def test_with_a_delay_the_signal_lands_inside_the_step(tmp_path: Path) -> None:
    proc, fired, log = run(tmp_path, "29:SIGTERM:0.5", STUB_SLOW="CloudFront's secondary origin is reverted=5")
    assert proc.returncode == -15  # no drill conftest here: SIGTERM's default action
    assert fired["reached"] and fired["in_step"] == 29 and not fired["step_finished"]
    assert [e["step"] for e in log if e["event"] == "end"] == list(range(1, 29))


def test_a_delay_longer_than_the_step_is_reported_as_such(tmp_path: Path) -> None:
    _proc, fired, _ = run(tmp_path, "2:SIGINT:1", STUB_SLOW="CloudFront's origin group fails over=5")
    assert fired["reached"] and fired["in_step"] == 3 and fired["step_finished"]


def test_an_earlier_failure_is_not_reached_and_stops_the_run(tmp_path: Path) -> None:
    proc, fired, log = run(tmp_path, "21:SIGKILL", STUB_FAIL="the ALB reports no healthy targets")
    assert fired == {"reached": False, "step": 21, "signal": "SIGKILL",
                     "reason": "step 6 failed first: AssertionError: stub failure"}
    assert proc.returncode == 2, proc.stdout[-2000:]  # stopped after Phase 1, not killed
    assert max(e["step"] for e in log) == 6  # Phases 2 and 3 never started


def test_a_bad_spec_is_a_usage_error(tmp_path: Path) -> None:
    proc, fired, _ = run(tmp_path, "40:SIGINT")
    assert proc.returncode == 4 and "step 40 does not exist" in proc.stderr and fired is None
