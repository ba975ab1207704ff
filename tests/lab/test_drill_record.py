"""Three real lab drills as one record: signed bundles, the hash chain, `drill history`, JUnit properties,
and one Allure report of the last run whose Trend carries every run.

Drill 1 is the shared Phase 1 drill (tests/lab/conftest.py), copied in as an auditor copies a
bundle (its evidence directory with the chain's head, and the Allure results it left, unreported).
Drills 2 and 3 run here, one after the other against one lab, into the same reports directory, with
a target that signs its evidence (the lab target plus `evidence.signing_key_file`) and --junitxml.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from drill.allure_meta import ALLURE_BIN
from drill.bundle import ATTESTATION_NAME, MANIFEST_NAME, manifest_digest
from drill.seal import seal_bundle

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
# What a drill session itself leaves in --alluredir (not what `drill report` adds later).
DRILL_RESULTS = ("*-result.json", "*-container.json", "*-attachment*", "environment.properties", "executor.json", "categories.json")


@dataclass
class Record:
    reports: Path
    bundles: list[Path]  # oldest first: the copied drill, then the two run here
    public_key: Path
    junit: list[Path]
    procs: list[subprocess.CompletedProcess[str]]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill_cli", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def record(phase1_drill, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Record]:
    from lab.client import LabProcess

    root = tmp_path_factory.mktemp("drill-record")
    reports = root / "reports"
    shutil.copytree(phase1_drill.reports / "evidence", reports / "evidence", symlinks=True)
    results = reports / "allure-results"
    results.mkdir(parents=True)
    for pattern in DRILL_RESULTS:
        for p in phase1_drill.allure_results.glob(pattern):
            shutil.copyfile(p, results / p.name)
    key = root / "keys" / "drill-signing.pem"
    assert cli("keygen", "--out", str(key)).returncode == 0
    target = root / "lab-signed.yaml"
    raw = yaml.safe_load((REPO / "targets" / "lab.yaml").read_text())
    # The record is what these tests are about, not detection: without `alarms` a drill need not wait up to
    # the clear objective for the design's alarms (≈ 40 s each), nor the next one start while one clears.
    raw.pop("alarms", None)
    raw["stop"].pop("alarms", None)
    raw["evidence"] = {**(raw.get("evidence") or {}), "signing_key_file": str(key)}
    target.write_text(yaml.safe_dump(raw, allow_unicode=True))
    bundles = [reports / "evidence" / phase1_drill.bundle.name]
    junit, procs = [], []
    lab = LabProcess(30.0, workdir=root / "lab")
    try:
        lab.start()
        for n in (2, 3):
            xml = reports / f"junit-{n}.xml"
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-m", "phase1", "-p", "no:cacheprovider", f"--target={target}",
                 f"--lab-endpoints={lab.workdir / 'endpoints.json'}", f"--reports-dir={reports}", f"--alluredir={results}",
                 f"--junitxml={xml}", "steps/cloudfront/test_phase1.py"],
                cwd=REPO, env=dict(os.environ, TMPDIR=str(root), DRILL_OPERATOR="record-test"),
                capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
            bundles.append((reports / "evidence" / "latest").resolve())
            junit.append(xml)
            procs.append(proc)
            time.sleep(1.1)  # run ids are per second
    finally:
        lab.stop()
    yield Record(reports, bundles, key.with_name(key.name + ".pub"), junit, procs)


def test_three_drills_chain_and_history_verify_passes(record: Record) -> None:
    b = record.bundles
    links = [json.loads((x / MANIFEST_NAME).read_text())["previous"] for x in b]
    assert links[1] == {"run_id": b[0].name, "manifest_sha256": manifest_digest(b[0])}
    assert links[2] == {"run_id": b[1].name, "manifest_sha256": manifest_digest(b[1])}
    res = cli("history", str(record.reports / "evidence"), "--verify")
    assert res.returncode == 0, res.stdout
    assert f"intact, 3 linked run(s) from run {b[0].name} to run {b[2].name}" in res.stdout


def test_deleting_the_middle_drill_or_editing_one_fails_naming_it(record: Record, tmp_path: Path) -> None:
    b = record.bundles
    gone = tmp_path / "gone"
    shutil.copytree(record.reports / "evidence", gone, symlinks=True)
    shutil.rmtree(gone / b[1].name)
    res = cli("history", str(gone), "--verify")
    assert res.returncode == 1 and f"missing: run {b[1].name} (recorded by run {b[2].name} as the run before it)" in res.stdout

    edited = tmp_path / "edited"
    shutil.copytree(record.reports / "evidence", edited, symlinks=True)
    s = json.loads((edited / b[1].name / "summary.json").read_text())
    s["phases"][0]["rto_seconds"] = 0.5
    (edited / b[1].name / "summary.json").write_text(json.dumps(s, indent=2))
    res = cli("history", str(edited), "--verify")
    assert res.returncode == 1 and f"edited: run {b[1].name}" in res.stdout and "changed: summary.json" in res.stdout
    seal_bundle(edited / b[1].name)  # resealed, unsigned: the link from drill 3 and the key both tell
    res = cli("history", str(edited), "--verify", "--key", str(record.public_key))
    assert res.returncode == 1
    assert f"run {b[1].name} was changed after run {b[2].name} was sealed" in res.stdout
    assert f"edited: run {b[1].name}: signature: the bundle is unsigned" in res.stdout


def test_signed_lab_drills_verify_with_the_key_and_the_copied_one_is_unsigned(record: Record) -> None:
    for b in record.bundles[1:]:
        res = cli("verify", str(b), "--key", str(record.public_key))
        assert res.returncode == 0, res.stdout + res.stderr
        assert "signature: valid (Ed25519" in res.stdout
        env = json.loads((b / ATTESTATION_NAME).read_text())
        assert env["payloadType"] == "application/vnd.in-toto+json" and len(env["signatures"]) == 1
    first = cli("verify", str(record.bundles[0]))
    assert first.returncode == 0 and "unsigned: sealed without a signing key" in first.stdout
    assert "signature: the bundle is unsigned" in cli("verify", str(record.bundles[0]), "--key", str(record.public_key)).stdout


def test_history_table_and_chart_of_three_lab_drills_and_an_injected_worse_rto(record: Record, tmp_path: Path) -> None:
    res = cli("history", str(record.reports / "evidence"), "--target", "lab", "--chart", str(tmp_path / "lab.png"))
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line[:8].isdigit()]
    assert [r.split()[0] for r in rows] == [b.name for b in record.bundles]
    assert all(" passed " in r and "/6.00" in r for r in rows)  # phase1 RTO / target, wall seconds
    assert "regressions (worse than the median of the previous 5 runs by > 20% and > 30s real-world): none" in res.stdout
    assert (tmp_path / "lab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The drill's own summary placed it in the record.
    assert "history: 3 sealed run(s) of lab" in record.procs[-1].stdout

    # A fourth run, as drill 3 but users got the maintenance page much later: flagged.
    worse_root = tmp_path / "evidence"
    shutil.copytree(record.reports / "evidence", worse_root, symlinks=True)
    src = worse_root / record.bundles[2].name
    s = json.loads((src / "summary.json").read_text())
    rtos = [json.loads((b / "summary.json").read_text())["phases"][0]["rto_seconds"] for b in record.bundles]
    now = time.gmtime(time.time() - 1)  # after drill 3; sealed after it started
    new = worse_root / f"{time.strftime('%Y%m%dT%H%M%SZ', now)}-bad000"
    new.mkdir()
    s.update(run_id=new.name, started_at=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", now), verdict="failed")
    s["phases"][0].update(rto_seconds=round(sorted(rtos)[1] + 3.0, 3), passed=False)  # +3 s wall = 90 s real-world
    (new / "summary.json").write_text(json.dumps(s, indent=2))
    seal_bundle(new)
    res = cli("history", str(worse_root), "--target", "lab", "--no-chart")
    row = next(line for line in res.stdout.splitlines() if line.startswith(new.name))
    assert "REGRESSION: phase1 RTO" in row
    assert f"run {new.name}: phase1 RTO {s['phases'][0]['rto_seconds']:.2f}s" in res.stdout


def test_junit_xml_carries_the_measured_rto(record: Record) -> None:
    for xml, b in zip(record.junit, record.bundles[1:], strict=True):
        summary = json.loads((b / "summary.json").read_text())
        phase1 = summary["phases"][0]
        tree = ET.parse(xml)
        (case,) = [c for c in tree.iter("testcase") if "phase1" in c.get("classname", "") + c.get("name", "")]
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert float(props["dr-drill.phase1.rto_seconds"]) == phase1["rto_seconds"]
        assert float(props["dr-drill.phase1.rto_target_seconds"]) == phase1["rto_target_seconds"]
        assert props["dr-drill.phase1.passed"] == "true"
        suite = {p.get("name"): p.get("value") for p in tree.find(".//testsuite/properties").iter("property")}
        assert suite["dr-drill.run_id"] == b.name and suite["dr-drill.verdict"] == "passed"
        assert float(suite["dr-drill.downtime_seconds"]) == summary["downtime_seconds"]


@pytest.mark.skipif(not ALLURE_BIN.exists() or shutil.which("java") is None, reason="Allure 2 (./setup.sh) and Java are needed")
def test_after_the_drills_drill_report_shows_the_last_drill_and_a_trend_of_every_run(record: Record) -> None:
    from test_allure_report import drill_report, embedded

    out = record.reports / "allure-report"
    res = drill_report(record.reports / "allure-results", out, "--evidence", str(record.bundles[-1]))
    assert res.returncode == 0, res.stdout + res.stderr
    data = embedded(out / "index.html")
    cases = [v for k, v in data.items() if k.startswith("data/test-cases/")]
    assert len(cases) == 1 and cases[0]["status"] == "passed"  # the last drill's one scenario, not three
    env = {e["name"]: e["values"] for e in data["widgets/environment.json"]}
    assert env["run_id"] == [record.bundles[-1].name]
    trend = json.loads((out / "history" / "history-trend.json").read_text())
    assert len(trend) == 3 and all(t["data"]["passed"] == 1 for t in trend)
