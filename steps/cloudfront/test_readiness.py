"""Readiness: read-only daily checks that DR is ready (features/cloudfront/readiness.feature; `pytest -m readiness`).

This module does not use the drill's `drill_run` fixture (that one starts a probe and writes canary
rows): `readiness_run` builds its own ReadinessRun from the target. Each step measures one check,
attaches its verdict to Allure and fails with the verdict's sentence, which starts with the check's
name, so pytest's short summary names what is broken. At the end of the session the evidence is
written and a verdict table is printed in the terminal summary (a plugin registered at run time:
hooks in a test module would not be called).
"""
from __future__ import annotations

from pytest_bdd import scenarios, then, when

from steps.readiness import ReadinessRun

# The fixture, the reporter and the steps every system's readiness shares (steps/readiness_steps.py).
# A star import: pytest-bdd registers each step as a module-level fixture under a generated name.
from steps.readiness_steps import *  # noqa: F403
from steps.readiness_steps import report, report_all

scenarios("cloudfront/readiness.feature")


# -- backups -----------------------------------------------------------------------------------------
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
