"""The runbook checklist, item by item, on synthetic bundles: passed, failed, partial, interrupted."""
from __future__ import annotations

import base64
import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drill.checklist import DRY_RUN, FAILED, ITEMS, NOT_PROVEN, NOT_RUN, PASSED, evaluate
from drill.report import render_html, render_markdown

T0 = 1_800_000_000.0
RUNBOOK = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "dr-failover-test-guide.md"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def phase(name: str, fault: float, reached: float | None, target: float, title: str = "") -> dict[str, Any]:
    rto = None if reached is None else round(reached - fault, 3)
    return {
        "name": name, "title": title or name, "rto_seconds": rto, "rto_target_seconds": target,
        "passed": rto is not None and rto <= target, "measured": "fault → class sustained",
        "fault_at": iso(fault), "reached_at": None if reached is None else iso(reached),
        "rto_target_real_seconds": target * 30, "rto_real_equivalent_seconds": None if rto is None else round(rto * 30, 1),
        "detail": {},
    }


def action(i: int, op: str, params: dict[str, Any], desc: str, inv: dict[str, Any] | None = None,
           at: float = T0, state: str = "undone", undone: float | None = None) -> dict[str, Any]:
    return {"id": i, "change": {"op": op, "params": params, "description": desc},
            "inverse": {"op": op + ".undo", "params": inv or params, "description": "undo " + desc},
            "state": state, "recorded_at": at, "applied_at": at + 0.01 if state != "pending" else None,
            "undone_at": undone if undone is not None else (at + 100 if state == "undone" else None), "error": None}


