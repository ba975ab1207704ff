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

from drill.allure_meta import ALLURE_BIN, generate_report

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
    return subprocess.run([sys.executable, "-m", "drill.cli", "report", "--results", str(results), "--out", str(out), *extra],
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

    # A second report continues the first one's trends (history copied into the results first).
    again = drill_report(phase1_drill.allure_results, out, "--evidence", str(phase1_drill.bundle))
    assert again.returncode == 0, again.stderr
    assert len(json.loads((out / "history" / "history-trend.json").read_text())) == 2


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


def test_drill_report_without_allure_says_how_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    env = dict(os.environ, DRILL_ALLURE=str(tmp_path / "missing" / "allure"))
    res = drill_report(tmp_path / "results", tmp_path / "out", env=env)
    assert res.returncode == 1 and "Allure is not installed" in res.stderr and "./setup.sh" in res.stderr


@needs_allure
def test_drill_report_without_results_is_a_clear_error(tmp_path: Path) -> None:
    res = drill_report(tmp_path / "nothing", tmp_path / "out")
    assert res.returncode == 1 and "no Allure results in" in res.stderr and "pytest -m drill" in res.stderr
