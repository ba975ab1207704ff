"""The readiness core (drill.readiness): backup spacing, lifecycle rules, terraform plans, restore comparison."""
from __future__ import annotations

import subprocess
import sys

import pytest

from drill.readiness import (
    BackupTime,
    Verdict,
    backup_spacing,
    compare_restore,
    lifecycle_delete_days,
    overall,
    parse_plan,
    render_markdown,
    table_lines,
)


def times(*starts: float, precise: bool = True) -> list[BackupTime]:
    return [BackupTime(f"b{i}", s, precise) for i, s in enumerate(starts)]


def test_spacing_on_schedule_has_no_gap() -> None:
    judged, gaps, largest = backup_spacing(times(0, 10, 20, 30), now=32, window=100, interval=10, tolerance=1.5)
    assert [b.name for b in judged] == ["b0", "b1", "b2", "b3"] and gaps == [] and largest == 10


def test_spacing_finds_a_missed_backup_and_one_straddling_the_window() -> None:
    _, gaps, largest = backup_spacing(times(0, 10, 30, 40), now=45, window=100, interval=10, tolerance=1.5)
    assert [(g.earlier, g.later, g.seconds) for g in gaps] == [("b1", "b2", 20)] and largest == 20
    # The window starts at 25: b1 (before it) is judged too, so the 20 s gap still counts.
    judged, gaps, _ = backup_spacing(times(0, 10, 30, 40), now=45, window=20, interval=10, tolerance=1.5)
    assert [b.name for b in judged] == ["b1", "b2", "b3"] and len(gaps) == 1


def test_spacing_allows_a_second_for_whole_second_names() -> None:
    assert backup_spacing(times(0, 16, precise=False), 20, 100, 10, 1.5)[1] == []
    assert len(backup_spacing(times(0, 16), 20, 100, 10, 1.5)[1]) == 1


def test_lifecycle_rule_for_the_backups() -> None:
    policy = {"properties": {"policy": {"rules": [
        {"name": "old-logs", "enabled": True, "type": "Lifecycle",
         "definition": {"filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["logs/"]},
                        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 7}}}}},
        {"name": "backups", "enabled": True, "type": "Lifecycle",
         "definition": {"filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["mysql-backups/backups/"]},
                        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 30}}}}},
        {"name": "disabled", "enabled": False, "type": "Lifecycle",
         "definition": {"actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 1}}}}},
        {"name": "account-wide", "enabled": True, "type": "Lifecycle",
         "definition": {"actions": {"baseBlob": {"delete": {"daysAfterCreationGreaterThan": 365}}}}},
    ]}}}
    assert lifecycle_delete_days(policy, "mysql-backups", "backups/") == [("backups", 30), ("account-wide", 365)]
    assert lifecycle_delete_days(None, "mysql-backups", "backups/") == []
    assert lifecycle_delete_days(policy, "other", "x/") == [("account-wide", 365)]


PLAN_CREATE = """
Terraform will perform the following actions:

  # azurerm_mysql_flexible_server.main will be created
  + resource "azurerm_mysql_flexible_server" "main" {
    }

  # data.azurerm_subnet.aks will be read during apply
 <= data "azurerm_subnet" "aks" {
    }

Plan: 1 to add, 0 to change, 0 to destroy.
"""

PLAN_DRIFT = """
Note: Objects have changed outside of Terraform

  # azurerm_public_ip.appgw has been deleted
  - resource "azurerm_public_ip" "appgw" {
    }

Terraform will perform the following actions:

  # azurerm_public_ip.appgw will be created
  + resource "azurerm_public_ip" "appgw" {}

  # module.aks.azurerm_kubernetes_cluster.main[0] must be replaced
-/+ resource "azurerm_kubernetes_cluster" "main" {}

Plan: 0 to import, 2 to add, 0 to change, 1 to destroy.
"""


def test_a_plan_that_only_creates_is_clean() -> None:
    p = parse_plan(PLAN_CREATE)
    assert p.clean and p.creations == ["azurerm_mysql_flexible_server.main"] and p.counts == {"add": 1, "change": 0, "destroy": 0}
    nothing = parse_plan("No changes. Your infrastructure matches the configuration.\n")
    assert nothing.clean and nothing.no_changes and nothing.actions == []


def test_a_plan_that_replaces_or_lost_something_is_drift() -> None:
    p = parse_plan(PLAN_DRIFT)
    assert not p.clean
    assert ("module.aks.azurerm_kubernetes_cluster.main[0]", "replace") in p.drift
    assert ("azurerm_public_ip.appgw", "deleted outside Terraform") in p.drift
    assert not parse_plan("Plan: 0 to add, 1 to change, 0 to destroy.\n").clean


def test_restore_comparison() -> None:
    ref, app = ["vets", "types"], ["owners"]
    same = {"vets": 6, "types": 6, "owners": 10}
    assert compare_restore(same, same, {"vets": 1, "types": 2}, {"vets": 1, "types": 2}, ref, app) == []
    assert compare_restore({**same, "owners": 12}, same, {}, {}, [], app) == []  # the primary grew since
    problems = compare_restore(same, {**same, "owners": 11, "vets": 5}, {"types": 2}, {"types": 3}, ref, app)
    assert problems == [
        "vets has 5 rows restored, 6 on the primary",
        "types differs from the primary (same 6 rows, different contents)",
        "owners has 11 rows restored but only 10 on the primary (the backup is not of this primary, or the primary lost rows)",
    ]


def test_verdicts_render_and_decide() -> None:
    ok = Verdict("backups.freshness", True, 5.1, 12.0, "backups.freshness: fine", "s")
    bad = Verdict("cdn.secondary_origin", False, "x.example", "bloberry01.z12.web.core.windows.net",
                  "cdn.secondary_origin: points at x.example | elsewhere")
    assert overall([ok]) == "ready" and overall([ok, bad]) == "not ready" and overall([]) == "not ready"
    assert overall([ok], failed_tests=["steps/cloudfront/test_readiness.py::x (setup)"]) == "not ready"
    md = render_markdown({"run_id": "r", "target": "lab", "verdict": "not ready"}, [ok, bad])
    assert "| `cdn.secondary_origin` | **FAIL** | x.example |" in md and "\\|" in md
    lines = table_lines([ok, bad], width=60)
    assert lines[0].startswith("  PASS  backups.freshness") and "5.1 s | 12 s" in lines[0]
    assert all(len(x) <= 60 for x in lines) and ok.as_dict()["area"] == "backups"


def test_core_imports_no_sdk() -> None:
    code = ("import sys, drill.readiness\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'azure', 'pytest', 'httpx', 'drivers', 'lab')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("value, expected", [(12.0, "12 s"), (1.234, "1.23 s"), (None, "—")])
def test_fmt_numbers(value: object, expected: str) -> None:
    assert table_lines([Verdict("a.b", True, value, None, "a.b: x", "s")])[0].split("  ")[-1].startswith(expected)


def test_scratch_guard_knows_the_primary() -> None:
    from drivers.database import Database
    from drivers.scratch import same_database

    primary = Database("127.0.0.1", 3306, "app", "pw", "petclinic")
    assert same_database(Database("localhost", 3306, "scratch", "pw", "petclinic"), primary)
    assert not same_database(Database("127.0.0.1", 3307, "scratch", "pw", "petclinic"), primary)
    assert not same_database(Database("127.0.0.1", 3306, "scratch", "pw", "scratch"), primary)