def full_drill() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A complete lab drill, every phase passed."""
    fault, restore = T0 + 2, T0 + 50
    summary = {
        "schema_version": 1, "run_id": "20270115T080000Z-a1b2c3", "target": "lab", "time_scale": 30.0,
        "operator": "auditor", "started_at": iso(T0), "finished_at": iso(T0 + 70), "duration_seconds": 70.0,
        "git_revision": "0123456789abcdef", "harness_version": "0.1.0",
        "phases": [
            phase("phase1", fault, fault + 5.3, 6.0, "AWS web tier down → maintenance page"),
            phase("phase2-data", fault, fault + 18, 30.0, "Azure MySQL restored"),
            phase("phase2", fault, fault + 38, 90.0, "long outage → PetClinic from Azure"),
            phase("phase3", restore, restore + 10, 20.0, "AWS restored → PetClinic from AWS"),
        ],
        "rpo_seconds": 4.2, "rpo_target_seconds": 10.0, "backup_age_seconds": 6.0,
        "rpo": {"rpo_seconds": 4.2, "rpo_target_seconds": 10.0, "rpo_target_real_seconds": 300, "backup": "backups/b1.sql.gz",
                "backup_age_seconds": 6.0, "passed": True},
        "failback_data_loss": {"policy": "not replicated back", "rows": {"owners": 1, "pets": 0, "visits": 0}, "total": 1},
        "outage_write": {
            "phase1": {"phase": "phase1", "users_saw": "maintenance", "method": "POST", "path": "/owners/new",
                       "behavior": {"path_pattern": "/owners/new", "target": "primary-aws", "target_kind": "origin",
                                    "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]},
                       "status": 503, "accepted": False, "x_cache": "Error from cloudfront", "seconds": 0.01,
                       "rows_in_primary": 0},
        },
        "baseline_diff": [], "downtime_seconds": 0.0, "downtime_intervals": [],
        "seconds_by_class": {"aws": 12.0, "maintenance": 30.0, "azure": 20.0, "error": 0.0},
        "requests": 700, "unobserved_seconds": 0.0,
        "transitions": [{"class": "aws", "from": iso(T0 + 0.5), "to": iso(fault + 5.2)},
                        {"class": "maintenance", "from": iso(fault + 5.3), "to": iso(fault + 37.9)},
                        {"class": "azure", "from": iso(fault + 38), "to": iso(restore + 9.9)},
                        {"class": "aws", "from": iso(restore + 10), "to": iso(T0 + 70)}],
        "restore": {"unwound": 0, "failures": [], "site_class": "aws", "seconds": None, "baseline_diff": []},
        "failed_steps": [], "notes": [], "verdict": "passed",
    }
    kube = {"kubeconfig": "/x/kubeconfig", "context": "aks", "namespace": "petclinic"}
    actions = [
        action(1, "db.create_table", {"table": "dr_canary"}, "create the dr_canary table", at=T0 + 1),
        action(2, "db.insert_marker", {"table": "owners"}, "insert marker owner", at=T0 + 1.1),
        action(3, "aws.eks.set_scaling", {"cluster": "blue-eks", "nodegroup": "blue-web-ng",
                                          "scaling": {"minSize": 0, "maxSize": 4, "desiredSize": 0}},
               "scale node group blue-web-ng to 0", {"cluster": "blue-eks", "nodegroup": "blue-web-ng",
                                                     "scaling": {"minSize": 2, "maxSize": 4, "desiredSize": 2}},
               at=fault, undone=restore),
        action(4, "provisioner.apply", {"chdir": "/stack"}, "terraform apply of the Azure failover stack", at=fault + 8,
               undone=restore + 15),
        action(5, "kube.create_namespace", kube, "create namespace petclinic", at=fault + 20),
        action(6, "kube.create", {**kube, "kind": "Deployment", "name": "petclinic"}, "create Deployment petclinic/petclinic",
               at=fault + 21),
        action(7, "azure.appgw.configure_backend", {"gateway": "appgw-blue"}, "point appgw-blue/pool at 10.0.0.10",
               at=fault + 26),
        action(8, "aws.cloudfront.set_origin", {"distribution_id": "E1", "origin_id": "secondary-azure",
                                                "settings": {"DomainName": "1.2.3.4", "OriginProtocolPolicy": "http-only",
                                                             "HTTPPort": 80}},
               "point origin secondary-azure at 1.2.3.4", at=fault + 30, undone=restore + 14),
    ]

    def ev(t: float, source: str, event: str, **kw: Any) -> dict[str, Any]:
        return {"t": t, "mono": t - T0, "source": source, "event": event, **kw}

    events = [
        ev(T0 - 3, "web-tier", "replica started", instance="i-a", port=1),
        ev(T0 - 3, "web-tier", "replica started", instance="i-b", port=2),
        ev(fault + 0.1, "web-tier", "node draining", instance="i-a"), ev(fault + 0.1, "web-tier", "node draining", instance="i-b"),
        ev(fault + 0.3, "web-tier", "pod evicted", instance="i-a"), ev(fault + 0.3, "web-tier", "pod evicted", instance="i-b"),
        ev(fault + 0.35, "alb", "no serving targets"),
        ev(fault + 0.4, "edge", "serving origin", origin="secondary-azure", domain="blob.example"),
        ev(fault + 2.1, "alb", "target unhealthy", instance="i-a"), ev(fault + 2.2, "alb", "target unhealthy", instance="i-b"),
        ev(fault + 5.1, "web-tier", "node terminated", instance="i-a"), ev(fault + 5.2, "alb", "no routable targets"),
        ev(fault + 5.3, "web-tier", "node terminated", instance="i-b"),
        ev(fault + 12, "stack", "apply succeeded", targets=["azurerm_mysql_flexible_server.main"], error=None),
        ev(fault + 19, "stack", "apply succeeded", targets=[], error=None),
        ev(fault + 24, "kube", "pod ready", pod="petclinic-1", namespace="petclinic"),
        ev(fault + 26.5, "appgw", "pool changed", gateway="appgw-blue", pool="blob-backend-pool", before=[], after=["10.0.0.10"]),
        ev(fault + 27, "appgw", "502 cleared", gateway="appgw-blue", backend="10.0.0.10", status=200),
        ev(fault + 30.2, "cloudfront", "distribution updated", distribution="E1", etag="E2"),
        ev(restore + 0.5, "web-tier", "node booting", instance="i-c"), ev(restore + 0.5, "web-tier", "node booting", instance="i-d"),
        ev(restore + 8, "web-tier", "node ready", instance="i-c"), ev(restore + 8.1, "web-tier", "node ready", instance="i-d"),
        ev(restore + 8.5, "alb", "routable targets", count=2),
        ev(restore + 9.5, "edge", "serving origin", origin="primary-aws", domain="alb.example"),
        ev(restore + 15, "stack", "destroy succeeded", targets=[], error=None),
    ]
    return summary, actions, events


def statuses(results: list) -> dict[str, str]:
    return {item.number: check.status for item, check in results}


def test_the_checklist_is_the_runbooks_in_order() -> None:
    assert [i.number for i in ITEMS] == [f"1.{n}" for n in range(1, 6)] + [f"2.{n}" for n in range(1, 9)] + [f"3.{n}" for n in range(1, 9)]
    assert all(i.ko and i.en and i.how for i in ITEMS)
    if RUNBOOK.exists():
        text = RUNBOOK.read_text(encoding="utf-8")
        section = text[text.index("## 체크리스트"):]
        section = section[: section.index("\n---")]
        runbook_items = re.findall(r"^- \[ \] (.+)$", section, re.M)
        assert runbook_items == [i.ko for i in ITEMS]


def test_a_complete_lab_drill_proves_every_item() -> None:
    results = evaluate(*full_drill())
    assert statuses(results) == {i.number: PASSED for i in ITEMS}, [(i.number, c.evidence) for i, c in results if c.status != PASSED]
    by = {i.number: c for i, c in results}
    assert "5.30 s" in by["1.5"].evidence and "target 6.00 s" in by["1.5"].evidence and "≈ 159 s / 180 s" in by["1.5"].evidence
    assert "ledger #3" in by["1.1"].evidence and "desiredSize 2" in by["1.1"].evidence
    assert "fault +0.35 s" in by["1.3"].evidence and "2 target(s) unhealthy" in by["1.3"].evidence
    assert "2 web node(s) drained and terminated" in by["1.2"].evidence and "fault +5.30 s" in by["1.2"].evidence
    assert "RPO 4.20 s / target 10.00 s PASS" in by["2.2"].evidence
    assert "indirect" in by["3.4"].evidence
    assert "desiredSize 2" in by["3.1"].evidence


def test_without_lab_events_items_rest_on_steps_and_one_is_honestly_not_proven() -> None:
    summary, actions, _ = full_drill()
    results = evaluate(summary, actions, [])
    st = statuses(results)
    assert st.pop("3.2") == NOT_PROVEN  # the drill checks the ALB, not every node's state
    assert set(st.values()) == {PASSED}


def test_an_rto_over_target_fails_its_item() -> None:
    summary, actions, events = full_drill()
    summary["phases"][0] = phase("phase1", T0 + 2, T0 + 9, 6.0)
    summary["verdict"] = "failed"
    by = {i.number: c for i, c in evaluate(summary, actions, events)}
    assert by["1.5"].status == FAILED and "7.00 s" in by["1.5"].evidence and "target 6.00 s" in by["1.5"].evidence


def test_an_rto_never_reached_fails_its_item() -> None:
    summary, actions, events = full_drill()
    summary["phases"][2] = phase("phase2", T0 + 2, None, 90.0)
    by = {i.number: c for i, c in evaluate(summary, actions, events)}
    assert by["2.8"].status == FAILED and "not reached" in by["2.8"].evidence


def test_phase1_only_leaves_phases_2_and_3_not_run_never_passed() -> None:
    summary, actions, events = full_drill()
    summary["phases"] = summary["phases"][:1]
    summary["rpo"] = None
    fault = T0 + 2
    actions = [a for a in actions if a["id"] <= 3]
    events = [e for e in events if e["t"] <= fault + 6]
    results = evaluate(summary, actions, events)
    st = statuses(results)
    assert all(st[i.number] == PASSED for i in ITEMS if i.phase == 1)
    assert all(st[i.number] == NOT_RUN for i in ITEMS if i.phase > 1)
    md = render_markdown(summary, actions, events)
    for item in ITEMS:
        row = next(line for line in md.splitlines() if line.startswith(f"| {item.number} |"))
        assert item.ko in row and item.en in row
        assert ("passed" if item.phase == 1 else "not run") in row
        if item.phase > 1:
            assert "passed" not in row


def test_phase2_failing_midway_is_not_proven_after_the_failure_and_phase3_not_run() -> None:
    summary, actions, events = full_drill()
    fault = T0 + 2
    summary["phases"] = summary["phases"][:2]  # phase1 and phase2-data
    summary["failed_steps"] = ["steps/cloudfront/test_phase2.py::test_fail_over_to_azure (call)"]
    actions = [a for a in actions if a["id"] <= 4]
    events = [e for e in events if e["t"] <= fault + 13]
    st = statuses(evaluate(summary, actions, events))
    assert [st[f"2.{n}"] for n in range(1, 9)] == [NOT_PROVEN, PASSED] + [NOT_PROVEN] * 6
    assert all(st[f"3.{n}"] == NOT_RUN for n in range(1, 9))


def test_phase3_failing_leaves_its_later_items_not_proven_and_a_leftover_stack_fails() -> None:
    summary, actions, events = full_drill()
    summary["failed_steps"] = ["steps/cloudfront/test_phase3.py::test_fail_back (call)"]
    st = statuses(evaluate(summary, actions, events))
    assert st["3.5"] == PASSED and {st["3.6"], st["3.7"], st["3.8"]} == {NOT_PROVEN}
    summary["failed_steps"] = []
    summary["baseline_diff"] = ["azure_failover_stack.terraform_outputs: [] → ['mysql_fqdn']"]
    st = statuses(evaluate(summary, actions, events))
    assert st["3.7"] == FAILED


@pytest.mark.parametrize("summary", [None, {}, {"run_id": "20270115T080000Z-dead00", "verdict": "unknown"},
                                     {"run_id": "r", "phases": [], "failed_steps": [], "verdict": "failed"}])
def test_an_interrupted_run_shows_every_item_not_run(summary: dict[str, Any] | None) -> None:
    results = evaluate(summary, [], [])
    assert statuses(results) == {i.number: NOT_RUN for i in ITEMS}
    md = render_markdown(summary, [], [], chart=None)
    page = render_html(summary, [], [], png=None)
    assert md.count("⏭️ not run") == len(ITEMS) and "21 not run" in md
    assert "The timeline chart is not available" in md and "The timeline chart is not available" in page
    assert "No phase measured anything" in md


def test_markdown_carries_every_item_with_its_evidence_and_escapes_cells() -> None:
    summary, actions, events = full_drill()
    summary["notes"] = ["a | pipe\nand a newline <b>"]
    md = render_markdown(summary, actions, events, files=["summary.json", "timeline.png"])
    results = evaluate(summary, actions, events)
    for item, _check in results:
        row = next(line for line in md.splitlines() if line.startswith(f"| {item.number} |"))
        assert item.ko in row and item.en in row and "✅ passed" in row
        assert row.count(" | ") == 5  # six cells: no stray pipe from the evidence
    assert "a \\| pipe<br>and a newline &lt;b&gt;" in md
    assert "![what users saw over time](timeline.png)" in md
    assert "## Checklist (체크리스트) — 21 passed, 0 failed, 0 not proven, 0 not run" in md
    assert "| phase1 RTO — AWS web tier down → maintenance page | 5.30 s | 6.00 s | ≈ 159 s / 180 s | PASS |" in md
    assert "- `timeline.png`" in md
    assert ("- **user write through the site, phase1**: users saw maintenance; POST /owners/new (behavior /owners/new → "
            "origin primary-aws) got status 503, refused; rows in the primary 0") in md


def test_html_is_self_contained_escapes_everything_and_embeds_the_png() -> None:
    summary, actions, events = full_drill()
    evil = "<script>alert('x')</script>"
    summary = copy.deepcopy(summary)
    summary["run_id"] = evil
    summary["operator"] = '"><img src=x onerror=alert(1)>'
    summary["notes"] = ["Tom & Jerry <i>"]
    summary["failed_steps"] = []
    actions[2]["change"]["description"] = "scale <b>blue</b> & co"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    page = render_html(summary, actions, events, png=png, files=["a<b>.json"])
    assert "<script>" not in page and "<img src=x" not in page and "<b>blue</b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Tom &amp; Jerry &lt;i&gt;" in page and "scale &lt;b&gt;blue&lt;/b&gt; &amp; co" in page
    assert "a&lt;b&gt;.json" in page
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing fetched from elsewhere
    for item in ITEMS:
        assert item.ko in page and item.en.replace("'", "&#x27;") in page
    assert page.count('class="passed"') >= len(ITEMS)


def test_a_dry_run_proves_no_item_and_shows_the_plan() -> None:
    summary, actions, events = full_drill()
    summary.update(dry_run=True, verdict="dry-run", phases=[], rpo=None,
                   plan=[{"id": 1, "change": "scale node group blue-web-ng to 0", "op": "aws.eks.set_scaling",
                          "inverse": "restore node group blue-web-ng to 2"}],
                   not_evaluated=["the site serves the maintenance page within the maintenance RTO"])
    for a in actions:
        a["state"] = "planned"
    results = evaluate(summary, actions, events)
    assert statuses(results) == {i.number: DRY_RUN for i in ITEMS}
    md = render_markdown(summary, actions, events)
    page = render_html(summary, actions, events, png=None)
    for text in (md, page):
        assert "Plan (dry run: nothing was changed)" in text
        assert "restore node group blue-web-ng to 2" in text
        assert "the maintenance page within the maintenance RTO" in text
        assert "✅" not in text


def test_several_vantages_get_their_own_section_with_the_spread_explained_and_one_gets_none() -> None:
    from drill import vantages as vt
    from drill.timeline import Sample

    summary, actions, events = full_drill()
    assert "## Vantages" not in render_markdown(summary, actions, events)  # one vantage: nothing new
    samples = [Sample(t=1e9 + i * 0.1, mono=i * 0.1, status=200, latency_ms=1.0, cls=cls, vantage=name, edge=edge)
               for name, edge, switch in (("seoul", "ICN54-P1", 30), ("tokyo", "NRT57-P3", 80))
               for i in range(150) for cls in ["aws" if i < switch else "maintenance"]]
    rtos = vt.phase_rtos(vt.split(samples), "maintenance", 1.0, 0.5, 3, 0.5, 20.0)
    summary = copy.deepcopy(summary)
    summary["phases"][0]["detail"] = vt.phase_detail(rtos, "worst", 0.1, "maintenance", 30.0)
    summary["vantages"] = [
        {"name": "seoul", "worker": "local", "edges": {"ICN54-P1": 150}, "requests": 150, "downtime_seconds": 0.0,
         "unobserved_seconds": 0.0, "clock": {"offset_seconds": 0.0001, "uncertainty_seconds": 0.0004}},
        {"name": "tokyo <b>", "worker": "remote", "where": "runner | in Tokyo", "edges": {"NRT57-P3": 150}, "requests": 150,
         "downtime_seconds": 0.0, "unobserved_seconds": 1.5, "clock": {}},
    ]
    md = render_markdown(summary, actions, events)
    assert "## Vantages — what users at each of 2 places saw" in md
    assert "| phase1 | 2.00 s (ICN54-P1) | — | 5.00 s | worst: tokyo |" in md  # "tokyo <b>" took no phase
    assert "different edge locations" in md and "a spread of 5.00 s (≈ 150 s real)" in md
    assert "| tokyo &lt;b&gt; | remote, runner \\| in Tokyo | NRT57-P3 150 | 150 | 0.00 s | 1.50 s | unknown |" in md
    page = render_html(summary, actions, events)
    section = page.split("<h2>Vantages")[1].split("<h2>Timeline")[0]
    assert "what users at each of 2 places saw" in section and "<td>tokyo &lt;b&gt;</td>" in section
    assert "different edge locations" in section and "<b>" not in section


def test_the_report_says_which_alarm_fired_when_and_judges_detection_and_clearing() -> None:
    from drill.detection import Clearing, Detection
    from drill.detection import summary as alarms_summary

    summary, actions, events = full_drill()
    fault, restore = T0 + 2, T0 + 50
    fired = Detection("unhealthy-hosts", "phase1", fault, 20.0, fired_at=fault + 4.0, reason="Threshold Crossed: [2] > 0",
                      notified_at=fault + 4.1)
    silent = Detection("node-count-low", "phase1", fault, 20.0)
    cleared = Clearing("unhealthy-hosts", restore, 50.0, cleared_at=fault + 8.0, state_now="OK")
    summary["alarms"] = alarms_summary({"phase1": [fired, silent]}, [cleared], 20.0, 50.0)
    md = render_markdown(summary, actions, events, files=["summary.json"])
    assert "| phase1 detection — unhealthy-hosts in ALARM after the fault | 4.00 s | 20.00 s | ≈ 120 s / 600 s | PASS |" in md
    assert "| phase1 detection — node-count-low notified after the fault | never | 20.00 s | — | FAIL |" in md
    assert ("alarm clear — unhealthy-hosts OK again after the restore (cleared BEFORE the restore, during the outage)"
            in md)
    assert f"- **alarm unhealthy-hosts (phase1)**: ALARM at {iso(fault + 4.0)} (fault +4.00 s); notified at" in md
    assert "- **alarm node-count-low (phase1)**: never entered ALARM after the fault" in md
