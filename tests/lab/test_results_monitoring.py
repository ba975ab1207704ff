"""A drill's results in the team's monitoring: a real Pushgateway round trip, the textfile collector's
file, and the drill's OpenTelemetry trace (one span per executed step, under its phase).

Uses the session's real Phase 1 drill (tests/lab/conftest.py) for the figures and the trace file; the
Pushgateway is Debian's, started on a free port for this module and stopped after it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drill.config import load_target
from drivers.monitoring import export_results
from lab.prometheus import pushgateway

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with pushgateway() as url:
        yield url


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            # The Pushgateway adds `instance=""` to what is pushed without one: an empty label is no label.
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if v != "")))] = s.value
    return out


def target_with(phase1_drill: Any, **monitoring: Any) -> Any:
    target = load_target(str(REPO / "targets" / "lab.yaml"), phase1_drill.endpoints)
    return target.model_copy(update={"monitoring": target.monitoring.model_copy(update=monitoring)})


def test_results_pushed_to_a_real_pushgateway_and_read_back(phase1_drill: Any, gateway: str, tmp_path: Path) -> None:
    summary = json.loads((phase1_drill.bundle / "summary.json").read_text())
    target = target_with(phase1_drill, pushgateway_url=gateway, textfile_dir=str(tmp_path / "textfile"))
    result = export_results(target, summary)
    assert result["pushgateway"]["pushed"] is True, result
    assert result["textfile"]["written"] is True, result

    # Read back as Prometheus scrapes it: the Pushgateway adds job and the grouping key to each series.
    scraped = series(httpx.get(gateway + "/metrics", timeout=5).text)
    group = (("job", "dr_drill"), ("target", "lab"))
    (phase,) = summary["phases"]
    assert scraped[("dr_drill_phase_rto_seconds", tuple(sorted((*group, ("phase", "phase1")))))] == pytest.approx(phase["rto_seconds"])
    assert scraped[("dr_drill_phase_rto_target_seconds", tuple(sorted((*group, ("phase", "phase1")))))] == pytest.approx(
        phase["rto_target_seconds"])
    assert scraped[("dr_drill_info", tuple(sorted((*group, ("run_id", summary["run_id"]), ("verdict", summary["verdict"])))))] == 1.0
    assert scraped[("dr_drill_passed", group)] == (1.0 if summary["verdict"] == "passed" else 0.0)
    assert scraped[("dr_drill_downtime_seconds", group)] == pytest.approx(summary["downtime_seconds"])
    detections = summary["alarms"]["phases"]["phase1"]
    assert detections, "the Phase 1 drill measured no alarm"
    for d in detections:
        key = ("dr_drill_alarm_detection_seconds", tuple(sorted((*group, ("alarm", d["alarm"]), ("phase", "phase1")))))
        assert scraped[key] == pytest.approx(d["detection_seconds"])
    # Prometheus naming: one prefix, base units, nothing but [a-z0-9_].
    ours = {name for name, _ in scraped if name.startswith("dr_drill_")}
    assert ours and all(re.fullmatch(r"dr_drill_[a-z0-9_]+", n) for n in ours)
    assert all(n.endswith(("_seconds", "_info", "_passed", "_scale")) for n in ours), sorted(ours)

    # The textfile collector's file: the same figures, the target as a label (no grouping key there).
    (prom,) = (tmp_path / "textfile").glob("*.prom")
    written = series(prom.read_text())
    assert written[("dr_drill_phase_rto_seconds", (("phase", "phase1"), ("target", "lab")))] == pytest.approx(phase["rto_seconds"])

    # A second drill replaces the group (PUT), so a stale figure never lingers beside a new one.
    export_results(target, {**summary, "run_id": "20990101T000000Z-abcdef", "phases": [], "alarms": None})
    again = series(httpx.get(gateway + "/metrics", timeout=5).text)
    assert not any(name == "dr_drill_phase_rto_seconds" for name, _ in again)
    assert any(name == "dr_drill_info" and ("run_id", "20990101T000000Z-abcdef") in labels for name, labels in again)


def test_an_unreachable_pushgateway_is_reported_not_fatal(phase1_drill: Any, tmp_path: Path) -> None:
    from lab.ports import free_port

    summary = json.loads((phase1_drill.bundle / "summary.json").read_text())
    result = export_results(target_with(phase1_drill, pushgateway_url=f"http://127.0.0.1:{free_port()}"), summary)
    assert result["pushgateway"]["pushed"] is False and "error" in result["pushgateway"]


def test_the_trace_has_one_span_per_executed_step_under_its_phase(phase1_drill: Any) -> None:
    summary = json.loads((phase1_drill.bundle / "summary.json").read_text())
    doc = json.loads((phase1_drill.bundle / "trace.otlp.json").read_text())
    spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    resource = {a["key"]: a["value"] for rs in doc["resourceSpans"] for a in rs["resource"]["attributes"]}
    assert resource["dr_drill.run_id"] == {"stringValue": summary["run_id"]}
    assert len({s["traceId"] for s in spans}) == 1  # one trace per drill
    by_id = {s["spanId"]: s for s in spans}
    (root,) = [s for s in spans if not s.get("parentSpanId")]
    assert root["name"] == f"drill {summary['run_id']}"
    (phase,) = [s for s in spans if s.get("parentSpanId") == root["spanId"] and s["name"] == "phase1"]

    # The steps Phase 1's feature has, in order, each executed once: one span each, children of the phase.
    scenario = (REPO / "features" / "cloudfront" / "phase1_web_tier_down.feature").read_text().split("Scenario:", 1)[1]
    expected = [f"{kw} {text.strip()}" for kw, text in re.findall(r"^\s+(Given|When|Then|And|But) (.+)$", scenario, re.M)]
    steps = sorted((s for s in spans if s.get("parentSpanId") == phase["spanId"] and not s["name"].startswith("change #")),
                   key=lambda s: int(s["startTimeUnixNano"]))
    assert len(steps) == len(expected) and all(s["name"].endswith(e.split(" ", 1)[1]) for s, e in zip(steps, expected, strict=True)), (
        [s["name"] for s in steps], expected)
    for s in steps:
        attrs = {a["key"]: a["value"] for a in s["attributes"]}
        assert attrs["dr_drill.run_id"] == {"stringValue": summary["run_id"]}
        assert attrs["dr_drill.step.status"] == {"stringValue": "passed"}
        assert int(phase["startTimeUnixNano"]) <= int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"]) <= int(
            phase["endTimeUnixNano"])
    # Each ledger change is a span too, under the phase it was made in or the run (the end-of-run unwind).
    changes = [s for s in spans if s["name"].startswith("change #")]
    actions = json.loads((phase1_drill.bundle / "actions.json").read_text())
    assert len(changes) == len(actions) > 0
    assert all(by_id[c["parentSpanId"]]["name"] in ("phase1", root["name"]) for c in changes)
