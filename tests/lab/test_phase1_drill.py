"""Phase 1 end to end: `pytest -m phase1` against a fresh lab, as an operator would run it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab.events import read_events

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_phase1_drill_measures_rto_restores_and_leaves_nothing_running(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    # DRILL_KEEP_LAB: keep the lab's workdir (under tmp_path) to check its ports afterwards.
    env = dict(os.environ, TMPDIR=str(tmp_path), DRILL_OPERATOR="integration-test", DRILL_KEEP_LAB="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", "--reports-dir", str(reports),
         f"--alluredir={reports / 'allure-results'}", "steps/cloudfront/test_phase1.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "dr-drill" in proc.stdout and "PASSED" in proc.stdout.upper()

    run = (reports / "evidence" / "latest").resolve()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == "passed" and summary["operator"] == "integration-test"
    (phase,) = summary["phases"]
    assert phase["name"] == "phase1" and phase["passed"]
    assert 0 < phase["rto_seconds"] <= phase["rto_target_seconds"]
    assert [t["class"] for t in summary["transitions"]] == ["aws", "maintenance", "aws"]
    # Undone at the end: the node group's scaling, the marker owner, the canary table and the user's
    # write through the site (its inverse deletes the owner, had it landed).
    restore = summary["restore"]
    assert (restore["unwound"], restore["failures"], restore["site_class"], restore["baseline_diff"]) == (4, [], "aws", [])
    assert summary["baseline_diff"] == []

    # A POST during Phase 1 follows the distribution's behaviors: /owners/new takes its own behavior,
    # straight to the primary (the ALB, no healthy target), so the user gets the ALB's 5xx through
    # CloudFront while every page shows the maintenance page; nothing reached the database.
    write = summary["outage_write"]["phase1"]
    assert write["users_saw"] == "maintenance" and (write["method"], write["path"]) == ("POST", "/owners/new")
    assert write["behavior"]["path_pattern"] == "/owners/new"
    assert (write["behavior"]["target"], write["behavior"]["target_kind"]) == ("primary-aws", "origin")
    assert write["status"] in (502, 503, 504) and not write["accepted"] and write["x_cache"] == "Error from cloudfront"
    assert write["rows_in_primary"] == 0
    actions = json.loads((run / "actions.json").read_text())
    [written] = [a for a in actions if a["change"]["op"] == "site.write_owner"]
    assert written["inverse"]["op"] == "db.delete_rows" and written["state"] == "undone"
    timeline = (run / "timeline.jsonl").read_text().splitlines()
    assert len(timeline) == summary["requests"] > 0
    assert {"t", "mono", "status", "latency_ms", "class"} <= set(json.loads(timeline[0]))

    # The measurement agrees with the lab's ground truth: the instant no ALB target accepted a
    # connection any more (the pods evicted at the start of the drain), not the nodes' termination.
    events = read_events(run / "lab-events.jsonl")
    lost = [e for e in events if e["event"] == "no serving targets"]
    assert lost, "the lab never recorded the ALB losing its last serving target"
    terminated = [e for e in events if e["event"] == "node terminated"]
    assert terminated and lost[0]["t"] < terminated[0]["t"]
    fault_t = summary["phases"][0]["fault_at"]
    from datetime import datetime

    truth = lost[0]["t"] - datetime.fromisoformat(fault_t).timestamp()
    assert abs(phase["rto_seconds"] - truth) < 1.0, (phase["rto_seconds"], truth)

    # The lab is stopped: none of its ports answer, its process is gone.
    (workdir,) = [p for p in tmp_path.iterdir() if p.name.startswith("dr-drill-lab-")]
    endpoints = json.loads((workdir / "endpoints.json").read_text())
    ports = [endpoints["rds_port"]] + [int(endpoints[k].rsplit(":", 1)[1].split("/")[0]) for k in
                                       ("aws_endpoint", "site_url", "alb_url", "blob_web_url", "blob_endpoint")]
    ports += [e["port"] for e in read_events(workdir / "events.jsonl") if e["event"] == "replica started"]
    assert [p for p in ports if listening(p)] == []
    with pytest.raises(ProcessLookupError):
        os.kill(endpoints["pid"], 0)
