"""`pytest -m drill --target=FILE` with a bad target: one clear line, exit non-zero, nothing started.

Each case mutates targets/lab.yaml one way. No lab may start (no lab work directory appears) and
so no change can be made: validation happens in pytest_configure, before any fixture runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

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
]


@pytest.mark.parametrize(("kind", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_target_is_refused_before_anything_starts(tmp_path: Path, kind: str, mutate: Callable[[dict[str, Any]], Any], expected: str) -> None:
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    mutate(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    env = {k: v for k, v in os.environ.items() if k != "DRILL_NO_SUCH_VAR"}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "drill", f"--target={path}", "-p", "no:cacheprovider",
         f"--reports-dir={tmp_path / 'reports'}", f"--alluredir={tmp_path / 'allure'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "invalid target" in line]
    assert len(errors) == 1 and expected in errors[0], proc.stdout[-2000:] + proc.stderr[-2000:]
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
