"""The preflight registry and the runbook-correction record: what they promise the checks that use them."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drill import preflight
from drill.config import load_target
from drill.report import render_html, render_markdown
from drill.runbook import Deviation, Deviations, from_summary


@pytest.fixture()
def registry() -> Iterator[dict[str, Any]]:
    """A private, empty registry: only the test's own checks run (the real ones need their facts);
    checks registered in a test vanish after it."""
    saved = dict(preflight._CHECKS)
    preflight._CHECKS.clear()
    yield preflight._CHECKS
    preflight._CHECKS.clear()
    preflight._CHECKS.update(saved)


def test_a_check_with_a_problem_is_a_named_finding_and_a_clean_one_is_not(registry: dict[str, Any]) -> None:
    target = load_target("lab")

    @preflight.check("t_bad", "phase2", runbook_step="2.6", needs=["azure"])
    def bad(t: Any, facts: Any) -> str | None:
        return f"origin {facts['origin']} is an IP address"

    @preflight.check("t_good", "phase1")
    def good(t: Any, facts: Any) -> str | None:
        return None

    found = preflight.run(target, {"origin": "10.0.0.1"})
    assert [f.check for f in found] == ["preflight.t_bad"]
    assert found[0].detail == "preflight.t_bad: origin 10.0.0.1 is an IP address"
    assert found[0].runbook_step == "2.6" and found[0].phase == "phase2"
    # Only the selected phases' checks run.
    assert preflight.run(target, {"origin": "x"}, phases=["phase1"]) == []
    assert {"preflight.t_bad", "preflight.t_good"} <= set(preflight.applicable(target))


def test_a_check_that_raises_is_a_finding_not_a_pass(registry: dict[str, Any]) -> None:
    @preflight.check("t_raises", "phase1")
    def raises(t: Any, facts: Any) -> str | None:
        return facts["missing"]

    (f,) = [f for f in preflight.run(load_target("lab"), {}) if f.check == "preflight.t_raises"]
    assert "could not be checked: KeyError" in f.detail


def test_a_check_whose_section_is_missing_does_not_apply(registry: dict[str, Any]) -> None:
    @preflight.check("t_needs_kube", "phase2", needs=["kubernetes"])
    def needs(t: Any, facts: Any) -> str | None:
        return "always a problem"

    target = load_target("lab").model_copy(update={"kubernetes": None})
    assert "preflight.t_needs_kube" not in preflight.applicable(target)
    assert not [f for f in preflight.run(target, {}) if f.check == "preflight.t_needs_kube"]


def test_a_check_name_is_registered_once(registry: dict[str, Any]) -> None:
    preflight.check("t_once", "phase1")(lambda t, f: None)
    with pytest.raises(ValueError, match="twice"):
        preflight.check("t_once", "phase1")(lambda t, f: None)
    with pytest.raises(ValueError, match="unknown phase"):
        preflight.check("t_phase", "phase9")


def test_deviations_are_kept_once_each_in_runbook_order_and_survive_the_summary() -> None:
    d = Deviations()
    d.record(Deviation("2.6", "origin = $APPGW_IP", "is refused by CloudFront (InvalidArgument)", "used appgw_fqdn"))
    d.record(Deviation("2.4", "--servers $CLUSTER_IP", "is unreachable from the gateway's subnet", "used the LB IP"))
    d.record(Deviation("2.6", "origin = $APPGW_IP", "again", "again"))
    d.record(Deviation("2.10", "x", "y", "z"))
    assert [x.step for x in d] == ["2.4", "2.6", "2.10"]
    back = from_summary(d.as_list() + [{"bogus": 1}, "not a dict"])
    assert [x.step for x in back][:3] == ["2.4", "2.6", "2.10"]
    assert back[1].sentence().startswith("runbook step 2.6 as written (origin = $APPGW_IP) is refused by CloudFront")


def test_the_report_names_each_runbook_step_the_drill_corrected_and_the_preflight_findings() -> None:
    summary = {
        "run_id": "r", "verdict": "failed", "phases": [],
        "runbook_deviations": [Deviation("2.6", "origin = $APPGW_IP", "is refused by CloudFront <IP>",
                                         "used the stack's appgw_fqdn output", "CloudFront Developer Guide").as_dict()],
        "preflight": [{"check": "preflight.x", "phase": "phase2", "detail": "preflight.x: the CA file is missing"}],
    }
    md = render_markdown(summary)
    assert "## Where the runbook is wrong — 1 step(s)" in md
    assert ("| 2.6 | origin = $APPGW_IP | is refused by CloudFront &lt;IP&gt; | "
            "used the stack's appgw_fqdn output [CloudFront Developer Guide] |") in md
    assert "preflight.x: the CA file is missing" in md
    html = render_html(summary)
    assert "Where the runbook is wrong" in html and "is refused by CloudFront &lt;IP&gt;" in html
    # Preflight that did not run says nothing; preflight that ran clean says so.
    assert "Preflight" not in render_markdown({"run_id": "r"})
    assert "No finding." in render_markdown({"run_id": "r", "preflight": []})
