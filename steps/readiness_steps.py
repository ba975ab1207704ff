"""Readiness machinery every system's readiness feature shares (`pytest -m readiness`).

The `readiness_run` fixture (a ReadinessRun built from the target, not the drill's `drill_run`: no
probe, no canary rows), the verdict table printed at the end, and the steps whose meaning is the
same for every system: the backups (or daily snapshot dumps) in the backup container, their age
against the RPO and their spacing, and the record of passing drills. A system's readiness module
(steps/<system>/test_readiness.py) imports these and binds its own feature.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure
import pytest
from pytest_bdd import given, then

from drill.config import Target
from drill.evidence import Masker
from drill.readiness import Verdict, table_lines
from steps.readiness import ReadinessRun

# As the root conftest masks a lab's endpoints: any value under a secret-looking name.
SECRET_KEY = re.compile(r"password|secret|key|token|connection_string", re.I)


class _Reporter:
    """Collects failed tests and prints the verdict table at the end (registered as a pytest plugin)."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.summary: dict[str, Any] | None = None
        self.run: ReadinessRun | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when})")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary is None or self.run is None:
            return
        s, tr = self.summary, terminalreporter
        tr.write_sep("=", f"dr-drill readiness {s['run_id']} on {s['target']}: {s['verdict'].upper()}")
        width = max(100, getattr(getattr(tr, "_tw", None), "fullwidth", 100))
        for line in table_lines(self.run.verdicts, width):
            tr.write_line(line)
        for v in self.run.verdicts:
            if not v.passed:
                tr.write_line(f"  ✗ {v.detail}")
        for note in s["notes"]:
            tr.write_line(f"  note: {note}")
        tr.write_line(f"  {s['checks_passed']} of {len(s['checks'])} checks passed; evidence: {self.run.evidence.path}")


@pytest.fixture(scope="session")
def readiness_run(request: pytest.FixtureRequest, target: Target, reports_dir: Path) -> Iterator[ReadinessRun]:
    masker = Masker(target.secret_values())
    if target.wants_lab:
        endpoints = request.getfixturevalue("lab")
        masker.add(str(v) for k, v in endpoints.items() if SECRET_KEY.search(k))
    run = ReadinessRun(target, reports_dir, masker)
    reporter = _Reporter()
    reporter.run = run
    request.config.pluginmanager.register(reporter, f"dr-drill-readiness-{run.run_id}")
    try:
        yield run
    finally:
        reporter.summary = run.finish(reporter.failed)


def report(v: Verdict) -> None:
    """Attach the verdict to Allure; fail the step with its sentence (which names the check)."""
    allure.attach(json.dumps(v.as_dict(), indent=2, ensure_ascii=False, default=str), name=f"verdict {v.check}",
                  attachment_type=allure.attachment_type.JSON)
    if not v.passed:
        # No traceback: an unready target is a finding, not a bug in this code.
        pytest.fail(v.detail, pytrace=False)


@given("the backups in the backup container")
def backups_listed(readiness_run: ReadinessRun) -> None:
    try:
        backups, _ = readiness_run.backup_listing()
    except Exception as e:  # noqa: BLE001 — the checks that need the listing turn this into their failed verdicts
        allure.attach(f"{type(e).__name__}: {e}", name="backup listing failed", attachment_type=allure.attachment_type.TEXT)
        return
    allure.attach(json.dumps({"count": len(backups), "newest": backups[-1].name if backups else None,
                              "oldest": backups[0].name if backups else None}, indent=2),
                  name="backup listing", attachment_type=allure.attachment_type.JSON)


@then("the newest backup is younger than the RPO, allowing for a backup in flight")
def newest_backup_fresh(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_backup_freshness())


@then("no two backups in the schedule window are further apart than the tolerated multiple of the backup interval")
def backups_on_schedule(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_backup_schedule())


@then("a drill covering every phase passed within the staleness limit")
def last_passing_drill(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_last_passing_drill())


def report_all(verdicts: list[Verdict]) -> None:
    """Several verdicts from one step: each attached; the step fails naming every failed one, first first."""
    for v in verdicts:
        allure.attach(json.dumps(v.as_dict(), indent=2, ensure_ascii=False, default=str), name=f"verdict {v.check}",
                      attachment_type=allure.attachment_type.JSON)
    failed = [v for v in verdicts if not v.passed]
    if failed:
        # Starts with the first failing probe's name; the others follow.
        pytest.fail("; ".join(v.detail for v in failed), pytrace=False)
