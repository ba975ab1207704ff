"""`pytest -m drill --target=FILE` with a bad target: one clear line, exit non-zero, nothing started.

Each case mutates targets/lab.yaml (or targets/production.example.yaml, its secrets given as
placeholder environment values) one way. No lab may start (no lab work directory appears) and so
no change can be made: validation happens in pytest_configure, and the refusal of a `lab:` target
whose endpoints are not the lab's once the drill's scenarios are chosen, before any fixture runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

INVALID, REFUSED = "invalid target", "dr-drill refused to start"
CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("missing key", lambda r: r.pop("objectives"), "objectives: Field required"),
    ("missing nested key", lambda r: r["aws"]["eks"].pop("cluster"), "aws.eks.cluster: Field required"),
    ("unknown key", lambda r: r.update(rollback="always"), "rollback: unknown key"),
    ("misspelt key", lambda r: r["probe"].update(rate=5), "probe.rate: unknown key"),
    ("wrong type", lambda r: r["probe"].update(users="four"), "probe.users"),
    ("bad URL", lambda r: r["site"].update(url="blueisthenewblack.store"), "site.url"),
    ("negative objective", lambda r: r["objectives"].update(maintenance_rto_seconds=-180), "objectives.maintenance_rto_seconds"),
    ("zero time scale", lambda r: r.update(time_scale=0), "time_scale"),
    ("bad region", lambda r: r["aws"].update(region="seoul"), "aws.region"),
    ("bad ARN", lambda r: r["aws"]["alb"].update(target_group_arn="blue-web-tg"), "aws.alb.target_group_arn"),
    ("bad classification regex", lambda r: r["probe"].update(rules=[{"name": "aws", "body_regex": "(unclosed"}]), "invalid regex"),
    ("unknown class", lambda r: r["probe"].update(rules=[{"name": "gcp"}]), "probe.rules.0.name"),
    ("port out of range", lambda r: r["azure"]["mysql"].update(port=70000), "azure.mysql.port"),
    ("unset env secret", lambda r: r["azure"]["mysql"].update(admin_password="${env:DRILL_NO_SUCH_VAR}"), "DRILL_NO_SUCH_VAR is not set"),
    # No silent defaults: an objective a selected phase compares must be set (checked once -m has selected).
    ("no RPO objective", lambda r: r["objectives"].pop("rpo_seconds"), "objectives.rpo_seconds is required when phase2 runs"),
    ("no data-restore objective", lambda r: r["objectives"].pop("data_restore_rto_seconds"),
     "objectives.data_restore_rto_seconds is required when phase2 runs"),
    ("no failback objective", lambda r: r["objectives"].pop("failback_rto_seconds"),
     "objectives.failback_rto_seconds is required when phase1 runs"),
    ("unknown Terraform auth", lambda r: r["failover_stack"].update(auth="password"), "failover_stack.auth"),
    ("admin password as a plain variable", lambda r: r["failover_stack"].update(variables={"mysql_admin_password": "x"}),
     "mysql_admin_password comes from azure.mysql.admin_password"),
    ("bad Terraform variable name", lambda r: r["failover_stack"].update(variables={"no spaces": "x"}), "not a Terraform variable name"),
    ("empty data-tier targets", lambda r: r["failover_stack"].update(data_tier_targets=[]), "failover_stack.data_tier_targets"),
    ("unknown kubelogin mode", lambda r: r["kubernetes"].update(kubelogin="password"), "kubernetes.kubelogin"),
    # Keys valid one by one that cannot work together: each refusal names the keys.
    ("sustain longer than the objective", lambda r: r["probe"].update(sustain_seconds=10),
     "probe.sustain_seconds (10s) is longer than objectives.maintenance_rto_seconds / time_scale (180 / 30 = 6s)"),
    ("probe gap shorter than its interval", lambda r: r["probe"].update(max_gap_seconds=0.05),
     "probe.max_gap_seconds (0.05s) is shorter than the probe's interval (1 / probe.rate_per_second = 0.1s)"),
    ("canaries sparser than the RPO", lambda r: r["database"].update(canary_interval_seconds=600),
     "database.canary_interval_seconds (600) is longer than objectives.rpo_seconds (300)"),
    ("backups sparser than the RPO", lambda r: r["azure"]["storage"].update(backup_interval_seconds=86400),
     "azure.storage.backup_interval_seconds (86400) is longer than objectives.rpo_seconds (300)"),
]
# Production-shaped targets (no `lab:` section).
PRODUCTION_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("time scale outside the lab", lambda r: r.update(time_scale=30),
     "time_scale: must be 1 for a target without a `lab:` section (got 30)"),
]
# A `lab:` section does not make a target the lab: its endpoints must be the lab's (refused, exit 3).
LAB_IMPOSTOR_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("lab section, real AWS", lambda r: r["aws"].pop("endpoint_url"), "aws.endpoint_url is (unset: the real service)"),
    ("lab section, real ARM", lambda r: r["azure"].update(arm_endpoint="https://management.azure.com"),
     "azure.arm_endpoint is https://management.azure.com"),
    ("lab section, a real Terraform stack", lambda r: r["failover_stack"].update(
        terraform_binary="terraform", chdir="/home/ubuntu/3tier-terraform/codes/azure/2-failover"),
     "failover_stack.terraform_binary is terraform; failover_stack.chdir is /home/ubuntu/3tier-terraform/codes/azure/2-failover"),
]
# Edits of the file's text (a mapping cannot hold a key twice): (kind, base, edit, duplicated key's path, its name).
TEXT_CASES: list[tuple[str, str, Callable[[str], str], str, str]] = [
    ("duplicated key", "lab", lambda t: t + "time_scale: 1\n", "time_scale", "time_scale"),
    ("duplicated nested key", "lab", lambda t: t.replace("\nprobe:\n", "\nprobe:\n  users: 40\n", 1), "probe.users", "users"),
    ("duplicated guard block", "production.example",
     lambda t: t + "guard:\n  aws_account_ids: ['999999999999']\n", "guard", "guard"),
]
TABLE = ([(k, "lab", m, e, INVALID) for k, m, e in CASES] + [(k, "production.example", m, e, INVALID) for k, m, e in PRODUCTION_CASES]
         + [(k, "lab", m, e, REFUSED) for k, m, e in LAB_IMPOSTOR_CASES])


def _run_drill(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """`pytest -m drill --target=<text as a file>` as an operator runs it."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("DRILL_NO_SUCH_VAR", "DRILL_ALLOW_PRODUCTION", "DRILL_LAB_ENDPOINTS")}
    env.update(TMPDIR=str(tmp_path), AZURE_CLIENT_SECRET="placeholder", AZURE_MYSQL_ADMIN_PASSWORD="placeholder",
               DRILL_SIGNING_KEY="placeholder")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "drill", f"--target={path}", "-p", "no:cacheprovider",
         f"--reports-dir={tmp_path / 'reports'}", f"--alluredir={tmp_path / 'allure'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(("kind", "base", "mutate", "expected", "marker"), TABLE, ids=[c[0] for c in TABLE])
