"""One real Phase 1 drill, shared by the lab tests that examine what a drill leaves behind.

It runs as an operator would (`pytest -m phase1` in a subprocess, its own lab, its own reports
directory), with known secret values in its environment and hostile ones in its target file, and
keeps the lab's workdir so the tests can read the secrets the lab generated (endpoints.json) and
look for them in every output file. The bundle is left exactly as the drill wrote it.
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
# Hostile secrets the drill really holds: the target file takes them from the environment for
# fields a Phase 1 drill loads, masks and (the AWS key) signs every AWS call with (moto accepts
# any key). Quotes, backslashes, unicode, a newline, and one too short to mask inside free text.
HOSTILE = {
    "DRILL_HOSTILE_AWS": 'aws"se\\cr\\et\n키🔑-Q7',
    "DRILL_HOSTILE_MYSQL": "my\\sql\"pa'ss\r\n비밀-秘密",
    "DRILL_HOSTILE_SHORT": "Zq",
}
HOSTILE_FIELDS = {
    ("aws", "secret_access_key"): "DRILL_HOSTILE_AWS",
    ("azure", "mysql", "admin_password"): "DRILL_HOSTILE_MYSQL",
    ("readiness", "scratch_database", "password"): "DRILL_HOSTILE_SHORT",
}


def hostile_target(path: Path) -> Path:
    """targets/lab.yaml with the hostile secrets in place, read from the environment."""
    import yaml

    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    for keys, env in HOSTILE_FIELDS.items():
        node = raw
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = f"${{env:{env}}}"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


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

    def secrets(self) -> dict[str, str]:
        """Every secret value the drill could have seen: planted ones and the lab's generated ones."""
        out = {f"env:{k}": v for k, v in {**PLANTED, **HOSTILE}.items()}
        for k, v in self.endpoints.items():
            # Not the paths among them (a CA bundle's): a random base64 key may start with "/" too
            # (lab:storage_account_key was dropped so in 1 run of 64, failing the check that it is there).
            if SECRET_KEY.search(k) and isinstance(v, str) and len(v) >= 6 and not (v.startswith("/") and Path(v).exists()):
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
               GITHUB_EVENT_NAME="workflow_dispatch", **PLANTED, **HOSTILE)
    target = hostile_target(root / "lab-hostile.yaml")
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", "--reports-dir", str(reports),
         f"--alluredir={reports / 'allure-results'}", f"--target={target}", "steps/cloudfront/test_phase1.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    bundle = (reports / "evidence" / "latest").resolve()
    out = DrillOutput(root, reports, bundle, reports / "allure-results", env, proc, seconds)
    labs = sorted(root.glob("dr-drill-lab-*/endpoints.json"))
    assert labs, "the lab's workdir is gone: DRILL_KEEP_LAB=1 was not honoured"
    out.endpoints = json.loads(labs[0].read_text())
    # The bundle is examined as the drill left it: nothing here seals or renders it.
    return out
