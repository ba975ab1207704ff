"""finalize_bundle: chart, reports, Allure metadata and the manifest, even for an interrupted run."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_checklist import T0, full_drill

from drill import finalize as fin
from drill.allure_meta import CATEGORIES, _escape_properties, executor_info, scrub_results, write_allure_metadata
from drill.bundle import verify
from drill.checklist import ITEMS
from drill.evidence import Masker
from drill.timeline import Sample, dump_sample

SECRET = "sekrit-Value-0123456789"


def write_bundle(root: Path, summary: Any, actions: Any, events: list[dict[str, Any]], samples: list[Sample]) -> Path:
    b = root / "evidence" / "20260115T080000Z-a1b2c3"
    b.mkdir(parents=True)
    if summary is not None:
        (b / "summary.json").write_text(json.dumps(summary))
    if actions is not None:
        (b / "actions.json").write_text(json.dumps(actions))
    (b / "environment.json").write_text(json.dumps({"python": "3.11.7", "platform": "Linux", "operator": "auditor"}))
    (b / "target.json").write_text(json.dumps({"name": "lab", "probe": {"rate_per_second": 10, "timeout_seconds": 2}}))
    (b / "lab-events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (b / "timeline.jsonl").write_text("".join(dump_sample(s) + "\n" for s in samples))
    return b


def steady(n: int = 300) -> list[Sample]:
    return [Sample(T0 + i / 10, 100 + i / 10, 200, 5.0, "aws" if i < 70 else "maintenance") for i in range(n)]


def test_a_complete_bundle_gets_chart_reports_metadata_and_a_manifest_last(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("GITHUB_ACTIONS", "GITHUB_RUN_ID"):
        monkeypatch.delenv(k, raising=False)
    summary, actions, events = full_drill()
    summary["notes"] = [f"the operator pasted {SECRET} here"]
    b = write_bundle(tmp_path, summary, actions, events, steady())
    results = tmp_path / "allure-results"
    history = tmp_path / "allure-report" / "history"
    history.mkdir(parents=True)
    (history / "history-trend.json").write_text('[{"data": {"passed": 1}}]')

    assert fin.finalize_bundle(b, results, mask=Masker([SECRET])) == []

    assert (b / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md, page = (b / "report.md").read_text(), (b / "report.html").read_text()
    for item in ITEMS:
        assert item.ko in md and item.ko in page
    assert SECRET not in md and SECRET not in page and "the operator pasted *** here" in md
    assert "data:image/png;base64," in page
    assert verify(b) == []
    manifest = json.loads((b / "manifest.json").read_text())
    assert set(manifest["files"]) == {"summary.json", "actions.json", "environment.json", "target.json", "lab-events.jsonl",
                                      "timeline.jsonl", "timeline.png", "report.md", "report.html"}

    props = (results / "environment.properties").read_text(encoding="ascii")
    assert "target=lab" in props and "time_scale=30.0" in props and "git_revision=0123456789abcdef" in props
    assert re.search(r"^pytest-bdd=\S+", props, re.M) and "run_id=20270115T080000Z-a1b2c3" in props
    assert json.loads((results / "executor.json").read_text())["type"] == "local"
    assert [c["name"] for c in json.loads((results / "categories.json").read_text())] == [
        "RTO breach", "RPO breach", "Infrastructure error", "Harness error"]
    assert json.loads((results / "history" / "history-trend.json").read_text()) == [{"data": {"passed": 1}}]


@pytest.mark.parametrize("what", ["nothing", "no timeline, no phases", "torn timeline"])
def test_an_interrupted_run_still_gets_a_report_and_a_manifest(tmp_path: Path, what: str) -> None:
    if what == "nothing":
        b = write_bundle(tmp_path, None, None, [], [])
        (b / "timeline.jsonl").unlink()
        (b / "lab-events.jsonl").write_text('{"t": 1, "event": "started"}\n{"t": 2, "ev')
    elif what == "no timeline, no phases":
        b = write_bundle(tmp_path, {"run_id": "r", "phases": [], "verdict": "failed", "failed_steps": []}, [], [], [])
        (b / "timeline.jsonl").unlink()
    else:
        b = write_bundle(tmp_path, {"run_id": "r", "phases": []}, [], [], steady(50))
        with open(b / "timeline.jsonl", "a") as f:
            f.write('{"t": 1800000009.0, "mono"')
    problems = fin.finalize_bundle(b, None)
    assert all(isinstance(p, str) for p in problems)
    if what == "nothing":
        assert any("summary.json is missing" in p for p in problems)
    md = (b / "report.md").read_text()
    assert md.count("not run") >= len(ITEMS) and (b / "report.html").exists() and (b / "timeline.png").exists()
    assert verify(b) == []


def test_a_chart_that_cannot_be_drawn_costs_the_chart_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import drill.chart

    def boom(*a: Any, **k: Any) -> Path:
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(drill.chart, "render_timeline", boom)
    summary, actions, events = full_drill()
    b = write_bundle(tmp_path, summary, actions, events, steady())
    problems = fin.finalize_bundle(b, tmp_path / "results")
    assert problems == ["timeline chart not rendered: RuntimeError: no fonts today"]
    assert not (b / "timeline.png").exists()
    md = (b / "report.md").read_text()
    assert "report: timeline chart not rendered" in md and "The timeline chart is not available" in md
    assert verify(b) == [] and (tmp_path / "results" / "categories.json").exists()


def test_finalizing_again_reseals_and_a_later_edit_is_caught(tmp_path: Path) -> None:
    summary, actions, events = full_drill()
    b = write_bundle(tmp_path, summary, actions, events, steady())
    fin.finalize_bundle(b, None)
    fin.finalize_bundle(b, None)
    assert verify(b) == []
    (b / "report.md").write_text((b / "report.md").read_text().replace("❌ failed", "✅ passed") + " ")
    assert verify(b) == ["changed: report.md (size {} → {} bytes)".format(
        json.loads((b / "manifest.json").read_text())["files"]["report.md"]["size"], (b / "report.md").stat().st_size)]


def test_executor_from_github_actions() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/dr-drill",
           "GITHUB_RUN_ID": "42", "GITHUB_RUN_NUMBER": "7", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_WORKFLOW": "dr-drill",
           "GITHUB_EVENT_NAME": "schedule", "GITHUB_ACTOR": "octo", "GITHUB_REF_NAME": "main", "GITHUB_SHA": "a" * 40,
           "GITHUB_TOKEN": SECRET}
    ex = executor_info({"run_id": "r1", "target": "lab"}, env)
    assert ex["type"] == "github" and ex["buildOrder"] == 7
    assert ex["buildUrl"] == "https://github.com/acme/dr-drill/actions/runs/42/attempts/2"
    assert "dr-drill #7 (schedule by octo" in ex["buildName"] and SECRET not in json.dumps(ex)


def test_environment_properties_are_java_escaped(tmp_path: Path) -> None:
    assert _escape_properties("a=b: c#!\\") == "a\\=b\\: c\\#\\!\\\\"
    assert _escape_properties("서울 →") == "\\uc11c\\uc6b8 \\u2192"
    assert _escape_properties(" lead", key=True) == "\\ lead"
    write_allure_metadata(tmp_path, {"target": "prod=1", "operator": "김"}, environ={})
    props = (tmp_path / "environment.properties").read_text(encoding="ascii")
    assert "target=prod\\=1" in props and "operator=\\uae40" in props


@pytest.mark.parametrize("status, message, category", [
    ("failed", "AssertionError: maintenance-page RTO 7.20s exceeds the target 6.00s\nassert False", "RTO breach"),
    ("failed", "AssertionError: full-service RTO 95.00s exceeds the target 90.00s", "RTO breach"),
    ("failed", "AssertionError: failback RTO 25.00s exceeds the target 20.00s", "RTO breach"),
    ("failed", "AssertionError: users never saw the maintenance page sustained within 6.0s + grace", "RTO breach"),
    ("failed", "AssertionError: data restored 40.10s after the fault, target 30.00s", "RTO breach"),
    ("failed", "AssertionError: RPO 12.30s exceeds the target 10.00s", "RPO breach"),
    ("failed", "AssertionError: the newest backup b.sql is 20.0s old, more than the RPO 10.0s", "RPO breach"),
    ("broken", "botocore.exceptions.ClientError: An error occurred (ResourceInUseException) when calling", "Infrastructure error"),
    ("broken", "azure.core.exceptions.HttpResponseError: (Conflict) busy", "Infrastructure error"),
    ("broken", "kubernetes.client.exceptions.ApiException: (404)\nReason: Not Found", "Infrastructure error"),
    ("broken", "drivers.provisioner.ProvisionerError: terraform apply failed (exit 1)", "Infrastructure error"),
    ("broken", "TimeoutError: the node group did not settle", "Infrastructure error"),
    ("broken", "httpx.ConnectTimeout: timed out", "Infrastructure error"),
    ("failed", "AssertionError: terraform apply of the failover stack failed: boom", "Infrastructure error"),
    ("broken", "KeyError: 'phase2.restored'", "Harness error"),
    ("broken", "TypeError: unsupported operand type(s)", "Harness error"),
    ("failed", "AssertionError: users see 'maintenance', not PetClinic from Azure", None),  # Allure's Product defects
])
def test_categories_are_mutually_exclusive(status: str, message: str, category: str | None) -> None:
    # Allure: Pattern.compile(regex, DOTALL).matcher(text).matches() for every category; these regexes
    # use only syntax Java and Python read alike. tests/lab/test_allure_report.py checks with Allure itself.
    got = [c["name"] for c in CATEGORIES
           if status in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message, re.S)]
    assert got == ([category] if category else [])


def test_scrub_results_masks_text_files_and_leaves_binaries(tmp_path: Path) -> None:
    (tmp_path / "a-result.json").write_text(json.dumps({"steps": [{"parameters": [{"value": f"pw={SECRET}"}]}]}))
    (tmp_path / "b-attachment.json").write_text('{"ok": true}')
    png = b"\x89PNG\r\n\x1a\n\xff" + SECRET.encode()
    (tmp_path / "c-attachment.png").write_bytes(png)
    assert scrub_results(tmp_path, Masker([SECRET])) == ["a-result.json"]
    assert json.loads((tmp_path / "a-result.json").read_text())["steps"][0]["parameters"][0]["value"] == "pw=***"
    assert (tmp_path / "c-attachment.png").read_bytes() == png