def test_bad_target_is_refused_before_anything_starts(tmp_path: Path, kind: str, base: str, mutate: Callable[[dict[str, Any]], Any],
                                                      expected: str, marker: str) -> None:
    raw = yaml.safe_load((REPO / "targets" / f"{base}.yaml").read_text())
    mutate(raw)
    proc = _run_drill(tmp_path, yaml.safe_dump(raw, allow_unicode=True))
    assert proc.returncode == (3 if marker == REFUSED else 4), proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if marker in line]
    assert len(errors) == 1 and expected in errors[0], proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not list(tmp_path.glob("dr-drill-lab-*")), "a lab was started for an invalid target"
    assert not (tmp_path / "reports" / "evidence").exists(), "a drill run began for an invalid target"


@pytest.mark.parametrize(("kind", "base", "edit", "path", "key"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_a_duplicated_key_is_refused_before_anything_starts(tmp_path: Path, kind: str, base: str, edit: Callable[[str], str],
                                                            path: str, key: str) -> None:
    """YAML with a key given twice is refused, naming the key and both lines (PyYAML alone keeps the last)."""
    raw = yaml.safe_load((REPO / "targets" / f"{base}.yaml").read_text())
    text = edit(yaml.safe_dump(raw, allow_unicode=True))
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().startswith(f"{key}:")]
    indent = {n: len(text.splitlines()[n - 1]) - len(text.splitlines()[n - 1].lstrip()) for n in lines}
    depth = path.count(".") * 2
    first, second = [n for n in lines if indent[n] == depth][:2]
    proc = _run_drill(tmp_path, text)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if INVALID in line]
    assert len(errors) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"{path}: duplicated key (line {first} and line {second})" in errors[0], errors[0]
    assert not list(tmp_path.glob("dr-drill-lab-*")), "a lab was started for an invalid target"
    assert not (tmp_path / "reports" / "evidence").exists(), "a drill run began for an invalid target"


def test_an_objective_only_a_later_phase_compares_is_not_required_for_an_earlier_one(tmp_path: Path) -> None:
    """Phase 1 alone compares no RPO: a target without one is fine for `-m phase1` (collected only)."""
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    for key in ("rpo_seconds", "data_restore_rto_seconds", "full_service_rto_seconds"):
        raw["objectives"].pop(key)
    path = tmp_path / "phase1-only.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    ok = subprocess.run([sys.executable, "-m", "pytest", "-m", "phase1", f"--target={path}", "-p", "no:cacheprovider",
                         "--collect-only", "-q"], cwd=REPO, env=dict(os.environ, TMPDIR=str(tmp_path)),
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "invalid target" not in ok.stdout + ok.stderr, ok.stdout[-2000:] + ok.stderr[-2000:]
    refused = subprocess.run([sys.executable, "-m", "pytest", "-m", "drill and phase2", f"--target={path}", "-p",
                              "no:cacheprovider", "--collect-only", "-q"], cwd=REPO, env=dict(os.environ, TMPDIR=str(tmp_path)),
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "objectives.data_restore_rto_seconds is required when phase2 runs" in refused.stderr
