"""The hash chain of sealed runs (`drill history --verify`) and the history across drills (`drill history`)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from synthetic_runs import T0, make_run

from drill import chain, history
from drill.attestation import generate, private_key_from_pem
from drill.bundle import MANIFEST_NAME
from drill.finalize import finalize_bundle

REPO = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill_cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    root = tmp_path / "evidence"
    return [make_run(root, T0 + i * DAY) for i in range(3)]


def test_each_run_links_to_the_previous_sealed_run_of_its_target(three: list[Path]) -> None:
    root = three[0].parent
    links = [json.loads((b / MANIFEST_NAME).read_text())["previous"] for b in three]
    assert links[0] is None
    for prev, link in zip(three, links[1:], strict=False):  # each run but the last, and its successor's link
        assert link == {"run_id": prev.name, "manifest_sha256": chain.manifest_digest(prev)}
    head = chain.read_head(root, "lab")
    assert head is not None and head["run_id"] == three[2].name and head["manifest_sha256"] == chain.manifest_digest(three[2])
    # Another target starts its own chain; it does not link into this one.
    other = make_run(root, T0 + 4 * DAY, target="staging")
    assert json.loads((other / MANIFEST_NAME).read_text())["previous"] is None


def test_three_intact_runs_verify(three: list[Path]) -> None:
    res = _cli("history", str(three[0].parent), "--verify")
    assert res.returncode == 0, res.stdout
    assert res.stdout.splitlines() == [f"chain lab: intact, 3 linked run(s) from run {three[0].name} to run {three[2].name}"]


def test_deleting_the_middle_run_is_reported_naming_it(three: list[Path]) -> None:
    shutil.rmtree(three[1])
    res = _cli("history", str(three[0].parent), "--verify")
    assert res.returncode == 1
    assert f"missing: run {three[1].name} (recorded by run {three[2].name} as the run before it)" in res.stdout


def test_deleting_the_newest_run_is_reported_by_the_head(three: list[Path]) -> None:
    shutil.rmtree(three[2])
    res = _cli("history", str(three[0].parent), "--verify")
    assert res.returncode == 1
    assert f"missing: run {three[2].name} (the newest sealed run, recorded as the chain's head)" in res.stdout


def test_editing_a_run_is_reported_naming_it(three: list[Path]) -> None:
    s = json.loads((three[1] / "summary.json").read_text())
    s["verdict"] = "passed!"
    (three[1] / "summary.json").write_text(json.dumps(s))
    res = _cli("history", str(three[0].parent), "--verify")
    assert res.returncode == 1
    assert f"edited: run {three[1].name} ({three[1]}): changed: summary.json" in res.stdout


@pytest.mark.parametrize("which", [1, 2])
def test_editing_and_resealing_a_run_breaks_the_link_to_it(three: list[Path], which: int) -> None:
    b = three[which]
    s = json.loads((b / "summary.json").read_text())
    s["phases"][0]["rto_seconds"] = 1.0
    (b / "summary.json").write_text(json.dumps(s))
    finalize_bundle(b, None)  # a consistent bundle again: only the chain can tell
    assert _cli("verify", str(b)).returncode == 0
    res = _cli("history", str(three[0].parent), "--verify")
    assert res.returncode == 1
    assert f"run {b.name} was changed after" in res.stdout, res.stdout


def test_an_auditors_copy_verifies_and_a_partial_copy_needs_its_start(three: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "auditor" / "q1"
    shutil.copytree(three[0].parent, copy)  # chain/ comes along
    assert _cli("history", str(copy), "--verify").returncode == 0
    partial = tmp_path / "partial"
    for b in three[1:]:
        shutil.copytree(b, partial / b.name)
    res = _cli("history", str(partial), "--verify")
    assert res.returncode == 1 and f"missing: run {three[0].name}" in res.stdout
    assert _cli("history", str(partial), "--verify", "--start", three[1].name).returncode == 0


def test_a_fork_is_reported(three: list[Path]) -> None:
    root = three[0].parent
    fourth = make_run(root, T0 + 5 * DAY)  # follows run 3, the head
    rogue = make_run(root, T0 + 6 * DAY)  # follows run 4; rewritten to follow run 3 as well
    m = json.loads((rogue / MANIFEST_NAME).read_text())
    m["previous"] = {"run_id": three[2].name, "manifest_sha256": chain.manifest_digest(three[2])}
    (rogue / MANIFEST_NAME).write_text(json.dumps(m, indent=2))
    finalize_bundle(rogue, None)  # resealing keeps the (rewritten) link
    res = _cli("history", str(root), "--verify")
    assert res.returncode == 1
    assert f"fork: runs {fourth.name}, {rogue.name} all record run {three[2].name} as the run before them" in res.stdout


def test_signatures_in_the_chain_check(tmp_path: Path) -> None:
    private, public = generate()
    key = private_key_from_pem(private, "test")
    (tmp_path / "pub.pem").write_bytes(public)
    root = tmp_path / "evidence"
    runs = [make_run(root, T0 + i * DAY, key=key) for i in range(2)] + [make_run(root, T0 + 2 * DAY)]
    res = _cli("history", str(root), "--verify", "--key", str(tmp_path / "pub.pem"))
    assert res.returncode == 1
    assert f"edited: run {runs[2].name}: signature: the bundle is unsigned" in res.stdout
    assert runs[0].name not in res.stdout.split("BROKEN")[1]


# -- history -----------------------------------------------------------------------------------------
def _runs(tmp_path: Path, rtos: list[float | None]) -> Path:
    root = tmp_path / "evidence"
    for i, v in enumerate(rtos):
        make_run(root, T0 + i * DAY, rtos={"phase1": v, "phase2-data": 25.0, "phase2": 80.0, "phase3": 8.0})
    return root


def test_a_worse_rto_is_flagged_as_a_regression(tmp_path: Path) -> None:
    root = _runs(tmp_path, [5.0, 5.4, 5.2, 9.0])
    runs = history.load(root, "lab")
    regs = history.regressions(runs)
    assert [(g.run_id, g.figure, g.value, g.baseline) for g in regs] == [(runs[3].run_id, "phase1 RTO", 9.0, 5.2)]
    assert "+73%" in regs[0].sentence()
    res = _cli("history", str(root), "--no-chart")
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith(runs[3].run_id))
    assert "REGRESSION: phase1 RTO" in row and "9.00/6.00" in row
    assert f"run {runs[3].run_id}: phase1 RTO 9.00s (+73%) vs the median 5.20s of the previous 3 run(s)" in res.stdout


def test_jitter_below_the_thresholds_is_not_a_regression(tmp_path: Path) -> None:
    # +15 % (under 20 %), and +0.5 s on a small figure (over 20 % but under the 1 s floor: 30 s / 30).
    runs = history.load(_runs(tmp_path, [5.0, 5.0, 5.75]), "lab")
    assert history.regressions(runs) == []
    small = history.Run(**{**history.run_dict(runs[0]), "run_id": "x", "rpo_seconds": 1.4,
                           "started_at": runs[0].started_at, "finished_at": runs[0].finished_at})
    base = [history.Run(**{**history.run_dict(r), "rpo_seconds": 0.9, "started_at": r.started_at, "finished_at": r.finished_at})
            for r in runs]
    assert history.regressions(base + [small]) == []


def test_a_phase_no_longer_reached_is_a_regression_and_edited_runs_do_not_count(tmp_path: Path) -> None:
    root = _runs(tmp_path, [5.0, 30.0, None])
    runs = history.load(root, "lab")
    s = json.loads((Path(runs[1].path) / "summary.json").read_text())
    (Path(runs[1].path) / "summary.json").write_text(json.dumps(s) + " ")  # edited: out of the baseline
    runs = history.load(root, "lab")
    regs = history.regressions(runs)
    assert [(g.run_id, g.value, g.baseline, g.runs) for g in regs] == [(runs[2].run_id, None, 5.0, 1)]
    assert not runs[1].intact and "EDITED" in "\n".join(history.table_lines(runs, regs, history.staleness(runs)))


def test_days_since_the_last_passing_drill_and_staleness(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    passing = make_run(root, T0)
    make_run(root, T0 + 10 * DAY, rtos={"phase1": 5.0})  # Phase 1 only: proves no failover
    make_run(root, T0 + 20 * DAY, rtos={"phase1": 50.0, "phase2": 80.0, "phase3": 8.0})  # failed
    make_run(root, T0 + 30 * DAY, dry_run=True)
    runs = history.load(root, "lab")
    finished = T0 + timedelta(minutes=3)
    fresh = history.staleness(runs, now=finished + 45 * DAY)
    assert fresh.last is not None and fresh.last.run_id == passing.name and not fresh.stale
    assert round(fresh.days, 1) == 45.0 and "45.0 day(s) ago: within the limit of 90 days" in fresh.sentence()
    stale = history.staleness(runs, now=finished + 91 * DAY)
    assert stale.stale and "STALE the limit of 90 days" in stale.sentence()
    assert history.staleness(runs, history.Thresholds(passing_phases=("phase1",)), now=finished + 91 * DAY).last.run_id != passing.name
    none = history.staleness([r for r in runs if r.run_id != passing.name])
    assert none.last is None and none.stale and none.sentence().startswith("no passing drill covering phase1, phase2, phase3")


def test_json_and_csv_for_other_tools(tmp_path: Path) -> None:
    root = _runs(tmp_path, [5.0, 5.1, 9.0])
    out = _cli("history", str(root), "--format", "json", "--no-chart")
    doc = json.loads(out.stdout)
    assert doc["target"] == "lab" and len(doc["runs"]) == 3 and doc["regressions"][0]["figure"] == "phase1 RTO"
    assert doc["thresholds"]["ratio"] == 0.2 and doc["last_passing"]["stale"] in (True, False)
    rows = list(csv.DictReader(io.StringIO(_cli("history", str(root), "--format", "csv", "--no-chart").stdout)))
    assert [r["phase1_rto_seconds"] for r in rows] == ["5.0", "5.1", "9.0"]
    assert rows[2]["regressions"] == "phase1 RTO" and rows[0]["phase3_rto_target_seconds"] == "20.0"


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    root = _runs(tmp_path, [5.0, 5.1, None, 9.0])
    out = tmp_path / "h" / "{target}.png"
    res = _cli("history", str(root), "--chart", str(out))
    assert res.returncode == 0, res.stderr
    png = tmp_path / "h" / "lab.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"chart: {png}" in res.stdout


def test_an_empty_directory_says_so(tmp_path: Path) -> None:
    res = _cli("history", str(tmp_path))
    assert res.returncode == 1 and "no sealed drill run" in res.stderr


# -- readiness: days since the last passing drill ------------------------------------------------------
def _readiness(tmp_path: Path):
    from drill.config import load_target
    from drill.evidence import Masker
    from steps.readiness import ReadinessRun

    return ReadinessRun(load_target("lab"), tmp_path / "reports", Masker())


def test_readiness_reports_a_stale_record_of_drills_as_a_finding(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    evidence = tmp_path / "reports" / "evidence"
    none = _readiness(tmp_path).check_last_passing_drill()
    assert not none.passed and none.detail.startswith("drills.last_passing: no passing drill covering phase1, phase2, phase3")
    old = make_run(evidence, now - 100 * DAY)
    v = _readiness(tmp_path).check_last_passing_drill()
    assert not v.passed and v.threshold == 90.0 and 99.9 <= v.measured <= 100.0 and "STALE" in v.detail
    assert v.data["last_passing_run"] == old.name
    recent = make_run(evidence, now - 10 * DAY)
    v = _readiness(tmp_path).check_last_passing_drill()
    assert v.passed and 9.9 <= v.measured <= 10.0 and v.data["last_passing_run"] == recent.name
    # An edited bundle does not count: the record falls back to the 100-day-old drill.
    (recent / "summary.json").write_text((recent / "summary.json").read_text() + " ")
    v = _readiness(tmp_path).check_last_passing_drill()
    assert not v.passed and v.data["last_passing_run"] == old.name and v.data["edited_runs"] == [recent.name]
