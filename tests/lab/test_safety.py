"""Refusals before the first change: the production guard and one drill per target (blob lease).

A non-lab target is made from a running lab (its endpoints written in literally, no `lab:`
section), so the guard's live identity checks (STS, the Azure subscription) really run.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import yaml

from drill.config import load_target, read_raw, resolve_path, substitute
from drivers.safety import DrillLock, Refused, check_production_guard
from lab.client import LabProcess

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
MOTO_ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    lab = LabProcess(30.0, workdir=tmp_path_factory.mktemp("lab"), watch_parent=True)
    try:
        yield lab.start(), lab.workdir / "endpoints.json"
    finally:
        lab.stop()


def production_like(endpoints: dict[str, Any], tmp_path: Path, guard: dict[str, Any] | None) -> Path:
    raw = substitute(read_raw(resolve_path("lab")), endpoints)
    raw.pop("lab")
    raw["name"] = "prod-like"
    if guard is not None:
        raw["guard"] = guard
    path = tmp_path / "prod-like.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def web_desired(endpoints: dict[str, Any]) -> int:
    eks = boto3.client("eks", region_name=endpoints["region"], endpoint_url=endpoints["aws_endpoint"],
                       aws_access_key_id=endpoints["aws_access_key_id"], aws_secret_access_key=endpoints["aws_secret_access_key"])
    return eks.describe_nodegroup(clusterName="blue-eks", nodegroupName="blue-web-ng")["nodegroup"]["scalingConfig"]["desiredSize"]


def run_drill(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", f"--reports-dir={tmp_path / 'reports'}",
         f"--alluredir={tmp_path / 'allure'}", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    ("guard", "opt_in", "expected"),
    [
        ({"aws_account_ids": [MOTO_ACCOUNT]}, False, "set DRILL_ALLOW_PRODUCTION=1"),
        (None, True, "no guard.aws_account_ids allowlist"),
        ({"aws_account_ids": ["111122223333"]}, True, f"account {MOTO_ACCOUNT}, which target 'prod-like' does not allow"),
        ({"aws_account_ids": [MOTO_ACCOUNT], "azure_subscription_ids": ["someone-else"]}, True, "is not in target 'prod-like'"),
    ],
    ids=["no opt-in", "no allowlist", "unlisted AWS account", "unlisted Azure subscription"],
)
def test_production_guard_refuses_before_any_change(
    running_lab: tuple[dict[str, Any], Path], tmp_path: Path, guard: dict[str, Any] | None, opt_in: bool, expected: str,
) -> None:
    endpoints, _ = running_lab
    target = production_like(endpoints, tmp_path, guard)
    env = {"DRILL_ALLOW_PRODUCTION": "1"} if opt_in else {"DRILL_ALLOW_PRODUCTION": ""}
    proc = run_drill(tmp_path, f"--target={target}", env=env)
    assert proc.returncode == 3, proc.stdout[-2000:]
    assert "dr-drill refused to start" in proc.stdout + proc.stderr and expected in proc.stdout + proc.stderr
    assert web_desired(endpoints) == 2
    assert not (tmp_path / "reports" / "evidence").exists()


def test_production_guard_lets_an_allowed_target_through(running_lab: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    endpoints, _ = running_lab
    guard = {"aws_account_ids": [MOTO_ACCOUNT], "azure_subscription_ids": [endpoints["azure_subscription_id"]]}
    target = load_target(str(production_like(endpoints, tmp_path, guard)))
    verified = check_production_guard(target, environ={"DRILL_ALLOW_PRODUCTION": "1"})
    assert verified == [f"AWS account {MOTO_ACCOUNT} allowed",
                        f"Azure subscription {endpoints['azure_subscription_id']} allowed and reachable"]


def test_a_second_drill_on_the_same_target_is_refused(running_lab: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    endpoints, endpoints_file = running_lab
    lock = DrillLock(load_target("lab", endpoints))
    lock.acquire("run-of-another-operator")
    try:
        proc = run_drill(tmp_path, f"--lab-endpoints={endpoints_file}", env={"DRILL_OPERATOR": "second"})
        out = proc.stdout + proc.stderr
        assert proc.returncode == 3, out[-2000:]
        assert "is being drilled by" in out and "(run run-of-another-operator)" in out and "drill unlock" in out
        assert web_desired(endpoints) == 2
        with pytest.raises(Refused):
            DrillLock(load_target("lab", endpoints)).acquire("a-third-one")
    finally:
        lock.release()
    # A stale lock (its holder killed) is broken explicitly.
    stale = DrillLock(load_target("lab", endpoints))
    stale.acquire("killed-run")
    out = subprocess.run([sys.executable, "-m", "drill.cli", "unlock", "--lab-endpoints", str(endpoints_file), "--break"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "(run killed-run)" in out.stdout and "lock broken" in out.stdout
    again = DrillLock(load_target("lab", endpoints))
    again.acquire("next-run")
    again.release()
