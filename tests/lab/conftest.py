"""One real Phase 1 drill, shared by the lab tests that examine what a drill leaves behind.

It runs as an operator would (`pytest -m phase1` in a subprocess, its own lab, its own reports
directory), with known secret values in its environment, and keeps the lab's workdir so the tests
can read the secrets the lab generated (endpoints.json) and look for them in every output file.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = re.compile(r"password|secret|key|token|connection_string", re.I)
# Known secrets planted where a drill could pick them up: the process environment, CI's token.
PLANTED = {
    "DRILL_TEST_SECRET": "drill-test-secret-7Qm2xV9pL4",
    "GITHUB_TOKEN": "ghs_drillTestToken0123456789abcdef",
    "ACTIONS_RUNTIME_TOKEN": "actions-runtime-token-5Kd8s2",
}


@dataclass
class DrillOutput:
    root: Path  # TMPDIR of the drill (the lab's workdir is in here)
    reports: Path
    bundle: Path
    allure_results: Path
    env: dict[str, str]
    proc: subprocess.CompletedProcess[str]
    seconds: float
    endpoints: dict[str, Any] = field(default_factory=dict)
    finalized_by_drill: bool = False

    def secrets(self) -> dict[str, str]:
        """Every secret value the drill could have seen: planted ones and the lab's generated ones."""
        out = {f"env:{k}": v for k, v in PLANTED.items()}
        for k, v in self.endpoints.items():
            if SECRET_KEY.search(k) and isinstance(v, str) and len(v) >= 6 and not v.startswith("/"):
                out[f"lab:{k}"] = v
        for kubeconfig in self.root.glob("dr-drill-lab-*/aks/**/kubeconfig"):
            for token in re.findall(r"token:\s*['\"]?([^\s'\"]+)", kubeconfig.read_text(errors="replace")):
                out["lab:aks_token"] = token
        return out


@pytest.fixture(scope="session")
def phase1_drill(tmp_path_factory: pytest.TempPathFactory) -> DrillOutput:
    root = tmp_path_factory.mktemp("phase1-drill")
    reports = root / "reports"
    env = dict(os.environ, TMPDIR=str(root), DRILL_OPERATOR="evidence-test", DRILL_KEEP_LAB="1",
               GITHUB_ACTIONS="true", GITHUB_RUN_ID="4242", GITHUB_RUN_NUMBER="17", GITHUB_REPOSITORY="acme/dr-drill",
               GITHUB_SERVER_URL="https://github.com", GITHUB_WORKFLOW="dr-drill", GITHUB_ACTOR="octo",
               GITHUB_EVENT_NAME="workflow_dispatch", **PLANTED)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", "--reports-dir", str(reports),
         f"--alluredir={reports / 'allure-results'}", "steps/cloudfront/test_phase1.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    bundle = (reports / "evidence" / "latest").resolve()
    out = DrillOutput(root, reports, bundle, reports / "allure-results", env, proc, seconds)
    labs = sorted(root.glob("dr-drill-lab-*/endpoints.json"))
    assert labs, "the lab's workdir is gone: DRILL_KEEP_LAB=1 was not honoured"
    out.endpoints = json.loads(labs[0].read_text())
    out.finalized_by_drill = (bundle / "manifest.json").exists()
    if not out.finalized_by_drill:
        # Until steps/runtime.py calls it: the same call, in a process with the drill's environment.
        code = ("import sys; from pathlib import Path; from drill.finalize import finalize_bundle; "
                "sys.exit(1 if finalize_bundle(Path(sys.argv[1]), Path(sys.argv[2])) else 0)")
        fin = subprocess.run([sys.executable, "-c", code, str(bundle), str(out.allure_results)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
        assert fin.returncode == 0, fin.stdout + fin.stderr
    return out
