"""The fault matrix, a few cells: the drill rides out a transient API fault and unwinds after one beyond it.

Both at Phase 1's mutating step ("the AWS web node group is scaled to 0 nodes"), each a Phase 1
drill against one shared lab (the whole matrix is `python benchmarks/fault_matrix.py`):

  - throttling on every API surface for 2 calls each: within botocore's standard retry budget, so
    the drill passes, and its evidence records the retried calls;
  - 5xx on every surface for 50 calls: beyond it, so the step fails naming the service's error, the
    drill unwinds, its summary's baseline_diff is empty and the lab, read from outside, is back.

≈ 1.5 min on a 2-core machine (a lab start and two Phase 1 drills, one cut short by its failure).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from abort_at import drill_steps
from fault_matrix_lib import Cell, format_matrix, mutating_steps, parse_cells, run_matrix

STEP = 4  # P1 When the AWS web node group is scaled to 0 nodes

# What the drill changes, by the features' words: the default matrix must reach each of these (its step
# numbers were once a hand-kept list that went stale when the alarm steps were added).
CHANGES = ("scaled to 0 nodes", "data tier of the Azure failover stack is provisioned", "restored into Azure MySQL",
           "deployed on AKS", "marks its responses as served from Azure", "backend pool is pointed at",
           "secondary origin is switched", "deployed and the cache invalidated", "restored to its original size",
           "secondary origin is reverted")


def test_the_default_matrix_is_every_step_that_changes_something() -> None:
    steps = {s.index: s for s in drill_steps()}
    default = sorted({c.step for c in parse_cells(None, None)})
    assert default == mutating_steps()
    texts = [steps[i].text for i in default]
    assert [c for c in CHANGES if not any(c in t for t in texts)] == [], texts
    assert [t for t in texts if not any(c in t for c in CHANGES)] == [], "a step the matrix calls a change is not one"
    assert STEP in default and steps[STEP].keyword == "When"


@pytest.mark.lab
@pytest.mark.slow
def test_api_faults_at_a_mutating_step_are_ridden_out_or_unwound(tmp_path: Path) -> None:
    progress: list[str] = []
    results = run_matrix([Cell(STEP, "throttle"), Cell(STEP, "5xx", count=50)], root=tmp_path, log=progress.append)
    text = format_matrix(results)
    print(text)
    detail = text + "\n\nprogress:\n" + "\n".join(progress)
    transient, exhausted = results
    assert transient.outcome == "recovered", detail
    assert transient.marker and transient.marker["hits"].get("aws", 0) >= 2, detail
    assert any("retried and recovered" in n for n in transient.notes), detail
    assert exhausted.outcome == "failed-and-restored", detail
    assert exhausted.marker and exhausted.marker["step_failed"], detail
    # The step's error names the service's error; the evidence says which call and how often it was tried.
    assert "ServerException" in (exhausted.marker["error"] or ""), detail
    assert any(n.startswith("evidence: botocore eks") and "failed after 6 attempt(s)" in n for n in exhausted.notes), detail
