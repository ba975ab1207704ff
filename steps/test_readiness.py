"""Readiness: read-only daily checks that DR is ready (features/readiness.feature; `pytest -m readiness`).

This module does not use the drill's `drill_run` fixture (that one starts a probe and writes canary
rows): `readiness_run` builds its own ReadinessRun from the target. Each step measures one check,
attaches its verdict to Allure and fails with the verdict's sentence, which starts with the check's
name, so pytest's short summary names what is broken. At the end of the session the evidence is
written and a verdict table is printed in the terminal summary (a plugin registered at run time:
hooks in a test module would not be called).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure
import pytest
from pytest_bdd import given, scenarios, then, when

from drill.config import Target
from drill.evidence import Masker
from drill.readiness import Verdict, table_lines
from steps.readiness import ReadinessRun

scenarios("readiness.feature")

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


# -- backups -----------------------------------------------------------------------------------------
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


@when("the newest backup is restored into the emptied scratch database")
def restore_newest(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_restore())


@then("every PetClinic table is present in the restored database")
def restored_tables(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_restored_tables())


@then("the restored reference tables match the primary exactly")
def restored_reference(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_restored_reference())


@then("the restored append-only tables hold no more rows than the primary")
def restored_append_only(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_restored_append_only())


@then("the storage account's lifecycle policy deletes backups after the designed number of days")
def lifecycle(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_lifecycle())


# -- CDN ---------------------------------------------------------------------------------------------
@then("CloudFront's origin group fails over from the primary to the secondary origin on the expected status codes")
def failover_criteria(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_failover_criteria())


@then("the secondary origin is the Blob maintenance site")
def secondary_origin(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_secondary_origin())


@then("the maintenance page answers 200 with the maintenance text when fetched directly")
def maintenance_page(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_maintenance_page())


# -- AWS primary -------------------------------------------------------------------------------------
@then("every EKS node group is active at its expected size")
def nodegroups(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_nodegroups())


@then("the ALB has at least the expected number of healthy targets")
def alb_targets(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_alb_targets())


@then("every DR-relevant alarm exists, notifies on ALARM and is OK")
def alarms(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_alarms())


@then("the site serves PetClinic from AWS through CloudFront")
def site(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_site())


# -- Azure always-on -----------------------------------------------------------------------------------
@then("the storage account exists in the resource group")
def storage_account(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_storage_account())


@then("the storage account has the maintenance and backup containers")
def containers(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_containers())


@then("the virtual network has every subnet the failover stack needs")
def network(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_network())


@then("terraform plan of the failover stack proposes nothing but creations")
def failover_plan(readiness_run: ReadinessRun) -> None:
    report(readiness_run.check_failover_plan())


# -- credentials ---------------------------------------------------------------------------------------
@then("every API the drill uses answers a read-only call with the drill's credentials")
def credentials(readiness_run: ReadinessRun) -> None:
    report_all(readiness_run.check_credentials())


# -- preflight -----------------------------------------------------------------------------------------
@then("no preflight check finds what the real clouds would refuse in the drill's plan")
def preflight(readiness_run: ReadinessRun) -> None:
    report_all(readiness_run.check_preflight())


# -- the record of drills ------------------------------------------------------------------------------
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
