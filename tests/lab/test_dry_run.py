"""`pytest -m drill --dry-run` against a running lab: every read happens, no change is made.

What "no change" means is checked from outside the drill, not only by its own baseline diff:
CloudFront's ETag (any update changes it), the node groups, the primary database (no canary
table, no marker owner), the failover stack's Terraform outputs, and what users saw throughout.
A drill lock held by someone else does not stop a dry run (it takes none) and is reported.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drill.config import Target, load_target, read_raw, resolve_path
from drivers.aws import Aws, Secrets
from drivers.database import Database
from drivers.safety import DrillLock
from lab.client import LabProcess

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
# The kinds of change a full drill makes: the plan must name each with its inverse.
DRILL_OPS = {"db.create_table", "db.insert_marker", "aws.eks.set_scaling", "provisioner.apply", "db.restore",
             "kube.create_namespace", "kube.create", "azure.appgw.configure_backend", "aws.cloudfront.set_origin",
             "aws.cloudfront.invalidate", "site.write_owner", "azure.mysql.create_firewall_rule",
             "azure.appgw.set_response_header"}


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Path]]:
    lab = LabProcess(30.0, workdir=tmp_path_factory.mktemp("lab"), watch_parent=True)
    try:
        endpoints = lab.start()
        yield load_target("lab", endpoints), lab.workdir / "endpoints.json"
    finally:
        lab.stop()


def control_plane(target: Target) -> dict[str, Any]:
    aws = Aws(target.aws)
    eks, cf = aws.client("eks"), aws.client("cloudfront")
    groups = {ng: eks.describe_nodegroup(clusterName=target.aws.eks.cluster, nodegroupName=ng)["nodegroup"]["scalingConfig"]
              for ng in eks.list_nodegroups(clusterName=target.aws.eks.cluster)["nodegroups"]}
    s = Secrets(aws).json(target.database.secret_id)
    db = Database(str(s["host"]), int(s["port"]), str(s["username"]), str(s["password"]), str(s["dbname"]))
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1")
        tables = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT COUNT(*) FROM owners WHERE last_name LIKE 'Drill-%%'")
        markers = cur.fetchone()[0]
    return {
        "cloudfront_etag": cf.get_distribution_config(Id=target.aws.cloudfront.distribution_id)["ETag"],
        "nodegroups": groups, "tables": tables, "marker_owners": markers,
    }


def test_dry_run_reads_plans_and_changes_nothing(running_lab: tuple[Target, Path], tmp_path: Path) -> None:
    target, endpoints_file = running_lab
    before = control_plane(target)
    assert "dr_canary" not in before["tables"] and before["marker_owners"] == 0
    lock = DrillLock(target)
    lock.acquire("someone-elses-drill")  # a real drill in progress must not block a dry run
    try:
        reports = tmp_path / "reports"
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "drill", "--dry-run", "-p", "no:cacheprovider", f"--reports-dir={reports}",
             f"--alluredir={reports / 'allure-results'}", f"--lab-endpoints={endpoints_file}"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )
    finally:
        lock.release()
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    after = control_plane(target)
    assert after == before, "a dry run changed the lab"

    bundle = (reports / "evidence" / "latest").resolve()
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["verdict"] == "dry-run"
    assert summary["baseline_diff"] == [] and summary["restore"]["unwound"] == 0
    assert [t["class"] for t in summary["transitions"]] == ["aws"], "users saw something other than AWS"
    assert summary["downtime_seconds"] == 0 and summary["phases"] == []
    assert summary["preflight"] == []  # a healthy lab: no preflight finding
    assert {"2.2", "2.6"} <= {d["step"] for d in summary["runbook_deviations"]}
    assert any("(run someone-elses-drill)" in n for n in summary["notes"]), summary["notes"]
    plan = summary["plan"]
    assert {p["op"] for p in plan} == DRILL_OPS
    assert [p["id"] for p in plan] == list(range(1, len(plan) + 1))
    actions = json.loads((bundle / "actions.json").read_text())
    assert {a["state"] for a in actions} == {"planned"} and len(actions) == len(plan)
    # Checks of effects that were never caused are named, not passed: one per such Then step.
    assert len(summary["not_evaluated"]) == 13 and "the measured RPO is within target" in summary["not_evaluated"]
    # The plan is printed in order, each change followed by its inverse.
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if "DRY RUN: nothing was changed" in line)
    for n, p in enumerate(plan):
        assert lines[start + 1 + 2 * n].strip() == f"{p['id']}. {p['change']}"
        assert lines[start + 2 + 2 * n].strip() == f"undo: {p['inverse']}"
    # A healthy lab: no preflight finding; the runbook's 2.3/2.4 (ClusterIP) are reported as corrected.
    assert "preflight: no finding" in log and summary["preflight"] == []
    assert [d["step"] for d in summary["runbook_deviations"] if d["step"] in ("2.3", "2.4")] == ["2.3", "2.4"]
    service = next(p for p in plan if p["op"] == "kube.create" and "Service" in p["change"])
    assert "internal load balancer IP (known after apply)" in next(p["change"] for p in plan if p["op"] == "azure.appgw.configure_backend")
    assert "create Service petclinic/petclinic" in service["change"]
    report = (bundle / "report.md").read_text()
    assert "Plan (dry run: nothing was changed)" in report and "✅" not in report
    assert "Where the runbook is wrong" in report and "`type: LoadBalancer`" in report
    verify = subprocess.run([sys.executable, "-m", "drill_cli", "verify", str(bundle)], cwd=REPO, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_drill_whose_plan_the_real_clouds_would_refuse_is_refused_before_any_change(
    running_lab: tuple[Target, Path], tmp_path: Path,
) -> None:
    """The runbook's own Service (a ClusterIP for the App Gateway) and its CloudFront origin (the gateway's
    public IP): each a preflight finding, and the drill refuses to start (exit 3), changing nothing.
    (The runbook's fixed kubeconfig is a finding too — test_aks_lab/test_aks_parts — but a lab target naming
    a kubeconfig the lab did not write is not the lab: the production guard refuses it first.)"""
    target, endpoints_file = running_lab
    before = control_plane(target)
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    raw["kubernetes"].update(service_type="ClusterIP")
    raw["failover_stack"].update(origin_output="appgw_public_ip")
    broken = tmp_path / "lab-as-the-runbook-says.yaml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True))
    reports = tmp_path / "reports"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "drill", "-p", "no:cacheprovider", f"--reports-dir={reports}",
         f"--target={broken}", f"--lab-endpoints={endpoints_file}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 3, log[-3000:]
    assert "preflight found what the real clouds would refuse" in log
    assert "preflight.aks.backend_reachable: the PetClinic Service the drill would deploy exposes only a ClusterIP" in log
    assert "preflight.cloudfront_origin_dns_name: failover_stack.origin_output is 'appgw_public_ip', an IP address output" in log
    assert control_plane(target) == before and not (reports / "evidence").exists()


def test_a_dry_run_prints_a_preflight_finding_and_fails(running_lab: tuple[Target, Path], tmp_path: Path) -> None:
    # Break one part (the primary's CA bundle is gone from the target): the dry run names the finding.
    _, endpoints_file = running_lab
    raw = read_raw(resolve_path("lab"))
    del raw["database"]["ssl_ca"]
    broken = tmp_path / "no-primary-ca.yaml"
    broken.write_text(yaml.safe_dump(raw))
    reports = tmp_path / "reports"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "phase1", "--dry-run", "-p", "no:cacheprovider", f"--reports-dir={reports}",
         f"--target={broken}", f"--lab-endpoints={endpoints_file}", "steps/cloudfront/test_phase1.py"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    log = out.stdout + out.stderr
    assert "preflight: 1 finding(s): the plan would fail on the real clouds" in log, log[-3000:]
    assert "- preflight.primary_database_tls: database.ssl_ca is not set" in log
    summary = json.loads(((reports / "evidence" / "latest").resolve() / "summary.json").read_text())
    assert summary["verdict"] == "failed" and [f["check"] for f in summary["preflight"]] == ["preflight.primary_database_tls"]
