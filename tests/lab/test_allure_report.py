"""`drill report`: Allure 2 offline, one HTML file, history carried over, failures categorised."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from drill.allure_meta import ALLURE_BIN, FOLDED, MAX_PENDING, generate_report, start_session

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCENARIO = "The web node group is scaled to zero and CloudFront fails over to the maintenance page"
# A step's attachment, and the timeline chart conftest.py attaches after DrillRun.finish.
ATTACHMENT = "measured vs target"
CHART = "timeline: what users saw"

needs_allure = pytest.mark.skipif(not ALLURE_BIN.exists() or shutil.which("java") is None,
                                  reason="Allure 2 (./setup.sh) and Java are needed")


def embedded(index: Path) -> dict[str, Any]:
    """The data files Allure's single-file report embeds: d('path','base64')."""
    text = index.read_text(encoding="utf-8")
    return {name: json.loads(base64.b64decode(b64)) for name, b64 in re.findall(r"d\('([^']+\.json)','([A-Za-z0-9+/=]*)'\)", text)}


def drill_report(results: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill_cli", "report", "--results", str(results), "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


def dump_dom(url: str, profile: Path) -> str:
    res = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@needs_allure
@pytest.mark.lab
@pytest.mark.slow
def test_drill_report_renders_the_drill_offline_and_carries_history(phase1_drill, tmp_path: Path) -> None:
    out = phase1_drill.reports / "allure-report"
    t0 = time.monotonic()
    res = drill_report(phase1_drill.allure_results, out, "--evidence", str(phase1_drill.bundle))
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    index = out / "index.html"
    assert res.stdout.strip() == f"report: {index}"
    assert sorted(p.name for p in out.iterdir()) == ["history", "index.html"]  # one portable file (+ history)
    data = embedded(index)
    (case,) = [v for k, v in data.items() if k.startswith("data/test-cases/")]
    assert case["name"] == SCENARIO and case["status"] == "passed"
    env = {e["name"]: e["values"] for e in data["widgets/environment.json"]}
    assert env["target"] == ["lab"] and env["time_scale"] == ["30.0"]
    assert data["widgets/executors.json"][0]["type"] == "github"
    assert len(json.loads((out / "history" / "history-trend.json").read_text())) == 1
    assert took < 60, took

    if CHROMIUM.exists():
        overview = dump_dom(index.as_uri(), tmp_path / "chromium")
        assert "GitHub Actions" in overview and "time_scale" in overview
        page = dump_dom(f"{index.as_uri()}#testresult/{case['uid']}", tmp_path / "chromium")
        assert SCENARIO in page and ATTACHMENT in page and CHART in page
    else:
        pytest.skip("no /usr/bin/chromium (setup.sh installs it where apt has it): the render check did not run")

    # Reporting the same run again is the same report: one run, one point of the Trend.
    again = drill_report(phase1_drill.allure_results, out, "--evidence", str(phase1_drill.bundle))
    assert again.returncode == 0, again.stderr
    assert len(json.loads((out / "history" / "history-trend.json").read_text())) == 1


@needs_allure
def test_failures_land_in_exactly_one_category_with_allure_itself(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "report"
    results.mkdir()
    cases = {
        "rto": ("failed", "AssertionError: maintenance-page RTO 7.20s exceeds the target 6.00s\nassert False", "RTO breach"),
        "rto-never": ("failed", "AssertionError: users never got PetClinic from Azure", "RTO breach"),
        "rpo": ("failed", "AssertionError: RPO 12.30s exceeds the target 10.00s", "RPO breach"),
        "boto": ("broken", "botocore.exceptions.ClientError: An error occurred (ResourceInUseException)", "Infrastructure error"),
        "azure": ("broken", "azure.core.exceptions.HttpResponseError: (Conflict)", "Infrastructure error"),
        "kube": ("broken", "kubernetes.client.exceptions.ApiException: (404)", "Infrastructure error"),
        "tf": ("broken", "drivers.provisioner.ProvisionerError: terraform apply failed (exit 1)", "Infrastructure error"),
        "timeout": ("broken", "TimeoutError: the node group did not settle", "Infrastructure error"),
        "harness": ("broken", "KeyError: 'phase2.restored'", "Harness error"),
        "finding": ("failed", "AssertionError: users see 'maintenance', not PetClinic from Azure", "Product defects"),
    }
    now = int(time.time() * 1000)
    for name, (status, message, _) in cases.items():
        u = str(uuid.uuid4())
        (results / f"{u}-result.json").write_text(json.dumps({
            "uuid": u, "historyId": name, "testCaseId": name, "name": name, "fullName": name, "status": status,
            "statusDetails": {"message": message, "trace": f"Traceback (most recent call last):\n{message}"},
            "start": now, "stop": now + 1, "labels": []}))
    generate_report(results, out)
    got: dict[str, list[str]] = {}

    def leaves(node: dict[str, Any], category: str) -> None:
        for child in node.get("children", []):
            if "children" in child:
                leaves(child, category)
            else:
                got.setdefault(child["name"], []).append(category)

    for cat in embedded(out / "index.html")["data/categories.json"]["children"]:
        leaves(cat, cat["name"])
    assert got == {name: [category] for name, (_, _, category) in cases.items()}


def _fake_drill(results: Path, run_id: str, verdict: str, scenarios: list[str]) -> None:
    """Allure results as a drill session leaves them: one result per scenario, the run's environment."""
    results.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    for name in scenarios:
        u = str(uuid.uuid4())
        (results / f"{u}-result.json").write_text(json.dumps({
            "uuid": u, "historyId": name, "testCaseId": name, "name": name, "fullName": name, "status": "passed",
            "start": now, "stop": now + 1000, "labels": []}))
    (results / "environment.properties").write_text(f"run_id={run_id}\nverdict={verdict}\n")


@needs_allure
def test_two_runs_then_drill_report_shows_the_last_run_and_a_trend_of_both(tmp_path: Path) -> None:
    """The issue's mix-up: a drill, then a dry run, then `drill report` showed verdict dry-run over the
    drill's phases, with an empty Trend. Now each session's results are its own (start_session, as
    conftest.py calls it when a session starts) and the Trend carries every run."""
    results, out = tmp_path / "reports" / "allure-results", tmp_path / "reports" / "allure-report"
    _fake_drill(results, "run-1", "passed", ["phase 1 drill", "phase 2 drill"])
    assert start_session(results) == "pending"  # the next session starts: run 1 was never reported
    _fake_drill(results, "run-2", "dry-run", ["phase 1 dry run"])
    res = drill_report(results, out)
    assert res.returncode == 0, res.stderr
    data = embedded(out / "index.html")
    cases = [v["name"] for k, v in data.items() if k.startswith("data/test-cases/")]
    assert cases == ["phase 1 dry run"]
    env = {e["name"]: e["values"] for e in data["widgets/environment.json"]}
    assert env["run_id"] == ["run-2"] and env["verdict"] == ["dry-run"]
    trend = json.loads((out / "history" / "history-trend.json").read_text())
    assert [t["data"]["total"] for t in trend] == [1, 2]  # newest first: run 2 (1 test), run 1 (2 tests)
    assert not (tmp_path / "reports" / "allure-pending").exists() or not any((tmp_path / "reports" / "allure-pending").iterdir())
    # Reported again: the same report. Then a third run: three points.
    assert drill_report(results, out).returncode == 0
    assert len(json.loads((out / "history" / "history-trend.json").read_text())) == 2
    assert (results / FOLDED).exists() and start_session(results) == "dropped"
    _fake_drill(results, "run-3", "passed", ["phase 1 drill"])
    assert drill_report(results, out).returncode == 0
    assert len(json.loads((out / "history" / "history-trend.json").read_text())) == 3


def test_a_session_start_touches_only_allures_own_files(tmp_path: Path) -> None:
    d = tmp_path / "odd-alluredir"
    _fake_drill(d, "r", "passed", ["x"])
    (d / "mine.txt").write_text("not Allure's")
    (d / "notes").mkdir()
    assert start_session(d) == "pending"
    assert sorted(p.name for p in d.iterdir()) == ["mine.txt", "notes"]
    assert start_session(tmp_path / "missing") == "empty"
    for n in range(25):  # never reported: only the newest MAX_PENDING wait
        _fake_drill(d, f"r{n}", "passed", ["x"])
        assert start_session(d) == "pending"
    assert len(list((tmp_path / "allure-pending").iterdir())) == MAX_PENDING


def test_drill_report_without_allure_says_how_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    env = dict(os.environ, DRILL_ALLURE=str(tmp_path / "missing" / "allure"))
    res = drill_report(tmp_path / "results", tmp_path / "out", env=env)
    assert res.returncode == 1 and "Allure is not installed" in res.stderr and "./setup.sh" in res.stderr


@needs_allure
def test_drill_report_without_results_is_a_clear_error(tmp_path: Path) -> None:
    res = drill_report(tmp_path / "nothing", tmp_path / "out")
    assert res.returncode == 1 and "no Allure results in" in res.stderr and "pytest -m drill" in res.stderr
