"""The abort matrix, a representative subset: the full drill interrupted in Phases 2 and 3 comes back.

Phase 1 interrupts are covered by test_interrupts.py; here each signal is used once beyond Phase 1,
at the points where the most is in flight (the whole matrix is `python benchmarks/abort_matrix.py`):

  - SIGKILL, then `drill unwind`, 10 s into "PetClinic is deployed on AKS": Terraform is still
    applying AKS and the App Gateway (the restore is done, the data tier up); the killed drill's apply
    goes on in the lab and holds the state lock, which the unwind's destroy must wait for; the unwind
    must also release the killed run's drill lock;
  - SIGTERM 5 s into "the CloudFront change is deployed": the secondary origin already points at the
    App Gateway and the distribution is deploying;
  - SIGINT just before "the secondary origin is reverted … and the Azure failover stack destroyed":
    the node group is restored and users are back on AWS, while Azure still serves the secondary.

Runs three full drills up to those points against one lab, ≈ 6 min on a 2-core machine. Their target
has no `alarms`: waiting for the design's alarms to clear after each cell (≈ 40 s) is not what an
interrupt tests, and test_interrupts.py interrupts drills that do list them (their states in the
baseline). `python benchmarks/abort_matrix.py` keeps the alarms.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from abort_matrix_lib import SYSTEMS, Cell, format_matrix, run_matrix

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CI_CELLS = [
    Cell(17, "SIGKILL", delay=10.0),
    Cell(22, "SIGTERM", delay=5.0),
    Cell(29, "SIGINT"),
]
# The Route 53 system (features/goupang/), one cell per signal, all in Phase 1: its fault is the change
# users feel, and its undoing relies on Route 53 failing back by itself once the restored web tier
# passes the health checkers again (nothing is switched back by hand), which these cells check from
# outside: the zone answers with the primary and users get PetClinic from AWS. Phase 2's one change (the
# VM started) has a one-step inverse run by the same ledger and unwind the cells above exercise, and
# the full Route 53 drill runs in CI on its own (.ci/run), deallocation included. ≈ 85 s (lab start included).
#   - SIGTERM 1 s into "the web node group settles at 0 nodes": the nodes are draining;
#   - SIGINT just before "Route 53 answers the site's name with the secondary": the checkers see the ALB fail;
#   - SIGKILL, then `drill unwind`, just before the RTO is measured: users are on the maintenance page.
GOUPANG_CELLS = [
    Cell(5, "SIGTERM", delay=1.0),
    Cell(7, "SIGINT"),
    Cell(8, "SIGKILL"),
]


class _MatrixReport:
    """Prints the matrix in the terminal summary, whatever the output capture (-s or not)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("=", "abort matrix (tests/lab/test_abort_matrix.py)")
        for line in self.text.splitlines():
            terminalreporter.write_line(line)


def test_interrupted_full_drill_restores_the_lab(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    progress: list[str] = []
    results = run_matrix(CI_CELLS, root=tmp_path, retries=1, log=progress.append, alarms=False)
    text = format_matrix(results)
    request.config.pluginmanager.register(_MatrixReport(text), "abort-matrix-report")
    print(text)
    assert len(results) == len(CI_CELLS)
    assert all(r.outcome == "yes" for r in results), text + "\n\nprogress:\n" + "\n".join(progress)
    # Each cell really interrupted its step (not earlier, not later).
    for r in results:
        assert r.fired and r.fired["reached"] and r.fired["in_step"] == r.cell.step and r.fired["signal"] == r.cell.signal


def test_interrupted_route53_drill_restores_the_lab(tmp_path: Path, request: pytest.FixtureRequest,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_ABORT_SYSTEM", "goupang")  # the step numbering of features/goupang/
    progress: list[str] = []
    results = run_matrix(GOUPANG_CELLS, root=tmp_path, retries=1, log=progress.append, system=SYSTEMS["goupang"])
    text = format_matrix(results)
    request.config.pluginmanager.register(_MatrixReport(text), "abort-matrix-report-goupang")
    print(text)
    assert len(results) == len(GOUPANG_CELLS)
    assert all(r.outcome == "yes" for r in results), text + "\n\nprogress:\n" + "\n".join(progress)
    for r in results:
        assert r.fired and r.fired["reached"] and r.fired["in_step"] == r.cell.step and r.fired["signal"] == r.cell.signal
