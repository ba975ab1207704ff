"""Refusals before the first change: the production guard, one drill per target (blob lease), and a
failover stack that is already there (never created over, never destroyed).

A non-lab target is made from a running lab (its endpoints written in literally, no `lab:`
section, real time), so the guard's live identity checks (STS, the Azure subscription) really run.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from drill.config import load_target, read_raw, resolve_path, substitute
from drill.ledger import Action, Ledger
from drivers.safety import DrillLock, Refused, check_production_guard
from lab.client import LabProcess
from lab.client import control as lab_control

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
    raw["time_scale"] = 1  # not the lab: real time (a scale is refused outside the lab)
    if guard is not None:
        raw["guard"] = guard
    path = tmp_path / "prod-like.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def web_desired(endpoints: dict[str, Any]) -> int:
    eks = boto3.client("eks", region_name=endpoints["region"], endpoint_url=endpoints["aws_endpoint"],
                       aws_access_key_id=endpoints["aws_access_key_id"], aws_secret_access_key=endpoints["aws_secret_access_key"])
    return eks.describe_nodegroup(clusterName="blue-eks", nodegroupName="blue-web-ng")["nodegroup"]["scalingConfig"]["desiredSize"]


def run_drill(tmp_path: Path, *args: str, env: dict[str, str] | None = None, marks: str = "phase1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", marks, "-p", "no:cacheprovider", f"--reports-dir={tmp_path / 'reports'}",
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
    sub = endpoints["azure_subscription_id"]
    assert verified == [f"AWS account {MOTO_ACCOUNT} allowed", f"Azure subscription {sub} allowed and reachable",
                        f"Terraform applies to subscription {sub} (ARM_SUBSCRIPTION_ID; no provider block overrides it)"]


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
    unlock = subprocess.run([sys.executable, "-m", "drill_cli", "unlock", "--lab-endpoints", str(endpoints_file), "--break"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert unlock.returncode == 0 and "(run killed-run)" in unlock.stdout and "lock broken" in unlock.stdout
    again = DrillLock(load_target("lab", endpoints))
    again.acquire("next-run")
    again.release()


def test_a_lab_section_with_endpoints_that_are_not_the_labs_is_refused_without_opt_in(
    running_lab: tuple[dict[str, Any], Path], tmp_path: Path,
) -> None:
    """`lab:` asks for a lab; it does not make a target one. Here the lab is attached and running, but
    the file sends AWS calls to the real AWS (no endpoint_url): refused before any change, no lab call."""
    endpoints, endpoints_file = running_lab
    raw = read_raw(resolve_path("lab"))
    raw["aws"].pop("endpoint_url")
    target = tmp_path / "impostor.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True))
    proc = run_drill(tmp_path, f"--target={target}", f"--lab-endpoints={endpoints_file}", env={"DRILL_ALLOW_PRODUCTION": ""})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-2000:]
    assert "dr-drill refused to start: target 'lab' has a `lab:` section, but it is not the lab: aws.endpoint_url is" in out
    assert web_desired(endpoints) == 2
    assert not (tmp_path / "reports" / "evidence").exists()
    # With the opt-in it is judged as production: a lab's time scale outside the lab is refused.
    verdict = load_target(str(target), endpoints)
    with pytest.raises(Refused, match="time_scale must be 1, not 30"):
        check_production_guard(verdict, environ={"DRILL_ALLOW_PRODUCTION": "1"}, lab_endpoints=endpoints)
    assert check_production_guard(load_target("lab", endpoints), environ={}, lab_endpoints=endpoints) == [
        "lab: every endpoint is the lab's this run started or attached: no production guard"]


def stack_resources(endpoints: dict[str, Any]) -> dict[str, str]:
    return lab_control(endpoints, "/stacks/2-failover", method="GET")["resources"]


def operators_terraform(endpoints: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """The operators' own Terraform on the failover stack (not the drill's)."""
    env = {**os.environ, "ARM_SUBSCRIPTION_ID": endpoints["azure_subscription_id"],
           "TF_VAR_mysql_admin_password": "operators-own-Passw0rd"}
    return subprocess.run([endpoints["terraform_binary"], f"-chdir={endpoints['failover_stack_dir']}", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_failover_stack_that_is_already_there_is_never_drilled_nor_destroyed(
    running_lab: tuple[dict[str, Any], Path], tmp_path: Path,
) -> None:
    endpoints, endpoints_file = running_lab
    server = "azurerm_mysql_flexible_server.main"
    # Someone's warm standby (or a real failover in progress): the data tier is up.
    made = operators_terraform(endpoints, "apply", "-auto-approve", "-input=false", f"-target={server}")
    assert made.returncode == 0, made.stdout + made.stderr
    try:
        before = stack_resources(endpoints)
        assert before[server] == "present"
        proc = run_drill(tmp_path, f"--lab-endpoints={endpoints_file}", marks="drill and phase2")
        out = proc.stdout + proc.stderr
        assert proc.returncode == 3, out[-3000:]
        assert "dr-drill refused to start: the failover stack in" in out and "already has outputs (mysql_admin_username" in out
        # Refused before the first change: the stack, the node group, the lock are as they were; no run began.
        assert stack_resources(endpoints) == before
        assert web_desired(endpoints) == 2
        assert DrillLock(load_target("lab", endpoints)).holder() is None
        assert not (tmp_path / "reports" / "evidence").exists()

        # A ledger that recorded the destroy whether or not the drill created the stack (as drills did
        # before this rule): `drill unwind` refuses that destroy and leaves the stack alone.
        run_dir = tmp_path / "reports" / "work" / "20260101T000000Z-0ddba1"
        ledger = Ledger(run_dir / "ledger.json")
        where = {"chdir": endpoints["failover_stack_dir"], "binary": endpoints["terraform_binary"]}
        ledger.applied(ledger.record(Action("provisioner.apply", where, "terraform apply of the Azure failover stack"),
                                     Action("provisioner.destroy", where, "terraform destroy of the Azure failover stack")))
        unwound = subprocess.run(
            [sys.executable, "-m", "drill_cli", "unwind", str(run_dir), "--target", "lab", "--lab-endpoints", str(endpoints_file)],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        assert unwound.returncode == 1, unwound.stdout + unwound.stderr
        assert "FAILED #1" in unwound.stderr and "not destroying the failover stack" in unwound.stderr, unwound.stderr
        assert stack_resources(endpoints) == before
        assert Ledger.load(run_dir / "ledger.json").entries[0].state == "undo_failed"
    finally:
        gone = operators_terraform(endpoints, "destroy", "-auto-approve", "-input=false")
        assert gone.returncode == 0, gone.stdout + gone.stderr
